-- A student's time zone decides the week of each of their scores: it must be
-- a real IANA name, and changing it moves their scores between weeks.

create or replace function tg_student_profile__validate_time_zone()
returns trigger
language plpgsql
volatile
as $$
declare
  v_unknown text;
begin
  -- Once per statement: pg_timezone_names reads the whole zone database.
  select n.time_zone into v_unknown
    from new_rows n
   where not exists (select from pg_timezone_names z where z.name = n.time_zone)
   limit 1;
  if found then
    raise exception 'unknown time zone "%"', v_unknown
      using errcode = 'invalid_parameter_value',
            hint = 'Use an IANA time zone name such as Europe/London or America/New_York.';
  end if;
  return null;
end;
$$;
comment on function tg_student_profile__validate_time_zone() is
  'Refuses a student_profile row whose time_zone is not an IANA name known to this server.';

create or replace function tg_student_profile__rebuild_weeks_on_time_zone()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_student_profile_id bigint;
begin
  if tg_relid <> 'public.student_profile'::regclass or tg_level <> 'STATEMENT' or tg_when <> 'AFTER' then
    raise exception '%() runs only as an AFTER statement trigger of student_profile, not on %', 'tg_student_profile__rebuild_weeks_on_time_zone', tg_relid::regclass
      using errcode = 'trigger_protocol_violated';
  end if;
  -- FOR UPDATE is exclusive against writers' FOR KEY SHARE (see
  -- apply_score_changes): writers in flight have committed when it is
  -- granted, later ones wait. Each rebuild statement then takes a fresh
  -- snapshot, which only READ COMMITTED gives.
  perform assert_read_committed('changing a student''s time zone');
  for v_student_profile_id in
    select n.id
      from new_rows n
      join old_rows o using (id)
     where n.time_zone is distinct from o.time_zone
     order by n.id
  loop
    perform 1 from student_profile where id = v_student_profile_id for update;
    perform rebuild_weekly_rows(v_student_profile_id, null);
  end loop;
  return null;
end;
$$;
comment on function tg_student_profile__rebuild_weeks_on_time_zone() is
  'Recomputes the weekly rows of students whose time_zone changed: their scores may fall in other weeks now.';

create or replace function tg_student_profile__remove_weeks()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  if tg_relid <> 'public.student_profile'::regclass or tg_level <> 'STATEMENT' or tg_when <> 'AFTER' then
    raise exception '%() runs only as an AFTER statement trigger of student_profile, not on %', 'tg_student_profile__remove_weeks', tg_relid::regclass
      using errcode = 'trigger_protocol_violated';
  end if;
  -- The weekly rows have no foreign key (its check cost writers more than
  -- the rest of the trigger), so a deleted student's rows are removed here.
  delete from student_weekly_performance t using old_rows o where t.student_profile_id = o.id;
  -- So are the decline walk's kept state and its bookkeeping (no foreign keys either).
  delete from alert_walk_checkpoint c using old_rows o where c.student_profile_id = o.id;
  delete from alert_history_change c using old_rows o where c.student_profile_id = o.id;
  return null;
end;
$$;
comment on function tg_student_profile__remove_weeks() is
  'Deletes the weekly rows of deleted students, and their alert_walk_checkpoint and alert_history_change rows.';

create or replace trigger _100_validate_time_zone_after_insert
  after insert on student_profile referencing new table as new_rows
  for each statement execute function tg_student_profile__validate_time_zone();
create or replace trigger _100_validate_time_zone_after_update
  after update on student_profile referencing new table as new_rows
  for each statement execute function tg_student_profile__validate_time_zone();
create or replace trigger _500_rebuild_weeks_on_time_zone
  after update on student_profile referencing old table as old_rows new table as new_rows
  for each statement execute function tg_student_profile__rebuild_weeks_on_time_zone();
create or replace trigger _500_remove_weeks_after_delete
  after delete on student_profile referencing old table as old_rows
  for each statement execute function tg_student_profile__remove_weeks();

-- Triggers fire without an EXECUTE check; it is checked only when a trigger
-- is created. Nobody but the owner may attach these functions to a table.
revoke all on function tg_student_profile__validate_time_zone() from public;
revoke all on function tg_student_profile__rebuild_weeks_on_time_zone() from public;
revoke all on function tg_student_profile__remove_weeks() from public;
