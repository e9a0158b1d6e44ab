-- The reader role's row-level security asks the one home of access decisions (app_readable_students(),
-- 0015/140_guardian_access.sql): a guardian reads the children their link gives access to now, a
-- signed-in student themselves. And the access log names a student reading their own figures.

drop policy guardian_reads_own_children on student_profile;
create policy guardian_reads_own_children on student_profile for select to weekly_trends_reader
  using (id in (select app_readable_students()));
drop policy guardian_reads_own_children on student_weekly_performance;
create policy guardian_reads_own_children on student_weekly_performance for select to weekly_trends_reader
  using (student_profile_id in (select app_readable_students()));

alter table access_log add column student_reader_id bigint;
comment on column access_log.student_reader_id is
  'The student who read their own figures (app.student_id), when the reader was a student.';
alter table access_log drop constraint access_log_one_reader;
alter table access_log add constraint access_log_one_reader
  check (num_nonnulls(guardian_id, staff_member_id, student_reader_id) = 1);
