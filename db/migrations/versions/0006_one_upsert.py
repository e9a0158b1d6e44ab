"""One upsert per write, one round trip per read: the per-course aggregate rows are gone (the class view
and a student's per-course weeks come from the source rows), INSERTs skip the emptied/negative check, and
weekly_trend_json() answers a parent in one call.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 000_one_upsert_schema.sql, then the function files this revision changed or added, in name order
    # (350_course_weekly_performance.sql after 300, whose counted_scores() it reads).
    run_frozen_sql(revision)


def downgrade() -> None:
    # The new functions first: expected_course_weeks(bigint, date, date) would make the previous
    # two-argument calls ambiguous, and the class view reads counted_scores().
    run_sql(
        """
        drop function weekly_trend_json(bytea, bigint, bigint, integer, date, integer, text, boolean, boolean),
          linked_course_weeks(bigint, date, date),
          week_json(date, numeric, integer, numeric, integer, numeric, integer, integer), trend_json(bigint, numeric, numeric),
          utc_iso_timestamp(timestamptz);
        drop materialized view course_weekly_performance;
        drop function expected_weeks(bigint, date), expected_course_weeks(bigint, date, date),
          counted_scores(bigint, date, date);

        create table student_course_weekly_performance (
          student_profile_id bigint not null,
          course_id bigint not null,
          week_start_date date not null,
          quiz_sum numeric not null default 0,
          quiz_count integer not null default 0,
          assignment_sum numeric not null default 0,
          assignment_count integer not null default 0,
          created_at timestamptz not null default now(),
          updated_at timestamptz not null default now(),
          primary key (student_profile_id, course_id, week_start_date)
        ) with (fillfactor = 80);
        comment on table student_course_weekly_performance is
          'Like student_weekly_performance, per course as well: the source of course_weekly_performance. Maintained by the same triggers.';
        grant select on student_course_weekly_performance to weekly_trends_reader;
        alter table student_course_weekly_performance enable row level security, force row level security;
        """
    )
    run_sql(
        """
        do $$
        begin
          execute format('create policy owner_all on student_course_weekly_performance for all to %I'
                         ' using (true) with check (true)', current_user);
        end
        $$;
        create policy not_app_roles_all on student_course_weekly_performance for all to public
          using (not app_role_restricted()) with check (not app_role_restricted());
        create policy guardian_reads_own_children on student_course_weekly_performance for select to weekly_trends_reader
          using (student_profile_id in (select gs.student_profile_id from guardian_student gs
                                         where gs.guardian_id = app_guardian_id()));

        create index assignment_submission_student_idx on assignment_submission (student_profile_id);
        drop index assignment_submission_student_counted_idx;
        """
    )
    # Revision 0005's functions (expected_course_weeks(bigint, date) among them), then the rows they keep.
    run_frozen_sql("0005", "210_source_triggers.sql", "220_student_profile_triggers.sql", "300_refresh_and_check.sql")
    run_sql(
        """
        drop function apply_weekly_deltas(course_week_delta[], boolean);
        insert into student_course_weekly_performance
               (student_profile_id, course_id, week_start_date, quiz_sum, quiz_count, assignment_sum, assignment_count)
        select e.student_profile_id, e.course_id, e.week_start_date,
               e.quiz_sum, e.quiz_count, e.assignment_sum, e.assignment_count
          from expected_course_weeks() e
         where e.course_id is not null;
        """
    )
    # The class view over the per-course rows again, as revision 0001 made it.
    run_frozen_sql("0001", "250_course_weekly_performance.sql")
