-- Class (course) weekly averages for the dashboard: a materialized view
-- computed from the source rows when it is refreshed, by the same counting
-- rules and time zones as the weekly rows (counted_scores()). Nothing per
-- student and course is stored between refreshes.
-- A materialized view cannot be replaced: a revision that changes it drops
-- it first, in its schema file (as 0014/050_named_pieces_schema.sql does).

create materialized view course_weekly_performance as
select c.course_id,
       extract(isoyear from c.week_start_date)::integer as year,
       extract(week from c.week_start_date)::integer as week_number,
       c.week_start_date,
       -- the mean of all counted scores: every score weighs the same, whoever wrote it;
       -- rounded by the one averaging rule (weekly_average(), as the weekly rows)
       public.weekly_average(sum(c.score), count(*)::integer)::numeric(5,2) as class_average,
       -- One sort by (course, week) serves the distinct count: measured
       -- 1.0 s against 2-8 s for grouping by student first (a million
       -- student-course-week groups spilling from a hash table).
       count(distinct c.student_profile_id)::integer as student_count,
       count(*)::integer as item_count
  from public.counted_scores() c
 where c.course_id is not null
 group by c.course_id, c.week_start_date;

-- REFRESH ... CONCURRENTLY needs a unique index.
create unique index course_weekly_performance_course_week_key
  on course_weekly_performance (course_id, week_start_date);
create unique index course_weekly_performance_course_year_week_key
  on course_weekly_performance (course_id, year, week_number);

comment on materialized view course_weekly_performance is
  'Per course and ISO week: the mean of all counted scores (class_average), the students who have one (student_count) and the scores (item_count), computed from the source rows. Refreshed by refresh_course_weekly_performance().';
-- No grant to weekly_trends_reader (revision 0014): it reads the view through linked_class_weeks()
-- (430_weekly_trend_json.sql), which hides averages over fewer students than the minimum.
