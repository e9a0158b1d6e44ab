-- Class (course) weekly averages for the dashboard: a materialized view
-- computed from the source rows when it is refreshed, by the same counting
-- rules and time zones as the weekly rows (counted_scores()). Nothing per
-- student and course is stored between refreshes.
-- Replaceable: re-running this file rebuilds the view from scratch.

drop materialized view if exists course_weekly_performance;
create materialized view course_weekly_performance as
select s.course_id,
       extract(isoyear from s.week_start_date)::integer as year,
       extract(week from s.week_start_date)::integer as week_number,
       s.week_start_date,
       -- the mean of all counted scores: every score weighs the same, whoever wrote it
       round(sum(s.score_sum) / sum(s.score_count), 2)::numeric(5,2) as class_average,
       count(*)::integer as student_count,
       sum(s.score_count)::integer as item_count
  from (select c.course_id, c.week_start_date, c.student_profile_id,
               sum(c.score) as score_sum, count(*) as score_count
          from public.counted_scores() c
         where c.course_id is not null
         group by c.course_id, c.week_start_date, c.student_profile_id) s
 group by s.course_id, s.week_start_date;

-- REFRESH ... CONCURRENTLY needs a unique index.
create unique index course_weekly_performance_course_week_key
  on course_weekly_performance (course_id, week_start_date);
create unique index course_weekly_performance_course_year_week_key
  on course_weekly_performance (course_id, year, week_number);

comment on materialized view course_weekly_performance is
  'Per course and ISO week: the mean of all counted scores (class_average), the students who have one (student_count) and the scores (item_count), computed from the source rows. Refreshed by refresh_course_weekly_performance().';
grant select on course_weekly_performance to weekly_trends_reader;
