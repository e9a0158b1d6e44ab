"""The parents' answer within issue 26's bound: the course weeks and the class view's weeks in one definer
(linked_course_class_weeks(), replacing linked_course_weeks() and linked_class_weeks()); access decisions
as one inlined join (guardian_links()) instead of a call per check; Mondays by date arithmetic
(iso_week_monday()) in counted_scores() and student_missing_work(): date_trunc() took each date through a
timestamptz, per row (and the other functions that computed a day's Monday by hand now ask it: 390, 600).
And the purge takes the teacher's list's kept walk states (alert_walk_checkpoint)
of the students whose old weeks it removes: they could hold those weeks' averages.
Each change ships as a file of its own under versions/0017/, run in name order.

No maintenance window: functions only; the answer's callers keep their signatures.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import op

from db.migrations.sqlfiles import run_frozen_sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every file under versions/0017/, in name order (each says what it changes).
    run_frozen_sql(revision)


def downgrade() -> None:
    # Each change undone, in the reverse order of upgrade(): the copies before them.
    run_frozen_sql("0016", "665_erasure_and_retention.sql")
    run_frozen_sql("0016", "600_weekly_trend_alerts.sql")
    # 430_weekly_trend_json.sql and 425_answer_pieces_schema.sql: 0015's copy brings back
    # linked_course_weeks() and linked_class_weeks().
    op.execute("drop function linked_course_class_weeks(bigint, date, date, integer)")
    run_frozen_sql("0015", "430_weekly_trend_json.sql")
    run_frozen_sql("0016", "390_staff_attention.sql")
    run_frozen_sql("0014", "300_refresh_and_check.sql")
    run_frozen_sql("0015", "240_missing_work.sql")
    # 140_guardian_access.sql: 0015's copy (it grants app_may_read_student() to the reader again).
    run_frozen_sql("0015", "140_guardian_access.sql")
    op.execute("drop function guardian_links(bigint, timestamptz)")
    # 100_weeks.sql: iso_week_monday(), once nothing above calls it.
    run_frozen_sql("0006", "100_weeks.sql")
    op.execute("drop function iso_week_monday(date)")
