-- The family's rights over the record (issue 25, items 1-3): the columns and tables behind
-- guardian_link_state() (db/functions/140_guardian_access.sql), the one home of every decision about
-- a guardian's access to a student. Functions come next (0015/140_guardian_access.sql); the policies
-- and the access log's new reader after them (0015/149_rights_policies_schema.sql).

alter table student_profile
  add column birth_date date,
  add column email text,
  add column dependant_until date,
  add constraint student_profile_email_format check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
  add constraint student_profile_birth_date_plausible check (birth_date between date '1900-01-01' and date '9999-01-01');
comment on column student_profile.birth_date is
  'The student''s date of birth (nullable; writers and the OneRoster import may supply it): from the birthday at WEEKLY_TRENDS_RIGHTS_AGE, in the student''s time zone, a guardian link gives no access unless shared or dependant (guardian_link_state()). Null: unaffected.';
comment on column student_profile.email is
  'The student''s own address (nullable): where `weekly-trends invite --to-student` and the staff page send the student''s sign-in link.';
comment on column student_profile.dependant_until is
  'Recorded by staff (set_student_dependant()): the student is a dependant of their guardians through this date (in the student''s time zone), who keep access past the rights age until then.';

alter table guardian_student
  add column shared_at timestamptz,
  add column restricted_at timestamptz,
  add column restricted_until date;
comment on column guardian_student.shared_at is
  'When the student (past the rights age) shared their record with this guardian; null: not shared. Set and cleared by the student through set_guardian_sharing().';
comment on column guardian_student.restricted_at is
  'When a restriction on this link began (restrict_guardian_link()); null: none. A restricted guardian gets what an unlinked one gets. Who, when and why: guardian_link_restriction_event.';
comment on column guardian_student.restricted_until is
  'The last day (in the student''s time zone) of the restriction; null: until lifted.';

create table guardian_link_restriction_event (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  -- No foreign keys, as access_log: the history outlives the link it is about.
  guardian_id bigint not null,
  student_profile_id bigint not null,
  action text not null,
  reason text,
  until date,
  staff_member_id bigint,
  by_role text not null default session_user,
  constraint guardian_link_restriction_event_action check (action in ('restricted', 'lifted')),
  constraint guardian_link_restriction_event_reason check (
    action = 'lifted' or length(btrim(reason)) between 1 and 2000)
);
create index guardian_link_restriction_event_link_idx
  on guardian_link_restriction_event (student_profile_id, guardian_id, at);
comment on table guardian_link_restriction_event is
  'Append-only history of restrictions on guardian links: who (staff member, or the database role of an operator) set or lifted one, when and why. Written by restrict_guardian_link() and lift_guardian_link_restriction().';

create table student_token (
  id bigint generated always as identity primary key,
  student_profile_id bigint not null references student_profile on delete cascade,
  -- sha256 of the token: the token itself is returned once and never stored.
  token_hash bytea not null unique,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  constraint student_token_expires_after_creation check (expires_at > created_at)
);
create index student_token_student_profile_id_idx on student_token (student_profile_id);
comment on table student_token is
  'Bearer tokens of students (their own sign-in link), stored as sha256 hashes; see issue_student_token(). The app''s roles reach it only through find_student_token() and the functions beside it.';
revoke all on student_token, guardian_link_restriction_event from public;
grant select on guardian_link_restriction_event to weekly_trends_staff;

-- weekly_trend_json() gains p_principal (a student reads their own figures): the old signature goes
-- before 0015/430_weekly_trend_json.sql creates the new one.
drop function weekly_trend_json(bytea, bigint, bigint, integer, date, integer, text, boolean, boolean, numeric, integer);
