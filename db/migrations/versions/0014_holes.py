"""Holes closed (issue 22): names without control characters, ids that writers' explicit ids cannot
collide with, the reader role limited by row-level security, and the mail functions that go with them.
Each change ships as a file of its own under versions/0014/, run in name order.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from alembic import op  # noqa: F401 - used by the downgrade steps

from db.migrations.sqlfiles import run_frozen_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every file under versions/0014/, in name order (each says what it changes).
    run_frozen_sql(revision)


def downgrade() -> None:
    # Each change undone, in the reverse order of upgrade().
    # 625_staff_unsent_link.sql (new in 0014).
    op.execute("drop function staff_revoke_unsent_guardian_token(bigint, bigint, bytea)")
    # 610_mail.sql: the copy 0008 froze (my_weekly_digest() states the default again), then
    # guardian_weekly_digest() (new in 0014) goes.
    run_frozen_sql("0008", "610_mail.sql")
    op.execute("drop function guardian_weekly_digest(bigint)")
    # 050_named_pieces_schema.sql and the named pieces of 210, 300, 430 and 600 (issue 23): the copies
    # 0010, 0012 and 0011 froze (430 and 350 below), with the old signatures and check_course_weekly_performance().
    op.execute("drop function check_course_weekly_performance(bigint)")
    op.execute("drop function apply_weekly_deltas(week_delta[], boolean)")
    op.execute("drop function expected_weeks(bigint, date)")
    op.execute("drop function weekly_row_differences(bigint, date)")
    run_frozen_sql("0010", "210_source_triggers.sql")
    run_frozen_sql("0012", "300_refresh_and_check.sql")
    run_frozen_sql("0011", "600_weekly_trend_alerts.sql")
    op.execute("drop function score_change_delta(score_change, date)")
    op.execute("drop function weekly_deltas(score_change[])")
    op.execute("drop function lock_changed_students(score_change[], boolean)")
    op.execute("drop function alert_week_is_low(integer, numeric, numeric, numeric, integer)")
    op.execute("drop function alert_week_is_good(integer, numeric, numeric, numeric, integer)")
    op.execute("drop function alert_scored_weeks(bigint, date)")
    op.execute("drop function guardian_children_json(bigint)")
    op.execute("drop function student_courses_json(bigint, date, integer, integer)")
    op.execute("drop function weekly_trend_answer_json(bigint, integer, json, integer, text, json, json)")
    op.execute("drop type week_delta")
    # 430_weekly_trend_json.sql, 350_course_weekly_performance.sql: the copies 0013 froze (the class view is
    # rebuilt, with its grant to the reader), then linked_class_weeks() goes.
    run_frozen_sql("0013", "430_weekly_trend_json.sql", "350_course_weekly_performance.sql")
    op.execute("drop function linked_class_weeks(bigint, bigint[], date, date, integer)")
    op.execute("drop function class_view_populated()")
    # 425_sign_out.sql: the sign-out functions (new in 0014).
    op.execute("drop function sign_out_staff_token(bigint)")
    op.execute("drop function sign_out_guardian_token(bigint)")
    # 300_refresh_and_check.sql is 0012's copy again (restored above: its refresh needs a populated view),
    # so check_class_view() goes; 060_class_view_schema.sql: the refresh time's table.
    op.execute("drop function check_class_view(interval)")
    op.execute("drop table class_view_refresh")
    # 021_reader_rls_schema.sql
    op.execute("grant select on guardian_token, access_log to weekly_trends_reader")
    op.execute("revoke select on guardian from weekly_trends_reader")  # its column privileges too
    op.execute("grant select on guardian to weekly_trends_reader")
    for policy in ("staff_reads_all", "guardian_reads_self", "not_app_roles_all", "owner_all"):
        op.execute(f"drop policy {policy} on guardian")
    op.execute("alter table guardian no force row level security, disable row level security")
    # 020_ids_schema.sql: the sequences stay where they are (ahead of every id: harmless).
    for table in ("course", "guardian", "student_profile"):
        op.execute(f"drop trigger _900_advance_id_sequence on {table}")
    op.execute("drop function tg_id__advance_sequence()")
    op.execute("drop function advance_id_sequence(regclass, bigint)")
    # 010_names_schema.sql: the name constraints (the names it cleaned stay cleaned).
    op.execute("alter table staff_member drop constraint staff_member_display_name_printable")
    op.execute("alter table course drop constraint course_name_printable")
    op.execute("alter table guardian drop constraint guardian_display_name_printable")
    op.execute("alter table student_profile drop constraint student_profile_display_name_printable")
