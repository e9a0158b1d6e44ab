-- Statement-level triggers on the two source tables: one call per statement
-- (INSERT, UPDATE, DELETE, COPY, multi-row), whatever program wrote it. Each
-- applies signed score changes to student_weekly_performance as deltas: a
-- write costs the same however many rows its week already holds, and touches
-- one aggregate row per student-week (the class view and a student's
-- per-course weeks are computed from the source rows when read or refreshed).

create or replace function raise_aggregate_drift(p_table text)
returns void
language plpgsql
as $$
begin
  raise exception 'removing these scores would leave negative counts in %: the aggregates have drifted from the source rows', p_table
    using errcode = 'data_exception',
          hint = 'Run select * from check_weekly_performance() to see the drift, and refresh_weekly_performance() to repair it.';
end;
$$;
comment on function raise_aggregate_drift(text) is 'Raises the error for a delta that would drive a count below zero.';

create or replace function alert_history_horizon()
returns date
language sql
volatile
parallel safe
as $$
  -- Two weeks before today (UTC, by the clock, not the transaction's start): a change to a week before
  -- this is noted (alert_history_change); the teacher's list keeps the decline walk's state at a Monday
  -- at least three weeks back (alert_walk_checkpoint), so the week of slack covers a writer's statement
  -- that started before midnight or in another time zone.
  select (clock_timestamp() at time zone 'UTC')::date - 14
$$;
comment on function alert_history_horizon() is
  'The day before which a changed week is noted in alert_history_change: today (UTC) less 14 days.';

create or replace function note_alert_history_change(p_students bigint[])
returns void
language sql
volatile
set search_path = pg_catalog, public
as $$
  -- Append-only and keyed by the transaction: writers never wait on each other for it.
  insert into alert_history_change (student_profile_id)
  select s from unnest(p_students) s order by s
  on conflict do nothing
$$;
comment on function note_alert_history_change(bigint[]) is
  'Notes that this transaction changed weeks of the students more than two weeks back (alert_history_change): their alert_walk_checkpoint rows computed without it are stale. For the score triggers.';
revoke all on function note_alert_history_change(bigint[]) from public;

create or replace function apply_weekly_deltas(p_deltas week_delta[], p_may_empty boolean)
returns bigint
language plpgsql
volatile
set search_path = pg_catalog, public
-- Called with one row by many writes: one plan per statement.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_emptied week_delta[];
  v_negative boolean;
  v_written bigint;
  v_history_changed bigint[];  -- students with a week before alert_history_horizon() changed
begin
  -- The one place that inserts and deletes rows of student_weekly_performance
  -- (the single-row INSERT's update in place is in the trigger): the triggers
  -- add their deltas, rebuild_weekly_rows() the difference between the
  -- source rows and the stored row. p_deltas must be
  -- sorted by (student, week): rows are locked in that order, so concurrent
  -- writers cannot deadlock on them.
  with upserted as (
    -- year, week_number and the averages are written here, not generated
    -- (see db/migrations/versions/0003/000_writer_cost_schema.sql for why).
    insert into student_weekly_performance as t
           (student_profile_id, week_start_date, year, week_number,
            quiz_sum, quiz_count, assignment_sum, assignment_count,
            quiz_average, assignment_average, overall_average)
    select d.student_profile_id, d.week_start_date,
           date_part('isoyear', d.week_start_date), date_part('week', d.week_start_date),
           d.quiz_sum, d.quiz_count, d.assignment_sum, d.assignment_count,
           -- A new row's averages. Where the week has a row, the delta is only a
           -- change (+1,300 points over +1 score, say) and these are discarded,
           -- but they must still fit numeric(5,2): a delta that cannot be a
           -- whole week proposes null.
           case when d.quiz_sum between 0 and 999.99 * d.quiz_count
                then weekly_average(d.quiz_sum, d.quiz_count) end,
           case when d.assignment_sum between 0 and 999.99 * d.assignment_count
                then weekly_average(d.assignment_sum, d.assignment_count) end,
           case when d.quiz_sum + d.assignment_sum between 0 and 999.99 * (d.quiz_count + d.assignment_count)
                then weekly_average(d.quiz_sum + d.assignment_sum, d.quiz_count + d.assignment_count) end
      from unnest(p_deltas) d
    on conflict (student_profile_id, week_start_date) do update
       set year = excluded.year,
           week_number = excluded.week_number,
           quiz_sum = t.quiz_sum + excluded.quiz_sum,
           quiz_count = t.quiz_count + excluded.quiz_count,
           assignment_sum = t.assignment_sum + excluded.assignment_sum,
           assignment_count = t.assignment_count + excluded.assignment_count,
           quiz_average = weekly_average(t.quiz_sum + excluded.quiz_sum, t.quiz_count + excluded.quiz_count),
           assignment_average = weekly_average(t.assignment_sum + excluded.assignment_sum,
                                               t.assignment_count + excluded.assignment_count),
           overall_average = weekly_average(t.quiz_sum + excluded.quiz_sum + t.assignment_sum + excluded.assignment_sum,
                                            t.quiz_count + excluded.quiz_count
                                            + t.assignment_count + excluded.assignment_count),
           updated_at = now()
    returning t.student_profile_id, t.week_start_date, t.quiz_count, t.assignment_count
  )
  select array_agg(row(u.student_profile_id, u.week_start_date, 0, 0, 0, 0)::week_delta)
           filter (where u.quiz_count = 0 and u.assignment_count = 0),
         bool_or(u.quiz_count < 0 or u.assignment_count < 0),
         count(*),
         array_agg(distinct u.student_profile_id) filter (where u.week_start_date < alert_history_horizon())
    into v_emptied, v_negative, v_written, v_history_changed
    from upserted u;
  if v_history_changed is not null then
    perform note_alert_history_change(v_history_changed);
  end if;
  if not p_may_empty then
    -- Only INSERTs: every delta adds scores, so no week can empty.
    return v_written;
  end if;
  if v_negative then
    perform raise_aggregate_drift('student_weekly_performance');
  end if;
  if v_emptied is not null then
    -- A week whose last counted score left has no row (the issue allows
    -- either; an absent row keeps the table small).
    delete from student_weekly_performance t
     using unnest(v_emptied) e
     where (t.student_profile_id, t.week_start_date) = (e.student_profile_id, e.week_start_date)
       and t.quiz_count = 0 and t.assignment_count = 0;
  end if;
  return v_written;
end;
$$;
comment on function apply_weekly_deltas(week_delta[], boolean) is
  'Adds each (student, week) delta to student_weekly_performance, rewriting year, week_number and the averages from the exact sums. With p_may_empty (UPDATE, DELETE, rebuilds) deletes weeks left without scores and raises on a negative count; INSERTs skip that check. The only writer of that table; returns the rows written.';

-- The trigger's named pieces. score_change_delta() and weekly_deltas() are
-- SQL-language, invoker's rights, without SET clauses: the planner inlines them
-- into the trigger's statements (measured: no cost, docs/benchmarks.md). The
-- single-row INSERT's in-place UPDATE stays in the trigger: a call to a
-- function that runs it measured ~10 µs of the ~60 µs the trigger costs.

create or replace function score_change_delta(p_change score_change, p_week_start_date date)
returns week_delta
language sql
immutable
parallel safe
as $$
  -- One change's signed sums and counts in its week.
  select row(p_change.student_profile_id, p_week_start_date,
             case when p_change.is_quiz then p_change.sign * p_change.score else 0 end,
             case when p_change.is_quiz then p_change.sign else 0 end,
             case when p_change.is_quiz then 0 else p_change.sign * p_change.score end,
             case when p_change.is_quiz then 0 else p_change.sign end)::public.week_delta
$$;
comment on function score_change_delta(score_change, date) is
  'One score change as the delta it makes to the week starting p_week_start_date.';

create or replace function weekly_deltas(p_changes score_change[])
returns table (deltas week_delta[])
language sql
stable
parallel safe
as $$
  -- Net deltas per (student, week), sorted by (student, week): the order
  -- apply_weekly_deltas() locks rows in. Changes that cancel out (an update of
  -- a column that does not count) leave none. A student deleted in this
  -- statement is gone from student_profile, so has no week (no time zone, or
  -- no row to join): its rows go with it (student_profile's delete trigger).
  select array_agg(row(w.student_profile_id, w.week_start_date, w.quiz_sum, w.quiz_count, w.assignment_sum,
                       w.assignment_count)::public.week_delta
                   order by w.student_profile_id, w.week_start_date)
    from (select c.student_profile_id,
                 public.local_iso_week_start(c.counted_at, sp.time_zone) as week_start_date,
                 coalesce(sum(c.sign * c.score) filter (where c.is_quiz), 0) as quiz_sum,
                 coalesce(sum(c.sign) filter (where c.is_quiz), 0)::integer as quiz_count,
                 coalesce(sum(c.sign * c.score) filter (where not c.is_quiz), 0) as assignment_sum,
                 coalesce(sum(c.sign) filter (where not c.is_quiz), 0)::integer as assignment_count
            from unnest(p_changes) c
            join public.student_profile sp on sp.id = c.student_profile_id
           where c.counted_at is not null and c.score is not null
           group by 1, 2) w
   where (w.quiz_sum, w.quiz_count, w.assignment_sum, w.assignment_count) <> (0, 0, 0, 0)
$$;
comment on function weekly_deltas(score_change[]) is
  'The net delta of p_changes per (student, ISO week in the student''s time zone), sorted by (student, week); none for weeks whose changes cancel out. Null when there is none.';

create or replace function lock_changed_students(p_changes score_change[], p_share boolean)
returns void
language plpgsql
volatile
set search_path = pg_catalog, public
as $$
begin
  -- A writer holds its students' rows FOR KEY SHARE; a time-zone change or a
  -- rebuild takes FOR UPDATE, so it waits for the writers in flight and later
  -- writers wait for it. Taken in id order. With p_share (REPEATABLE READ or
  -- SERIALIZABLE) FOR SHARE: the trigger's statements read the transaction's
  -- snapshot, which may predate a committed time-zone change; FOR SHARE
  -- conflicts with that change's row lock, so PostgreSQL raises
  -- serialization_failure (retry the transaction) rather than file the score
  -- under the old zone. Any change to the student since the snapshot is
  -- refused the same way.
  if p_share then
    perform 1
       from student_profile
      where id in (select c.student_profile_id from unnest(p_changes) c)
      order by id
        for share;
  else
    perform 1
       from student_profile
      where id in (select c.student_profile_id from unnest(p_changes) c)
      order by id
        for key share;
  end if;
end;
$$;
comment on function lock_changed_students(score_change[], boolean) is
  'Locks the students of p_changes in id order, FOR KEY SHARE (or FOR SHARE with p_share), against a concurrent time-zone change or rebuild. For the source tables'' trigger.';

create or replace function tg_score_source__maintain_weekly()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
-- One-row statements are the common write: reuse one plan per statement
-- rather than planning each call. Bulk statements switch back below.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_changes score_change[] := '{}';
  v_change score_change;
  v_week_start_date date;
  v_delta week_delta;
  v_weekly_deltas week_delta[];  -- sorted by (student, week)
begin
  -- Only the two source tables' own triggers: attached to any other relation
  -- this owner-privileged function would write figures no source row backs.
  if tg_relid not in ('public.quiz_attempt'::regclass, 'public.assignment_submission'::regclass)
     or tg_level <> 'STATEMENT' or tg_when <> 'AFTER' then
    raise exception 'tg_score_source__maintain_weekly() runs only as the AFTER statement trigger of quiz_attempt or assignment_submission, not on %', tg_relid::regclass
      using errcode = 'trigger_protocol_violated';
  end if;
  -- Transition tables exist only for the events that have them, and only in
  -- this function (no helper can read them); each statement here is planned
  -- once per table and event.
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

  if cardinality(v_changes) > 1000 then
    -- Plan a bulk statement for its real size (a hash join to the students
    -- rather than a lookup per row). The setting ends with this function (it
    -- has SET clauses of its own). More work_mem measured slower, not faster:
    -- faulting in a big hash table costs more than spilling a small one.
    perform set_config('plan_cache_mode', 'force_custom_plan', true);
  end if;

  -- An INSERT already took its students' FOR KEY SHARE locks in its
  -- foreign-key checks; UPDATE and DELETE take them here (and every event
  -- FOR SHARE outside READ COMMITTED, which READ COMMITTED writers never pay
  -- for). The statements below start after that, so they read the student's
  -- current time zone.
  if current_setting('transaction_isolation') <> 'read committed' then
    perform lock_changed_students(v_changes, true);
  elsif tg_op <> 'INSERT' then
    perform lock_changed_students(v_changes, false);
  end if;

  if cardinality(v_changes) = 1 then
    -- The everyday single-row write, without a grouping query.
    v_change := v_changes[1];
    if v_change.counted_at is null or v_change.score is null then
      return null;
    end if;
    v_week_start_date := local_iso_week_start(
      v_change.counted_at, (select time_zone from student_profile where id = v_change.student_profile_id));
    if v_week_start_date is null then
      return null;
    end if;
    v_delta := score_change_delta(v_change, v_week_start_date);
    if tg_op = 'INSERT' then
      -- The everyday write: one score into a week that has its row. Update it
      -- in place, here rather than through apply_weekly_deltas() or a helper
      -- (a call measured ~10 µs of the ~60 µs this trigger costs). INSERT ...
      -- ON CONFLICT DO UPDATE would first log a tuple lock (54 bytes of WAL),
      -- then the update; a plain UPDATE logs the update only. No row yet: the
      -- upsert below inserts it, or adds to the row another writer inserted
      -- meanwhile (the unique index makes it wait for that writer).
      update student_weekly_performance t
         set quiz_sum = t.quiz_sum + v_delta.quiz_sum,
             quiz_count = t.quiz_count + v_delta.quiz_count,
             assignment_sum = t.assignment_sum + v_delta.assignment_sum,
             assignment_count = t.assignment_count + v_delta.assignment_count,
             quiz_average = weekly_average(t.quiz_sum + v_delta.quiz_sum, t.quiz_count + v_delta.quiz_count),
             assignment_average = weekly_average(t.assignment_sum + v_delta.assignment_sum,
                                                 t.assignment_count + v_delta.assignment_count),
             overall_average = weekly_average(t.quiz_sum + v_delta.quiz_sum + t.assignment_sum + v_delta.assignment_sum,
                                              t.quiz_count + v_delta.quiz_count
                                              + t.assignment_count + v_delta.assignment_count),
             updated_at = now()
       where t.student_profile_id = v_delta.student_profile_id
         and t.week_start_date = v_delta.week_start_date;
      if found then
        if v_delta.week_start_date < alert_history_horizon() then
          perform note_alert_history_change(array[v_delta.student_profile_id]);
        end if;
        return null;
      end if;
    end if;
    v_weekly_deltas := array[v_delta];
  else
    select d.deltas into v_weekly_deltas from weekly_deltas(v_changes) d;
  end if;

  if v_weekly_deltas is not null then
    -- An INSERT only adds scores: no week can empty or go negative, so its
    -- deltas skip that check; UPDATE and DELETE keep the drift guard.
    perform apply_weekly_deltas(v_weekly_deltas, tg_op <> 'INSERT');
  end if;
  return null;
end;
$$;
comment on function tg_score_source__maintain_weekly() is
  'Keeps student_weekly_performance exact after any write to quiz_attempt or assignment_submission: old rows leave, new rows enter, as sums and counts, rows locked in key order.';

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

-- Triggers fire without an EXECUTE check; it is checked only when a trigger
-- is created. Nobody but the owner may attach this function to a table.
revoke all on function tg_score_source__maintain_weekly() from public;
revoke all on function apply_weekly_deltas(week_delta[], boolean) from public;
revoke all on function tg_score_source__refuse_truncate() from public;
revoke all on function lock_changed_students(score_change[], boolean) from public;
revoke all on function weekly_deltas(score_change[]) from public;
