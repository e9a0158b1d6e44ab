"""A child's weekly figures in one home: student_weekly_stats() computes the weeks, alerts, weeks with
data, last change and trend that weekly_trend_json() answers with, and the weekly digest reads the same
function instead of restating the trend rule in Python. Same figures, same plan (the call is inlined).
The class view rounds its averages by weekly_average(), the one averaging rule, instead of restating it
(the same figures; the view is rebuilt).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from alembic import op

from db.migrations.sqlfiles import run_frozen_sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 350_course_weekly_performance.sql: the class view, rebuilt with weekly_average().
    # 430_weekly_trend_json.sql: student_weekly_stats() new; weekly_trend_json() reads its weeks from it.
    run_frozen_sql(revision)


def downgrade() -> None:
    # weekly_trend_json() as revision 0008 installed it, then the function it no longer calls; the class
    # view as revision 0006 built it.
    run_frozen_sql("0008", "430_weekly_trend_json.sql")
    op.execute("drop function student_weekly_stats(bigint, date, integer, numeric, integer)")
    run_frozen_sql("0006", "350_course_weekly_performance.sql")
