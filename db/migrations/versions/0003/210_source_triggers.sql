-- Statement-level triggers on the two source tables: one call per statement
-- (INSERT, UPDATE, DELETE, COPY, multi-row), whatever program wrote it.

create or replace function tg_score_source__maintain_weekly()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_changes score_change[] := '{}';
begin
  -- Transition tables exist only for the events that have them; each
  -- statement here is planned once per table and event.
  if tg_op in ('UPDATE', 'DELETE') then
    if tg_table_name = 'quiz_attempt' then
      v_changes := array(select quiz_attempt_score_change(o, -1) from old_rows o);
    else
      v_changes := array(select assignment_submission_score_change(o, -1) from old_rows o);
    end if;
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    if tg_table_name = 'quiz_attempt' then
      v_changes := v_changes || array(select quiz_attempt_score_change(n, 1) from new_rows n);
    else
      v_changes := v_changes || array(select assignment_submission_score_change(n, 1) from new_rows n);
    end if;
  end if;
  -- An INSERT's foreign-key checks locked its students FOR KEY SHARE already.
  perform apply_score_changes(v_changes, p_students_locked => tg_op = 'INSERT');
  return null;
end;
$$;
comment on function tg_score_source__maintain_weekly() is
  'Keeps the weekly aggregates exact after any write to quiz_attempt or assignment_submission: old rows leave, new rows enter.';

create or replace function tg_score_source__refuse_truncate()
returns trigger
language plpgsql
as $$
begin
  -- TRUNCATE fires no DELETE trigger, so the weekly rows would silently keep
  -- the removed scores.
  raise exception 'TRUNCATE of % would leave the weekly performance figures stale', tg_table_name
    using errcode = 'feature_not_supported',
          hint = 'Use DELETE, which keeps them exact (or TRUNCATE with the triggers disabled, then run refresh_weekly_performance()).';
end;
$$;
comment on function tg_score_source__refuse_truncate() is 'Refuses TRUNCATE of a table whose rows feed the weekly aggregates.';

-- Each event needs its own trigger: a trigger with transition tables may
-- name only one event.
create or replace trigger _500_maintain_weekly_after_insert
  after insert on quiz_attempt referencing new table as new_rows
  for each statement execute function tg_score_source__maintain_weekly();
create or replace trigger _500_maintain_weekly_after_update
  after update on quiz_attempt referencing old table as old_rows new table as new_rows
  for each statement execute function tg_score_source__maintain_weekly();
create or replace trigger _500_maintain_weekly_after_delete
  after delete on quiz_attempt referencing old table as old_rows
  for each statement execute function tg_score_source__maintain_weekly();
create or replace trigger _100_refuse_truncate
  before truncate on quiz_attempt
  for each statement execute function tg_score_source__refuse_truncate();

create or replace trigger _500_maintain_weekly_after_insert
  after insert on assignment_submission referencing new table as new_rows
  for each statement execute function tg_score_source__maintain_weekly();
create or replace trigger _500_maintain_weekly_after_update
  after update on assignment_submission referencing old table as old_rows new table as new_rows
  for each statement execute function tg_score_source__maintain_weekly();
create or replace trigger _500_maintain_weekly_after_delete
  after delete on assignment_submission referencing old table as old_rows
  for each statement execute function tg_score_source__maintain_weekly();
create or replace trigger _100_refuse_truncate
  before truncate on assignment_submission
  for each statement execute function tg_score_source__refuse_truncate();

-- The twin per-table functions of revision 0001, now one function.
drop function if exists tg_quiz_attempt__maintain_weekly(), tg_assignment_submission__maintain_weekly();
