"""Core: source tables, weekly aggregates kept by triggers, class view, tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 000_core_schema.sql, then the db/functions/ files as they were at this revision.
    run_frozen_sql(revision)


def downgrade() -> None:
    run_sql(
        """
        drop materialized view if exists course_weekly_performance;
        drop table if exists student_course_weekly_performance, student_weekly_performance,
          assignment_submission, quiz_attempt, guardian_token, guardian_student, guardian,
          course, student_profile cascade;
        drop function if exists
          issue_guardian_token(bigint, interval),
          check_course_weekly_performance(bigint),
          check_weekly_performance(bigint),
          weekly_figures_json(numeric, integer, numeric, integer),
          refresh_weekly_performance(bigint, date, boolean),
          refresh_course_weekly_performance(),
          rebuild_weekly_rows(bigint, date),
          expected_course_weeks(bigint, date),
          assert_read_committed(text),
          tg_student_profile__rebuild_weeks_on_time_zone(),
          tg_student_profile__validate_time_zone(),
          tg_score_source__refuse_truncate(),
          tg_assignment_submission__maintain_weekly(),
          tg_quiz_attempt__maintain_weekly(),
          apply_score_changes(score_change[]),
          raise_aggregate_drift(text),
          local_iso_week_start(timestamptz, text);
        drop type if exists course_week_delta, score_change cascade;

        -- The role is cluster-wide: drop it only when no other database of
        -- the cluster still grants it anything (pg_shdepend spans databases).
        revoke all on schema public from weekly_trends_reader;
        do $$
        begin
          if exists (select from pg_roles where rolname = 'weekly_trends_reader')
             and not exists (select from pg_shdepend d
                              where d.refobjid = 'weekly_trends_reader'::regrole
                                and d.refclassid = 'pg_authid'::regclass) then
            drop role weekly_trends_reader;
          end if;
        end
        $$;
        """
    )
