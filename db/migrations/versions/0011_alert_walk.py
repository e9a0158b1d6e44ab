"""The sustained-decline alert walks a student's weeks from arrays read by one statement, the last six
averages in a ring, and skips runs of empty weeks before the range asked for: same rule, same answers;
a parent's answer at 3 school years of history 1.15 -> 1.01 ms (docs/benchmark-analysis.md).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 600_weekly_trend_alerts.sql: weekly_trend_alerts(), same signature, grants and comment.
    run_frozen_sql(revision)


def downgrade() -> None:
    # As revision 0008 installed it.
    run_frozen_sql("0008", "600_weekly_trend_alerts.sql")
