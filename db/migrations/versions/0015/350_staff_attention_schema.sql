-- Issue 27 items 2, 5, 6 (the teacher's list, follow-up notes): who teaches what, the notes staff keep
-- about a student, and the indexes the teacher's list reads a course's students by.

create table course_teacher (
  staff_member_id bigint not null references staff_member on delete cascade,
  course_id bigint not null references course on delete cascade,
  created_at timestamptz not null default now(),
  primary key (staff_member_id, course_id)
);
create index course_teacher_course_id_idx on course_teacher (course_id);
comment on table course_teacher is
  'Who teaches what: the staff member teaches the course (writer contract; the OneRoster import fills it from enrollments.csv rows with role teacher). A staff member with a row here is a teacher: the staff pages show them only the students of their courses.';
-- Like the other tables of the writer contract: writers are the owner; the staff pages read it.
revoke all on course_teacher from public;
grant select on course_teacher to weekly_trends_staff;

-- The import's own course_teacher rows: one per teacher enrollment of a source, so that a delta's
-- tobedeleted row or a bulk file that no longer lists it takes the row away, and a rerun changes nothing.
create table oneroster_teacher_enrollment (
  source text not null,
  sourced_id text not null,
  user_sourced_id text not null,
  staff_member_id bigint not null references staff_member on delete cascade,
  course_id bigint not null references course on delete cascade,
  primary key (source, sourced_id)
);
create index oneroster_teacher_enrollment_teacher_idx on oneroster_teacher_enrollment (staff_member_id, course_id);
comment on table oneroster_teacher_enrollment is
  'OneRoster enrollment (role teacher) -> course_teacher row: the teacher user matched to staff_member by email.';
revoke all on oneroster_teacher_enrollment from public;

create table follow_up_note (
  id bigint generated always as identity primary key,
  student_profile_id bigint not null references student_profile on delete cascade,
  -- The author; null once the staff member is removed (the note stays with the student's record).
  staff_member_id bigint references staff_member on delete set null,
  kind text not null,
  noted_on date not null,
  note text not null,
  created_at timestamptz not null default now(),
  constraint follow_up_note_kind check (kind in ('family_contacted', 'met_student', 'other')),
  constraint follow_up_note_note_length check (length(note) between 1 and 2000),
  constraint follow_up_note_note_printable check (note !~ '[\x01-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]'),
  constraint follow_up_note_noted_on_range check (noted_on between date '2000-01-01' and date '2199-12-31')
);
create index follow_up_note_student_idx on follow_up_note (student_profile_id, noted_on desc, id desc);
create index follow_up_note_staff_member_idx on follow_up_note (staff_member_id);
comment on table follow_up_note is
  'Staff follow-up of a student (kind family_contacted, met_student or other; the day; a note of up to 2,000 characters; the author): staff only, part of the student''s record. Written by add_follow_up_note().';
revoke all on follow_up_note from public;

-- A course's students, by the course: the teacher's list finds them from their scores of the last weeks.
create index quiz_attempt_course_completed_idx on quiz_attempt (course_id, completed_at) where course_id is not null;
create index assignment_submission_course_counted_idx on assignment_submission (course_id, coalesce(graded_at, submitted_at))
  where course_id is not null;
