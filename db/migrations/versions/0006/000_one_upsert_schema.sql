-- One aggregate row per write (issue 11). The per-course rows fed only the
-- class view, which is refreshed nightly anyway, and cost every single-row
-- write a second upsert (~40 µs, half its WAL) and the district 1.9 GB: the
-- class view and a student's per-course weeks are now computed from the
-- source rows (db/functions/250_course_weekly_performance.sql,
-- 430_weekly_trend_json.sql).
drop materialized view course_weekly_performance;
drop table student_course_weekly_performance;

-- Replaced by expected_course_weeks(bigint, date, date) (an upper bound, for reads).
drop function expected_course_weeks(bigint, date);

-- A student's assignments by the instant that decides their week, so that
-- reading a few weeks of one student is a range scan, as it is for quizzes
-- (student_profile_id, completed_at). It replaces the index on
-- student_profile_id alone (which it serves too): no extra index to write.
create index assignment_submission_student_counted_idx
  on assignment_submission (student_profile_id, (coalesce(graded_at, submitted_at)));
drop index assignment_submission_student_idx;
