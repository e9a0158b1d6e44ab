-- Students who left the source (issue 25 item 7): the OneRoster import marks them instead of deleting them;
-- weekly-trends purge erases them through erase_student() once WEEKLY_TRENDS_LEFT_GRACE has passed.

alter table student_profile add column left_at timestamptz;
comment on column student_profile.left_at is
  'When the student left the school''s records (nullable): set by the OneRoster import when the source marks them tobedeleted, stops listing them in a bulk users.csv or no longer lists them as a student, cleared when it lists them again; writers may set and clear it too. Nothing changes for the family meanwhile; purge_family_record() erases the student (erase_student(), with a certificate) once left_at is older than WEEKLY_TRENDS_LEFT_GRACE.';
create index student_profile_left_at_idx on student_profile (left_at) where left_at is not null;
comment on index student_profile_left_at_idx is
  'The students who left, for purge_family_record() (few rows: partial).';
