"""A statement whose net change to a week averages over 999.99 points a score (twelve zeros rescored
to 100 and one more score counted: +1,300 over +1) no longer fails: apply_weekly_deltas() proposes
null averages for a delta that cannot be a whole week.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 210_source_triggers.sql: the source tables' trigger functions, apply_weekly_deltas() fixed.
    run_frozen_sql(revision)


def downgrade() -> None:
    # As revision 0006 installed them (0007 to 0009 did not change them).
    run_frozen_sql("0006", "210_source_triggers.sql")
