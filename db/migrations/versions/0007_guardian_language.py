"""A guardian's language, and the scores behind a week: guardian.preferred_language with
set_guardian_language(), and week_scores() (security definer, for the request's linked child only).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

def upgrade() -> None:
    # 000_guardian_language_schema.sql, then 600_week_scores.sql and 610_guardian_language.sql.
    run_frozen_sql(revision)


def downgrade() -> None:
    run_sql(
        """
        drop function week_scores(bigint, date), set_guardian_language(text);
        alter table guardian drop column preferred_language;
        """
    )
