"""Mail: guardians' mail preferences, the weekly digest's delivery log, the sustained-decline alert.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 000_mail_schema.sql, then 600_weekly_trend_alerts.sql, 610_mail.sql, 620_staff_guardian_links.sql.
    run_frozen_sql(revision)


def downgrade() -> None:
    # weekly_trend_json() and week_json() as revision 0006 installed them (no alert), then the rest.
    run_sql(
        """
        drop function weekly_trend_json(bytea, bigint, bigint, integer, date, integer, text, boolean, boolean,
                                        numeric, integer),
          week_json(date, numeric, integer, numeric, integer, numeric, integer, integer, text);
        """
    )
    run_frozen_sql("0006", "430_weekly_trend_json.sql")
    run_sql(
        """
        drop function weekly_trend_alerts(bigint, date, date, numeric, integer, integer),
          unsubscribe_weekly_digest(bytea), set_weekly_digest(boolean), my_weekly_digest(),
          staff_issue_guardian_token(bigint, bigint, interval), staff_revoke_guardian_tokens(bigint, bigint);
        drop table digest_delivery, guardian_mail_preference;
        """
    )
