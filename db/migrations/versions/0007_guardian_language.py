"""A guardian's language, and the scores behind a week: guardian.preferred_language with
set_guardian_language(), week_scores(), and the reader's row-level-secured SELECT on the source rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SOURCE_TABLES = ("quiz_attempt", "assignment_submission")


def upgrade() -> None:
    # 000_guardian_language_schema.sql, then 600_week_scores.sql and 610_guardian_language.sql.
    run_frozen_sql(revision)


def downgrade() -> None:
    policies = "\n".join(
        f"drop policy if exists {policy} on {table};"
        for table in SOURCE_TABLES
        for policy in ("owner_all", "not_app_roles_all", "guardian_reads_own_children")
    )
    disable = "\n".join(
        f"alter table {table} no force row level security, disable row level security;" for table in SOURCE_TABLES
    )
    run_sql(
        f"""
        drop function week_scores(bigint, date), set_guardian_language(text);
        {policies}
        {disable}
        revoke select on quiz_attempt, assignment_submission from weekly_trends_reader;
        alter table guardian drop column preferred_language;
        """
    )
