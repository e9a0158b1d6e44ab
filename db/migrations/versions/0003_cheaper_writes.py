"""Cheaper writes: no foreign keys, generated columns or checks on the aggregates, one trigger function, generic plans.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 000_writer_cost_schema.sql, then the function files this revision changed.
    run_frozen_sql(revision)


def downgrade() -> None:
    run_sql(
        """
        drop trigger _500_remove_weeks_after_delete on student_profile;
        alter table student_weekly_performance reset (fillfactor);
        alter table student_course_weekly_performance reset (fillfactor);
        delete from student_weekly_performance t
         where not exists (select from student_profile s where s.id = t.student_profile_id);
        delete from student_course_weekly_performance t
         where not exists (select from student_profile s where s.id = t.student_profile_id)
            or not exists (select from course c where c.id = t.course_id);

        -- PostgreSQL 15 cannot turn a column back into a generated one: re-add them.
        alter table student_weekly_performance
          drop column year, drop column week_number,
          drop column quiz_average, drop column assignment_average, drop column overall_average,
          add column year integer not null generated always as (extract(isoyear from week_start_date)::integer) stored,
          add column week_number integer not null generated always as (extract(week from week_start_date)::integer) stored,
          add column quiz_average numeric(5,2) generated always as (round(quiz_sum / nullif(quiz_count, 0), 2)) stored,
          add column assignment_average numeric(5,2)
            generated always as (round(assignment_sum / nullif(assignment_count, 0), 2)) stored,
          add column overall_average numeric(5,2) generated always as
            (round((quiz_sum + assignment_sum) / nullif(quiz_count + assignment_count, 0), 2)) stored,
          add constraint student_weekly_performance_student_profile_id_fkey
            foreign key (student_profile_id) references student_profile on delete cascade,
          add constraint student_weekly_performance_week_starts_monday check (extract(isodow from week_start_date) = 1);
        alter table student_course_weekly_performance
          add constraint student_course_weekly_performance_student_profile_id_fkey
            foreign key (student_profile_id) references student_profile on delete cascade,
          add constraint student_course_weekly_performance_course_id_fkey
            foreign key (course_id) references course on delete cascade,
          add constraint student_course_weekly_performance_week_starts_monday
            check (extract(isodow from week_start_date) = 1);
        """
    )
    # 0001's functions and triggers, as 0001 shipped them (its 210 file points
    # the triggers back at the per-table functions).
    run_frozen_sql(
        "0001",
        "100_weeks.sql",
        "200_apply_score_changes.sql",
        "210_source_triggers.sql",
        "220_student_profile_triggers.sql",
        "300_refresh_and_check.sql",
    )
    run_sql(
        """
        drop function tg_score_source__maintain_weekly(),
          tg_student_profile__remove_weeks(),
          weekly_figures_json(numeric, integer, numeric, integer, numeric, numeric, numeric),
          weekly_average(numeric, integer);
        """
    )
