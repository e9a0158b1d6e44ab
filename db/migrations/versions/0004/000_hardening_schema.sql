-- Hardening: row-level security on every relation with per-student data,
-- and the append-only access log.

-- The guardian a parent's request acts for: set by the app in each request's
-- transaction (set_config('app.guardian_id', id, true)) once the token is
-- checked. Unset or empty: null, and the policies below match nothing.
create or replace function app_guardian_id()
returns bigint
language sql
stable
parallel safe
as $$ select nullif(current_setting('app.guardian_id', true), '')::bigint $$;
comment on function app_guardian_id() is
  'The guardian of the current request (transaction-local setting app.guardian_id), null when unset.';

create or replace function app_staff_member_id()
returns bigint
language sql
stable
parallel safe
as $$ select nullif(current_setting('app.staff_member_id', true), '')::bigint $$;
comment on function app_staff_member_id() is
  'The staff member of the current request (transaction-local setting app.staff_member_id), null when unset.';

-- True for the app's roles (and login roles that are members of them):
-- row-level security restricts those; every other role is governed by its
-- privileges alone, as before (writers, operators, the owner).
create or replace function app_role_restricted()
returns boolean
language sql
stable
parallel safe
as $$ select pg_has_role('weekly_trends_reader', 'member') or pg_has_role('weekly_trends_staff', 'member') $$;
comment on function app_role_restricted() is
  'Whether the current role is, or acts through, weekly_trends_reader or weekly_trends_staff: row-level security applies to it.';

create table access_log (
  id bigint generated always as identity primary key,
  occurred_at timestamptz not null default now(),
  -- No foreign keys: an entry outlives the guardian, staff member or student
  -- it names, and a cascade would have to delete from an append-only table.
  guardian_id bigint,
  staff_member_id bigint,
  student_profile_id bigint not null,
  endpoint text not null,
  constraint access_log_one_reader check (num_nonnulls(guardian_id, staff_member_id) = 1),
  constraint access_log_endpoint_length check (length(endpoint) between 1 and 200)
);
create index access_log_occurred_at_idx on access_log (occurred_at);
create index access_log_student_profile_id_idx on access_log (student_profile_id, occurred_at);
comment on table access_log is
  'Append-only: who (guardian or staff member) read which student''s figures, when, through which endpoint. Written by log_access(); pruned only by prune_access_log().';

-- Row-level security, ENABLE and FORCE: the owner is subject to the policies
-- too, so it gets one of its own (using (true): the trigger write path pays
-- nothing), as does every role that is not the app's.
do $$
declare
  v_table text;
begin
  foreach v_table in array array['student_profile', 'guardian_student', 'guardian_token',
                                 'student_weekly_performance', 'student_course_weekly_performance', 'access_log']
  loop
    execute format('alter table %I enable row level security, force row level security', v_table);
    execute format('create policy owner_all on %I for all to %I using (true) with check (true)', v_table, current_user);
    execute format('create policy not_app_roles_all on %I for all to public'
                   ' using (not app_role_restricted()) with check (not app_role_restricted())', v_table);
  end loop;
end
$$;

-- Parents: only what belongs to the guardian of the request.
create policy guardian_reads_own_links on guardian_student for select to weekly_trends_reader
  using (guardian_id = app_guardian_id());
create policy guardian_reads_own_tokens on guardian_token for select to weekly_trends_reader
  using (guardian_id = app_guardian_id());
create policy guardian_reads_own_entries on access_log for select to weekly_trends_reader
  using (guardian_id = app_guardian_id());
create policy guardian_reads_own_children on student_profile for select to weekly_trends_reader
  using (id in (select gs.student_profile_id from guardian_student gs where gs.guardian_id = app_guardian_id()));
create policy guardian_reads_own_children on student_weekly_performance for select to weekly_trends_reader
  using (student_profile_id in (select gs.student_profile_id from guardian_student gs where gs.guardian_id = app_guardian_id()));
create policy guardian_reads_own_children on student_course_weekly_performance for select to weekly_trends_reader
  using (student_profile_id in (select gs.student_profile_id from guardian_student gs where gs.guardian_id = app_guardian_id()));

-- Staff: the staff pages search and list every student (revision 0002's grants).
create policy staff_reads_all on student_profile for select to weekly_trends_staff using (true);
create policy staff_reads_all on guardian_student for select to weekly_trends_staff using (true);
create policy staff_reads_all on student_weekly_performance for select to weekly_trends_staff using (true);

-- The app's roles add entries only through log_access() (security definer),
-- which names the request's own guardian or staff member; a parent may read
-- the entries about their own reads.
revoke all on access_log from public;
grant select on access_log to weekly_trends_reader;

-- Tokens are found through find_guardian_token() (security definer): before
-- authentication there is no guardian for the policy to match.
