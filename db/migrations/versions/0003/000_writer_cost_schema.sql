-- What the write path paid for without needing it (measured in
-- docs/benchmark-analysis.md):
-- * foreign keys on the aggregates: a check per aggregate row written. The
--   rows derive from source rows that have foreign keys of their own; a
--   deleted student's rows are removed by a trigger on student_profile, a
--   deleted course's rows empty out as its scores move to course null.
-- * stored generated columns and CHECK constraints: their expressions are
--   read from the catalogue and compiled for every statement that writes the
--   table (a trigger's statement writes one row), and generated columns are
--   computed for an upsert's proposed row and again for its update. The
--   triggers write year, week_number and the averages from the same exact
--   sums; check_weekly_performance() compares all of them with the source.
alter table student_weekly_performance
  drop constraint student_weekly_performance_student_profile_id_fkey,
  drop constraint student_weekly_performance_week_starts_monday,
  alter column year drop expression,
  alter column week_number drop expression,
  alter column quiz_average drop expression,
  alter column assignment_average drop expression,
  alter column overall_average drop expression;

alter table student_course_weekly_performance
  drop constraint student_course_weekly_performance_student_profile_id_fkey,
  drop constraint student_course_weekly_performance_course_id_fkey,
  drop constraint student_course_weekly_performance_week_starts_monday;

-- Every write updates a row of each aggregate: room on the page lets the
-- update stay HOT (no index entry, no other page to log). Applies to pages
-- written from now on.
alter table student_weekly_performance set (fillfactor = 80);
alter table student_course_weekly_performance set (fillfactor = 80);

comment on column student_weekly_performance.quiz_average is
  'round(quiz_sum / quiz_count, 2), half away from zero; null when quiz_count is 0. Written with the sums by the triggers.';
comment on column student_weekly_performance.overall_average is
  '(quiz_sum + assignment_sum) / (quiz_count + assignment_count), rounded once to 2 decimals; null without scores.';
