-- Issue 25 items 4-7: the family-visible record of access, the certificates of erasure and the tombstones
-- of erased students. The functions over them are db/functions/655_family_record.sql and
-- 665_erasure_and_retention.sql (frozen beside this file).

create table access_record (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  -- No foreign key: the record is append-only (a cascade would be an update of it); erase_student()
  -- removes a student's entries itself.
  student_profile_id bigint not null,
  -- The guardian whose own activity this is (a sign-in of theirs): shown to them alone. Null: an entry
  -- every reader of the child's record sees.
  guardian_id bigint,
  kind text not null,
  who text not null,
  role text not null,
  what text not null,
  detail jsonb,
  constraint access_record_kind check (kind ~ '^[a-z_]{1,40}$'),
  constraint access_record_who_length check (length(who) between 1 and 200),
  constraint access_record_role_length check (length(role) between 1 and 50),
  constraint access_record_what_length check (length(what) between 1 and 500)
);
comment on table access_record is
  'Append-only: what the family may see about who handled a child''s record (exports, erasure requests, imports that changed scores, restrictions, a reader''s own sign-ins). Staff reads and digests are read from access_log and digest_delivery beside it (student_access_record()). Written by append_access_record(); rows leave only through erase_student() and purge_family_record().';
comment on column access_record.guardian_id is
  'The guardian whose own activity the entry is (shown to them alone); null: every reader of the child''s record sees it.';
comment on column access_record.kind is
  'What happened, for pages to word it: export, erasure_request, import, restriction_set, restriction_lifted, sign_in, ...';
comment on column access_record.detail is
  'Machine-readable particulars (an import''s source and rows); never another guardian''s identity.';
create index access_record_student_at on access_record (student_profile_id, at desc);
comment on index access_record_student_at is 'A child''s record, newest first.';
-- No grant to the app's roles: they reach it only through the definer functions.
revoke all on access_record from public;

create table erasure_certificate (
  id bigint generated always as identity primary key,
  erased_at timestamptz not null,
  erased_by text not null,
  reason text not null,
  kind text not null,
  rows_deleted jsonb not null,
  constraint erasure_certificate_kind check (kind in ('request', 'retention')),
  constraint erasure_certificate_reason_length check (length(reason) between 1 and 1000),
  constraint erasure_certificate_by_length check (length(erased_by) between 1 and 200)
);
comment on table erasure_certificate is
  'One row per erasure (erase_student()): when, who ran it, why, and how many rows each table lost. No personal data: no student id, name or email.';
revoke all on erasure_certificate from public;

create table erased_source_record (
  source_hash bytea primary key,
  erased_at timestamptz not null
);
comment on table erased_source_record is
  'Tombstones of erased students: sha256 of the OneRoster source and sourcedId (erased_source_hash()), nothing readable. The import reports such a student as erased and does not bring them back unless --allow-erased.';
revoke all on erased_source_record from public;
