-- The parents' answer reads a student's course weeks and the class view's weeks in one definer,
-- linked_course_class_weeks() (430_weekly_trend_json.sql), with one access check and one reading of the
-- student's rows: the two it replaces go.
drop function linked_class_weeks(bigint, bigint[], date, date, integer);
drop function linked_course_weeks(bigint, date, date);
