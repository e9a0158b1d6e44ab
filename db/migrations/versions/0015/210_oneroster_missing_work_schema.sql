-- The OneRoster import's part of missing work (issue 26, item 4): line items become course_work (dueDate
-- its due_at), enrollments of role student become enrollment rows, results link to their line item's
-- work, and a result scored exempt becomes an excusal. Like the other oneroster_* tables: written only
-- by the importer (web/oneroster/), read by nobody else; the app roles get no rights on them.

alter table oneroster_line_item
  add column assign_date text,
  add column due_date text;
comment on column oneroster_line_item.due_date is
  'dueDate as sent (validated): course_work.due_at, a date alone the end of that day in the import''s time zone.';
comment on column oneroster_line_item.assign_date is 'assignDate as sent (validated); kept, not used.';

create table oneroster_course_work (
  source text not null,
  sourced_id text not null,
  course_work_id bigint not null unique references course_work on delete cascade,
  primary key (source, sourced_id)
);
comment on table oneroster_course_work is
  'OneRoster line item -> course_work. Deleting the work removes the mapping; the next import writes it again if the source still lists the line item.';

-- Every enrollment of the source as last imported, whatever its role (the role decides what it becomes:
-- student -> enrollment; other roles are kept for the steps that use them).
create table oneroster_enrollment (
  source text not null,
  sourced_id text not null,
  class_sourced_id text not null,
  user_sourced_id text not null,
  role text not null,
  begin_date date,
  end_date date,
  primary key (source, sourced_id)
);
comment on table oneroster_enrollment is 'OneRoster enrollments as last imported (every role).';

create table oneroster_student_enrollment (
  source text not null,
  sourced_id text not null,
  enrollment_id bigint not null unique references enrollment on delete cascade,
  primary key (source, sourced_id)
);
comment on table oneroster_student_enrollment is
  'OneRoster enrollment (role student) -> enrollment. Deleting the enrollment removes the mapping; the next import writes it again if the source still lists it.';
