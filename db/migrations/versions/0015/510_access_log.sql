-- The access log: entries are added by log_access(), never changed, and
-- removed only by prune_access_log().

create or replace function log_access(p_student_profile_id bigint, p_endpoint text)
returns void
language sql
volatile
security definer
set search_path = pg_catalog, public
as $$
  -- The reader is whoever the request's transaction acts for: exactly one of the three settings.
  insert into access_log (guardian_id, staff_member_id, student_reader_id, student_profile_id, endpoint)
  values (app_guardian_id(), app_staff_member_id(), app_student_id(), p_student_profile_id, p_endpoint)
$$;
comment on function log_access(bigint, text) is
  'Records that the guardian, staff member or student of this request (app.guardian_id / app.staff_member_id / app.student_id) read a student''s figures through p_endpoint.';
revoke all on function log_access(bigint, text) from public;
grant execute on function log_access(bigint, text) to weekly_trends_reader, weekly_trends_staff;

create or replace function prune_access_log(p_older_than interval default '1 year')
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_pruned bigint;
begin
  if p_older_than is null or p_older_than <= interval '0' then
    raise exception 'retention must be positive, got %', p_older_than
      using errcode = 'invalid_parameter_value';
  end if;
  delete from access_log where occurred_at < now() - p_older_than;
  get diagnostics v_pruned = row_count;
  return v_pruned;
end;
$$;
comment on function prune_access_log(interval) is
  'Deletes access log entries older than p_older_than (default 1 year); returns how many. The only way entries leave the log.';
revoke all on function prune_access_log(interval) from public;

create or replace function tg_access_log__append_only()
returns trigger
language plpgsql
as $$
declare
  v_context text;
begin
  if tg_op = 'DELETE' then
    -- A DELETE issued by prune_access_log(), erase_student() or purge_family_record() itself; the call
    -- stack cannot be set by a caller, unlike a setting.
    get diagnostics v_context = pg_context;
    if v_context ~ '(^|\n)PL/pgSQL function prune_access_log\(interval\) line \d+ at SQL statement(\n|$)'
       or v_context ~ '(^|\n)PL/pgSQL function (erase_student|purge_family_record)\([^)]*\) line \d+ at (SQL statement|EXECUTE)(\n|$)' then
      return null;
    end if;
  end if;
  raise exception 'access_log is append-only: % is refused', tg_op
    using errcode = 'insufficient_privilege',
          hint = 'Entries leave the log only through prune_access_log(interval), erase_student() and purge_family_record().';
end;
$$;
comment on function tg_access_log__append_only() is
  'Refuses UPDATE, TRUNCATE, and DELETE other than prune_access_log()''s, erase_student()''s and purge_family_record()''s, on access_log, for every role.';

-- Statement level: one check per statement, however many rows it touches.
create or replace trigger _100_append_only_update
  before update on access_log for each statement execute function tg_access_log__append_only();
create or replace trigger _100_append_only_delete
  before delete on access_log for each statement execute function tg_access_log__append_only();
create or replace trigger _100_append_only_truncate
  before truncate on access_log for each statement execute function tg_access_log__append_only();
