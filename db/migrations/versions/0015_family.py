"""The family's rights over the record, missing work and chosen alerts, staff sign-in and the teacher's list
(issues 24-27). Each change ships as a file of its own under versions/0015/, run in name order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op  # noqa: F401 - used by the downgrade steps

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every file under versions/0015/, in name order (each says what it changes).
    run_frozen_sql(revision)


def downgrade() -> None:
    # Each change undone, in the reverse order of upgrade().
    # 630_alerts.sql and 250_alerts_schema.sql (issue 26 item 3: alerts each family chooses)
    run_sql(
        """
        drop function new_alerts(bigint, timestamptz, numeric, integer), unsubscribe_alerts(bytea, text[]),
          set_my_alert_settings(bigint, boolean, boolean, integer, integer), my_alert_settings(bigint),
          guardian_alert_settings(bigint, bigint);
        drop table alert_delivery, alert_message, guardian_alert_setting;
        """
    )
    # 430_weekly_trend_json.sql: the copy 0014 froze, after the week_json() that counts missing work goes
    # (the old signature comes back with it).
    op.execute("drop function week_json(date, numeric, integer, numeric, integer, numeric, integer, integer, text, integer)")
    run_frozen_sql("0014", "430_weekly_trend_json.sql")
    # 210_oneroster_missing_work_schema.sql
    op.execute("drop table oneroster_student_enrollment, oneroster_enrollment, oneroster_course_work")
    op.execute("alter table oneroster_line_item drop column assign_date, drop column due_date")
    # 240_missing_work.sql (new in 0015).
    op.execute("drop function linked_missing_work(bigint, date, date)")
    op.execute("drop function student_missing_work(bigint, date, date)")
    # 200_missing_work_schema.sql: the scores' links (and their indexes and keys), then the three tables.
    for table in ("quiz_attempt", "assignment_submission"):
        op.execute(f"alter table {table} drop column course_work_id")
    op.execute("drop table course_work_excusal")
    op.execute("drop table enrollment")
    op.execute("drop table course_work")
