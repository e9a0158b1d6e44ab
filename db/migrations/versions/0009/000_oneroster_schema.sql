-- OneRoster CSV import (weekly-trends import oneroster): what each import
-- needs to recognise the rows it wrote before. Every table is keyed by
-- (source, sourced_id): the source is the sending system (manifest
-- source.systemCode, or --source), so two systems' sourcedIds never collide.
-- Written only by the importer (web/oneroster/), read by nobody else; the
-- app roles get no rights on them.

create table oneroster_student (
  source text not null,
  sourced_id text not null,
  student_profile_id bigint not null unique references student_profile on delete cascade,
  primary key (source, sourced_id)
);
comment on table oneroster_student is
  'OneRoster user (role student) -> student_profile. Deleting the student removes the mapping; the next import creates the student again if the source still lists it.';

create table oneroster_guardian (
  source text not null,
  sourced_id text not null,
  guardian_id bigint not null references guardian on delete cascade,
  -- false: the import found a guardian with this email and adopted it; it never deletes an adopted guardian.
  created boolean not null,
  primary key (source, sourced_id)
);
create index oneroster_guardian_guardian_id_idx on oneroster_guardian (guardian_id);
comment on table oneroster_guardian is
  'OneRoster user (role parent or guardian) -> guardian. created: the import made the guardian row (and may delete it again).';

create table oneroster_class (
  source text not null,
  sourced_id text not null,
  course_id bigint not null unique references course on delete cascade,
  primary key (source, sourced_id)
);
comment on table oneroster_class is 'OneRoster class -> course.';

create table oneroster_category (
  source text not null,
  sourced_id text not null,
  title text not null,
  primary key (source, sourced_id)
);
comment on table oneroster_category is 'OneRoster categories as last imported: their titles decide whether a line item is a quiz or an assignment.';

create table oneroster_line_item (
  source text not null,
  sourced_id text not null,
  title text not null,
  class_sourced_id text not null,
  category_sourced_id text,
  result_value_max numeric,
  primary key (source, sourced_id),
  constraint oneroster_line_item_max_positive check (result_value_max > 0)
);
comment on table oneroster_line_item is 'OneRoster line items as last imported.';

create table oneroster_result (
  source text not null,
  sourced_id text not null,
  line_item_sourced_id text not null,
  student_sourced_id text not null,
  score_status text not null,
  score numeric,
  -- As sent (validated): a date, or a date and time with or without an offset.
  score_date text,
  -- The row this result owns: quiz_attempt.id or assignment_submission.id by kind. No foreign key (a
  -- result owns a row of one table or the other); a row deleted by someone else is written again.
  kind text not null,
  target_id bigint not null,
  primary key (source, sourced_id),
  constraint oneroster_result_kind check (kind in ('quiz', 'assignment')),
  constraint oneroster_result_score_status check
    (score_status in ('exempt', 'fully graded', 'not submitted', 'partially graded', 'submitted'))
);
comment on table oneroster_result is
  'OneRoster results as last imported, and the quiz_attempt or assignment_submission row each one owns (kind, target_id).';
