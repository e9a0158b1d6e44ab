"""Mail: guardians' mail preferences, the weekly digest's delivery log, the sustained-decline alert.

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 000_mail_schema.sql, then 600_weekly_trend_alerts.sql and 610_mail.sql.
    run_frozen_sql(revision)


def downgrade() -> None:
    run_sql(
        """
        revoke execute on function issue_guardian_token(bigint, interval), revoke_guardian_tokens(bigint)
          from weekly_trends_staff;
        drop function weekly_trend_alerts(bigint, date, date, numeric, integer, integer),
          unsubscribe_weekly_digest(bytea), set_weekly_digest(boolean), my_weekly_digest();
        drop table digest_delivery, guardian_mail_preference;
        """
    )
