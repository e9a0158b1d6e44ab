"""The refresh reads with parallel workers: the read-only SQL functions behind it are marked parallel safe
(a query that names a parallel-unsafe function gets no workers, even when the call is inlined), and the full
rebuild reads its differences by RETURN QUERY (PL/pgSQL runs SELECT ... INTO on one core). Same rules, same
figures; measured in docs/benchmark-analysis.md.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from alembic import op

from db.migrations.sqlfiles import run_frozen_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 300_refresh_and_check.sql: counted_scores(), expected_course_weeks() and expected_weeks() parallel
    # safe; weekly_row_differences() new; rebuild_weekly_rows() reads it.
    run_frozen_sql(revision)


def downgrade() -> None:
    # As revision 0006 installed them (parallel unsafe, the differences read by SELECT ... INTO), then
    # the function it no longer calls.
    run_frozen_sql("0006", "300_refresh_and_check.sql")
    op.execute("drop function weekly_row_differences(bigint, date)")
