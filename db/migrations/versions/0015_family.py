"""The family's rights over the record, missing work and chosen alerts, staff sign-in and the teacher's list
(issues 24-27). Each change ships as a file of its own under versions/0015/, run in name order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op  # noqa: F401 - used by the downgrade steps

from db.migrations.sqlfiles import run_frozen_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every file under versions/0015/, in name order (each says what it changes).
    run_frozen_sql(revision)


def downgrade() -> None:
    # Each change undone, in the reverse order of upgrade().
    # 430_weekly_trend_json.sql and 390_staff_attention.sql, 350_staff_attention_schema.sql (issue 27, 27b).
    run_frozen_sql("0014", "430_weekly_trend_json.sql")
    op.execute(
        """
        revoke execute on function student_weekly_stats(bigint, date, integer, numeric, integer)
          from weekly_trends_staff;
        drop function staff_student_page(bytea, bigint, bigint, integer, date, integer, text, numeric, integer);
        drop function add_follow_up_note(bigint, text, date, text);
        drop function staff_attention(bytea, bigint, bigint, text, numeric, integer, numeric, integer, date, text);
        drop function staff_token_member(bytea, bigint);
        drop function staff_may_see_student(bigint, bigint);
        drop index assignment_submission_course_counted_idx;
        drop index quiz_attempt_course_completed_idx;
        drop table follow_up_note;
        drop table oneroster_teacher_enrollment;
        drop table course_teacher;
        """
    )
