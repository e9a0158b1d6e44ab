-- Staff: school staff who look after the weekly rows (search, list,
-- recalculate one student). Their credential is distinct from parents'.

create table staff_member (
  id bigint generated always as identity primary key,
  email text not null unique,
  display_name text,
  created_at timestamptz not null default now(),
  constraint staff_member_email_format check (email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
);
comment on table staff_member is 'A member of the school staff who may use the staff pages (/staff) with a token from issue_staff_token().';

create table staff_token (
  id bigint generated always as identity primary key,
  staff_member_id bigint not null references staff_member on delete cascade,
  -- sha256 of the token: the token itself is returned once and never stored.
  token_hash bytea not null unique,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  constraint staff_token_expires_after_creation check (expires_at > created_at)
);
create index staff_token_staff_member_id_idx on staff_token (staff_member_id);
comment on table staff_token is 'Tokens of staff members, stored as sha256 hashes; see issue_staff_token(). Never valid as a guardian token.';

-- The role the web app runs staff queries as (SET LOCAL ROLE). Cluster-wide,
-- like weekly_trends_reader: another database may have created it already.
do $$
begin
  if not exists (select from pg_roles where rolname = 'weekly_trends_staff') then
    create role weekly_trends_staff nologin;
  end if;
end
$$;
comment on role weekly_trends_staff is 'Weekly Trends web app: what the staff pages read, and refresh_weekly_performance().';

grant usage on schema public to weekly_trends_staff;
grant select on staff_member, staff_token, student_profile, guardian, guardian_student,
  student_weekly_performance to weekly_trends_staff;
grant execute on function refresh_weekly_performance(bigint, date, boolean) to weekly_trends_staff;
