-- Class (course) weekly averages for the dashboard. A materialized view over
-- the per-course aggregates, so refreshing it never scans the source rows.
-- Replaceable: re-running this file rebuilds the view from scratch.

drop materialized view if exists course_weekly_performance;
create materialized view course_weekly_performance as
select t.course_id,
       extract(isoyear from t.week_start_date)::integer as year,
       extract(week from t.week_start_date)::integer as week_number,
       t.week_start_date,
       -- sums over sums: every counted score weighs the same, whoever wrote it
       round((sum(t.quiz_sum) + sum(t.assignment_sum)) / sum(t.quiz_count + t.assignment_count), 2)::numeric(5,2)
         as class_average,
       count(*)::integer as student_count,
       sum(t.quiz_count + t.assignment_count)::integer as item_count
  from student_course_weekly_performance t
 group by t.course_id, t.week_start_date
having sum(t.quiz_count + t.assignment_count) > 0;

-- REFRESH ... CONCURRENTLY needs a unique index.
create unique index course_weekly_performance_course_week_key
  on course_weekly_performance (course_id, week_start_date);
create unique index course_weekly_performance_course_year_week_key
  on course_weekly_performance (course_id, year, week_number);

comment on materialized view course_weekly_performance is
  'Per course and ISO week: the mean of all counted scores (class_average), the students who have one (student_count) and the scores (item_count). Refreshed by refresh_course_weekly_performance().';
grant select on course_weekly_performance to weekly_trends_reader;
