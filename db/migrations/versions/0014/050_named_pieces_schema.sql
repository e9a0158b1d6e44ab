-- Named pieces (issue 23, item 5), and the drop statements db/functions/ no
-- longer holds (item 3): what this revision's copies of db/functions/ need
-- created or removed before they run.

-- The weekly grain's delta: course_week_delta without the course, which was
-- always null there (the triggers, the rebuild and the check). The per-course
-- grain (expected_course_weeks(), linked_course_weeks()) keeps course_week_delta.
create type week_delta as (
  student_profile_id bigint,
  week_start_date date,
  quiz_sum numeric,
  quiz_count integer,
  assignment_sum numeric,
  assignment_count integer
);
comment on type week_delta is
  'Net change of one student''s sums and counts in one ISO week: what apply_weekly_deltas() adds to student_weekly_performance.';
-- Their argument or result type changes (210 and 300 create them again).
drop function apply_weekly_deltas(course_week_delta[], boolean);
drop function expected_weeks(bigint, date);
drop function weekly_row_differences(bigint, date);

-- check_course_weekly_performance() checked nothing since revision 0006 (it
-- always returned no row): it now compares the class view with what its own
-- query gives from the source rows, per course week, so its parameter and
-- columns change (300_refresh_and_check.sql creates the new one).
drop function check_course_weekly_performance(bigint);

-- A materialized view cannot be replaced: 350_course_weekly_performance.sql
-- creates it again (without the grant to the reader, 021_reader_rls_schema.sql).
drop materialized view course_weekly_performance;
