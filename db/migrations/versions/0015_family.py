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
    # 430_weekly_trend_json.sql and 390_staff_attention.sql, 350_staff_attention_schema.sql (issue 27, 27b).
    # (430_weekly_trend_json.sql's staff branches go with the copy 0014 froze, restored below.)
    op.execute(
        """
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
    # 415_staff_oidc.sql: staff sign-in by OpenID Connect (new in 0015).
    op.execute("drop function open_staff_session_by_email(text, interval)")
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
    op.execute("drop function student_weekly_stats(bigint, date, integer, numeric, integer, missing_week[])")
    op.execute("drop function student_courses_json(bigint, date, integer, integer, missing_week[])")
    run_frozen_sql("0014", "430_weekly_trend_json.sql")
    # 210_oneroster_missing_work_schema.sql
    op.execute("drop table oneroster_student_enrollment, oneroster_enrollment, oneroster_course_work")
    op.execute("alter table oneroster_line_item drop column assign_date, drop column due_date")
    # 240_missing_work.sql (new in 0015).
    op.execute("drop function missing_weeks(bigint, date, date)")
    op.execute("drop function linked_missing_work(bigint, date, date)")
    op.execute("drop function student_missing_work(bigint, date, date)")
    # 200_missing_work_schema.sql: the scores' links (and their indexes and keys), then the three tables.
    for table in ("quiz_attempt", "assignment_submission"):
        op.execute(f"alter table {table} drop column course_work_id")
    op.execute("drop table course_work_excusal")
    op.execute("drop table enrollment")
    op.execute("drop table course_work")
    op.execute("drop type missing_week")
    # 665_erasure_and_retention.sql, 655_family_record.sql (new in 0015; issue 25 items 4-7).
    op.execute("drop function staff_erase_student(bigint, text, text)")
    op.execute("drop function purge_family_record(interval, interval, timestamptz, boolean, text)")
    op.execute("drop function erase_student(bigint, text, text, text, timestamptz, boolean)")
    op.execute("drop table access_record")  # its triggers with it
    op.execute("drop function tg_access_record__append_only()")
    op.execute("drop function table_deletions()")
    op.execute("drop function erased_source_hash(text, text)")
    op.execute("drop function operator_export_json(bigint, text, integer, numeric, integer, timestamptz)")
    op.execute("drop function family_export_json(bigint, text, integer, numeric, integer, timestamptz)")
    op.execute("drop function student_export_json(bigint, bigint, integer, numeric, integer, boolean)")
    op.execute("drop function family_access_record_json(bigint, text, timestamptz)")
    op.execute("drop function student_access_record(bigint, bigint)")
    op.execute("drop function record_guardian_sign_in(bytea, timestamptz)")
    op.execute("drop function append_access_record(bigint, text, text, text, text, jsonb, bigint, timestamptz)")
    op.execute("drop function family_may_see(bigint, bigint, timestamptz)")
    # 510_access_log.sql: the copy 0004 froze (only prune_access_log() deletes).
    run_frozen_sql("0004", "510_access_log.sql")
    # 170_left_at_schema.sql: students the import marked as left (issue 25 item 7); its index goes with it.
    op.execute("alter table student_profile drop column left_at")
    # 150_family_record_schema.sql
    op.execute("drop table erased_source_record")
    op.execute("drop table erasure_certificate")
    # 25a (rights age, student access, restrictions): 0015/100-149 and the functions it changed.
    op.execute(
        """
        drop function weekly_trend_json(bytea, bigint, bigint, integer, date, integer, text, boolean, boolean,
                                        numeric, integer, text);
        drop policy guardian_reads_own_children on student_profile;
        create policy guardian_reads_own_children on student_profile for select to weekly_trends_reader
          using (id in (select gs.student_profile_id from guardian_student gs where gs.guardian_id = app_guardian_id()));
        drop policy guardian_reads_own_children on student_weekly_performance;
        create policy guardian_reads_own_children on student_weekly_performance for select to weekly_trends_reader
          using (student_profile_id in (select gs.student_profile_id from guardian_student gs
                                         where gs.guardian_id = app_guardian_id()));
        -- Entries of students' own reads have no place in the older log (one of guardian or staff
        -- member): the append-only trigger steps aside for this delete only.
        alter table access_log disable trigger _100_append_only_delete;
        delete from access_log where student_reader_id is not null;
        alter table access_log enable trigger _100_append_only_delete;
        """
    )
    run_frozen_sql("0014", "430_weekly_trend_json.sql")
    run_frozen_sql("0007", "600_week_scores.sql")
    run_frozen_sql("0008", "620_staff_guardian_links.sql")
    run_frozen_sql("0004", "510_access_log.sql")
    op.execute(
        """
        alter table access_log drop constraint access_log_one_reader;
        alter table access_log add constraint access_log_one_reader
          check (num_nonnulls(guardian_id, staff_member_id) = 1);
        alter table access_log drop column student_reader_id;
        drop function set_guardian_sharing(bigint, boolean);
        drop function my_guardians();
        drop function sign_out_student_token(bigint);
        drop function find_student_token(bytea, bigint);
        drop function revoke_unsent_student_token(bigint, bytea);
        drop function staff_issue_student_token(bigint, interval);
        drop function issue_student_token(bigint, interval);
        drop function set_student_dependant(bigint, date);
        drop table guardian_link_restriction_event;
        drop function tg_guardian_link_restriction_event__append_only();
        drop function lift_guardian_link_restriction(bigint, bigint);
        drop function restrict_guardian_link(bigint, bigint, text, date);
        drop function app_may_read_student(bigint);
        drop function app_readable_students();
        drop function student_may_sign_in(bigint, timestamptz);
        drop function student_link_states(bigint, timestamptz);
        drop function guardian_link_state(bigint, bigint, timestamptz);
        drop function guardian_link_states(bigint, timestamptz);
        drop function link_state(date, date, date, timestamptz, timestamptz, date);
        drop function rights_age_reached_on(date);
        drop function app_student_id();
        drop function student_access_mode();
        drop function rights_age();
        drop table student_token;
        alter table guardian_student drop column shared_at, drop column restricted_at, drop column restricted_until;
        alter table student_profile drop column birth_date, drop column email, drop column dependant_until;
        """
    )
