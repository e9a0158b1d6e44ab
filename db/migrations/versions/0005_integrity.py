"""Integrity: trigger functions only their owner may attach, refresh from any date, exact at every isolation level, instants in range.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 000_integrity_schema.sql, then the function files this revision changed.
    run_frozen_sql(revision)


def downgrade() -> None:
    # Revision 0003 installed these functions last; its text grants PUBLIC nothing
    # explicitly, so the revokes below are undone by restoring the default grant.
    run_frozen_sql("0003", "210_source_triggers.sql", "220_student_profile_triggers.sql", "300_refresh_and_check.sql")

    run_sql(
        """
        grant execute on function tg_score_source__maintain_weekly(), tg_score_source__refuse_truncate(),
          tg_student_profile__validate_time_zone(), tg_student_profile__rebuild_weeks_on_time_zone(),
          tg_student_profile__remove_weeks() to public;
        alter table quiz_attempt drop constraint quiz_attempt_completed_at_in_range;
        alter table assignment_submission drop constraint assignment_submission_submitted_at_in_range,
          drop constraint assignment_submission_graded_at_in_range;
        """
    )
