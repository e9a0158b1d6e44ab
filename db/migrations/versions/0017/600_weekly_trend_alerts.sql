-- The sustained-decline alert: the one place its rule lives (the dashboard,
-- the weekly-trend JSON and the digest all read it from here).
--
-- Weeks are calendar ISO weeks (Mondays). A week "has scores" when its
-- quiz_count + assignment_count > 0; its average is overall_average as stored
-- (rounded to 2 places, the figure parents see). With N = p_drop_points,
-- M = p_min_scores, K = p_baseline_weeks (6):
--
--   baseline(W)  the mean of the averages of the K most recent weeks with
--                scores before W; none (null) when fewer than K exist.
--   low(W, B)    W has >= M scores and its average <= B - N.
--   good(W, B)   W has >= M scores and its average >= B - N/2.
--
--   'declining'      on week W when W-1 was low against B = baseline(W-1)
--                    and W is low against that same B (two consecutive
--                    weeks: the flag appears on the second), and on every
--                    following consecutive week that stays low against B.
--   'back_on_track'  after a decline against B: on the second of two
--                    consecutive weeks that are both good against B. An
--                    empty or thin week in between starts the count again.
--                    Two consecutive low weeks against B first: 'declining'
--                    again. After 'back_on_track' the next decline needs a
--                    fresh baseline.
--   null             otherwise: an empty week, a week with fewer than M
--                    scores or a single low week is never flagged.
create or replace function alert_week_is_low(p_scores integer, p_average numeric, p_baseline numeric,
                                             p_drop_points numeric, p_min_scores integer)
returns boolean
language sql
immutable
parallel safe
as $$
  -- low(W, B): at least M scores and an average at least N below B. Null
  -- (never true) when B is null. SQL, one expression: inlined where it is called.
  select p_scores >= p_min_scores and p_average <= p_baseline - p_drop_points
$$;
comment on function alert_week_is_low(integer, numeric, numeric, numeric, integer) is
  'The alert rule''s low(W, B): a week with at least p_min_scores scores whose average is at least p_drop_points below the baseline p_baseline.';

create or replace function alert_week_is_good(p_scores integer, p_average numeric, p_baseline numeric,
                                              p_drop_points numeric, p_min_scores integer)
returns boolean
language sql
immutable
parallel safe
as $$
  -- good(W, B): at least M scores and an average within N/2 of B.
  select p_scores >= p_min_scores and p_average >= p_baseline - p_drop_points / 2
$$;
comment on function alert_week_is_good(integer, numeric, numeric, numeric, integer) is
  'The alert rule''s good(W, B): a week with at least p_min_scores scores whose average is within p_drop_points/2 of the baseline p_baseline.';

create or replace function alert_scored_weeks(p_student bigint, p_since date, p_to date)
returns table (mondays date[], counts integer[], averages numeric[])
language sql
stable
as $$
  -- The weeks with scores of the student from the Monday p_since to the
  -- Monday p_to, oldest first, as three arrays read by one statement: the
  -- walk reads them by index, with no row fetch per week. SQL in FROM:
  -- inlined into the walk's statement; invoker's rights, so row-level
  -- security decides what it reads.
  select array_agg(s.week_start_date order by s.week_start_date),
         array_agg(s.quiz_count + s.assignment_count order by s.week_start_date),
         array_agg(s.overall_average order by s.week_start_date)
    from student_weekly_performance s
   where s.student_profile_id = p_student and s.week_start_date >= p_since and s.week_start_date <= p_to
     and s.quiz_count + s.assignment_count > 0
$$;
comment on function alert_scored_weeks(bigint, date, date) is
  'The weeks with scores of one student from p_since (''-infinity'': the first) to p_to, oldest first: their Mondays, score counts and overall averages as three arrays (weekly_trend_alerts() walks them).';
revoke all on function alert_scored_weeks(bigint, date, date) from public;
grant execute on function alert_scored_weeks(bigint, date, date) to weekly_trends_reader, weekly_trends_staff;

create or replace function weekly_trend_alerts(
  p_student bigint,
  p_from date,
  p_to date,
  p_drop_points numeric default 10,
  p_min_scores integer default 2,
  p_baseline_weeks integer default 6,
  p_start alert_walk_state default null
)
returns table (week_start_date date, alert text, state_after alert_walk_state)
language plpgsql
stable
as $$
-- Walks the student's weeks from the first with scores (the state at a week
-- depends on all before it), over arrays read by one statement: no row fetch
-- per week, the last p_baseline_weeks averages in a ring. Revision 0011: the
-- row-by-row walk cost a parent's answer 0.34 of its 1.12 ms (3 school years).
-- With p_start (a state_after of an earlier walk with the same thresholds,
-- issue 27) it goes on from that state's Monday instead, reading only the
-- weeks from there: the same alerts as the walk from the first week.
declare
  v_from date;
  v_to date;
  v_mondays date[];              -- the weeks with scores up to v_to, oldest first
  v_counts integer[];
  v_averages numeric[];
  v_next integer := 1;           -- the next of them to reach
  v_monday date;
  v_scores integer;
  v_average numeric;
  v_ring numeric[];              -- the last p_baseline_weeks averages of weeks with scores
  v_seen integer := 0;           -- weeks with scores so far
  v_window_sum numeric := 0;     -- the sum of the ring
  v_state text := 'normal';      -- normal | declining | recovering
  v_base numeric;                -- the baseline of the current decline
  v_pending_base numeric;        -- normal: last week was low against this baseline
  v_prev_low boolean := false;   -- recovering: last week was low against v_base
  v_good integer := 0;           -- recovering: consecutive good weeks
  v_week_base numeric;
  v_low boolean;
  v_good_week boolean;
  v_alert text;
begin
  -- The argument checks stay here, not in a helper: a PL/pgSQL call on the
  -- parents' answer's path, for two tests.
  if p_from is null or p_to is null or p_from > p_to then
    raise exception 'weekly_trend_alerts: need p_from <= p_to, got % and %', p_from, p_to
      using errcode = 'invalid_parameter_value';
  end if;
  if p_drop_points is null or p_drop_points <= 0 or p_min_scores is null or p_min_scores < 1
     or p_baseline_weeks is null or p_baseline_weeks < 1 then
    raise exception 'weekly_trend_alerts: thresholds must be positive (drop %, min scores %, baseline weeks %)',
      p_drop_points, p_min_scores, p_baseline_weeks
      using errcode = 'invalid_parameter_value';
  end if;
  v_from := iso_week_monday(p_from);
  v_to := iso_week_monday(p_to);
  if p_start is null then
    v_ring := array_fill(0::numeric, array[p_baseline_weeks]);
  else
    if p_start.next_monday is null or p_start.next_monday > v_from
       or extract(isodow from p_start.next_monday) <> 1
       or (p_start.drop_points, p_start.min_scores, p_start.baseline_weeks)
          is distinct from (p_drop_points, p_min_scores, p_baseline_weeks) then
      raise exception 'weekly_trend_alerts: the start state (Monday %, thresholds %, %, %) is not one to walk from to % with thresholds %, %, %',
        p_start.next_monday, p_start.drop_points, p_start.min_scores, p_start.baseline_weeks,
        v_from, p_drop_points, p_min_scores, p_baseline_weeks
        using errcode = 'invalid_parameter_value';
    end if;
    v_state := p_start.state;
    v_base := p_start.base;
    v_pending_base := p_start.pending_base;
    v_prev_low := p_start.prev_low;
    v_good := p_start.good;
    v_ring := p_start.ring;
    v_seen := p_start.seen;
    v_window_sum := p_start.window_sum;
  end if;
  select w.mondays, w.counts, w.averages into v_mondays, v_counts, v_averages
    from alert_scored_weeks(p_student, coalesce(p_start.next_monday, '-infinity'::date), v_to) w;
  v_monday := coalesce(p_start.next_monday, least(coalesce(v_mondays[1], v_from), v_from));
  while v_monday <= v_to loop
    if v_mondays[v_next] = v_monday then
      v_scores := v_counts[v_next];
      v_average := v_averages[v_next];
      v_next := v_next + 1;
    else
      v_scores := 0;
      v_average := null;
    end if;
    v_alert := null;
    v_week_base := case when v_seen >= p_baseline_weeks then v_window_sum / p_baseline_weeks end;
    if v_state = 'normal' then
      if alert_week_is_low(v_scores, v_average, v_pending_base, p_drop_points, p_min_scores) then
        v_alert := 'declining';
        v_state := 'declining';
        v_base := v_pending_base;
        v_pending_base := null;
      elsif alert_week_is_low(v_scores, v_average, v_week_base, p_drop_points, p_min_scores) then
        v_pending_base := v_week_base;
      else
        v_pending_base := null;
      end if;
    elsif v_state = 'declining' then
      if alert_week_is_low(v_scores, v_average, v_base, p_drop_points, p_min_scores) then
        v_alert := 'declining';
      else
        v_state := 'recovering';
        v_prev_low := false;
        v_good := 0;
      end if;
    end if;
    -- the week that ended a decline counts towards the recovery
    if v_state = 'recovering' and v_alert is null then
      v_low := alert_week_is_low(v_scores, v_average, v_base, p_drop_points, p_min_scores);
      v_good_week := alert_week_is_good(v_scores, v_average, v_base, p_drop_points, p_min_scores);
      if v_low and v_prev_low then
        v_alert := 'declining';
        v_state := 'declining';
        v_good := 0;
      elsif v_good_week then
        v_good := v_good + 1;
        if v_good >= 2 then
          v_alert := 'back_on_track';
          v_state := 'normal';
          v_pending_base := null;
        end if;
      else
        v_good := 0;
      end if;
      v_prev_low := v_low;
    end if;
    if v_scores > 0 then
      -- the ring's oldest slot gives way to this week
      v_window_sum := v_window_sum - v_ring[v_seen % p_baseline_weeks + 1] + v_average;
      v_ring[v_seen % p_baseline_weeks + 1] := v_average;
      v_seen := v_seen + 1;
    end if;
    if v_monday >= v_from then
      week_start_date := v_monday;
      alert := v_alert;
      if v_monday = v_to then
        -- What a later walk needs to go on from the week after this one.
        state_after := row(v_to + 7, p_drop_points, p_min_scores, p_baseline_weeks, v_state, v_base,
                           v_pending_base, v_prev_low, v_good, v_ring, v_seen, v_window_sum)::alert_walk_state;
      end if;
      return next;
      v_monday := v_monday + 7;
    elsif v_scores = 0 then
      -- After an empty week every state is one an empty week leaves as it is,
      -- so the empty weeks that follow change nothing: go straight on to the
      -- next week with scores, or the first week asked for.
      v_monday := least(coalesce(v_mondays[v_next], v_from), v_from);
    else
      v_monday := v_monday + 7;
    end if;
  end loop;
end;
$$;
comment on function weekly_trend_alerts(bigint, date, date, numeric, integer, integer, alert_walk_state) is
  'Per ISO week from p_from''s to p_to''s: ''declining'' (a sustained decline: two consecutive weeks each with at least p_min_scores scores, overall average at least p_drop_points below the mean of the p_baseline_weeks weeks with scores before the first), ''back_on_track'' (after a decline, two consecutive such weeks back within p_drop_points/2 of that baseline), else null. state_after (on p_to''s week only): the walk''s state, from which a later call with p_start goes on (the same alerts as a walk from the first week, reading only the weeks from then). The alert rule''s one home; see docs/mail.md.';
-- Invoker's rights: row-level security decides whose weeks a caller reads.
revoke all on function weekly_trend_alerts(bigint, date, date, numeric, integer, integer, alert_walk_state) from public;
grant execute on function weekly_trend_alerts(bigint, date, date, numeric, integer, integer, alert_walk_state)
  to weekly_trends_reader, weekly_trends_staff;

create or replace function recent_declines(p_students bigint[], p_monday date, p_drop_points numeric,
                                           p_min_scores integer)
returns table (student_profile_id bigint, declining boolean)
language plpgsql
volatile
set search_path = pg_catalog, public
-- Plans kept, whatever the caller's plan_cache_mode: the walks' statements are the same each time, and
-- planning them anew for each of 150 students cost the list about 15 ms.
set plan_cache_mode = auto
as $$
-- Whether each student is in a sustained decline (weekly_trend_alerts()) on the week of the Monday p_monday
-- or the week before, walking only the weeks from a kept state (alert_walk_checkpoint) at a Monday at least
-- three weeks back: the teacher's list's question (issue 27), without each student's whole history.
declare
  v_x date;                  -- the Monday the kept states are at
  v_ready bigint[];          -- students whose kept state is usable as it is
  v_ready_states alert_walk_state[];
  v_student bigint;
  v_state alert_walk_state;
  v_row record;
  v_snapshot pg_snapshot;
  v_new_students bigint[] := '{}';
  v_new_states alert_walk_state[] := '{}';
begin
  if p_monday is null or extract(isodow from p_monday) <> 1 then
    raise exception 'recent_declines: p_monday must be a Monday, got %', p_monday
      using errcode = 'invalid_parameter_value';
  end if;
  -- Three weeks back by the clock, a week before alert_history_horizon(): a write to a later week is not
  -- noted, and needs no noting, as the kept state does not include it.
  v_x := least(iso_week_monday((clock_timestamp() at time zone 'UTC')::date - 21),
               p_monday - 7);
  -- One statement, so one snapshot: the kept state and the changes it may not include are read together.
  select coalesce(array_agg(k.student_profile_id order by k.student_profile_id) filter (where k.usable), '{}'),
         coalesce(array_agg(k.state order by k.student_profile_id) filter (where k.usable), '{}'),
         coalesce(array_agg(k.student_profile_id order by k.student_profile_id) filter (where not k.usable), '{}')
    into v_ready, v_ready_states, p_students
    from (select s.id as student_profile_id, c.state,
                 coalesce(alert_walk_state_usable(c.state, c.computed_in, s.id, v_x, p_drop_points, p_min_scores)
                          and (c.state).next_monday = v_x, false) as usable
            from (select distinct u.id from unnest(p_students) u(id) where u.id is not null) s
            left join alert_walk_checkpoint c on c.student_profile_id = s.id) k;

  -- The others, one at a time in id order, under the row's lock (so two lists never keep an older state
  -- over a newer one): go on from a usable older state, else walk from the first week, to v_x.
  foreach v_student in array p_students loop
    insert into alert_walk_checkpoint (student_profile_id) values (v_student) on conflict do nothing;
    perform from alert_walk_checkpoint c where c.student_profile_id = v_student for update;
    -- Read again under the lock (in a snapshot taken after it): another list may have just kept it.
    select c.state, alert_walk_state_usable(c.state, c.computed_in, v_student, v_x, p_drop_points, p_min_scores)
             as usable
      into v_row
      from alert_walk_checkpoint c where c.student_profile_id = v_student;
    v_state := case when v_row.usable then v_row.state end;
    if v_state is null or v_state.next_monday < v_x then
      -- The state and the snapshot it was read in, from one statement.
      select a.state_after, pg_current_snapshot() as snapshot into v_row
        from weekly_trend_alerts(v_student, v_x - 7, v_x - 7, p_drop_points, p_min_scores, 6, v_state) a;
      v_state := v_row.state_after;
      v_snapshot := v_row.snapshot;
      update alert_walk_checkpoint c set state = v_state, computed_in = v_snapshot, computed_at = now()
       where c.student_profile_id = v_student;
      -- The changes this state includes are history: no later state can leave them out (it is kept under
      -- this lock, in a later snapshot).
      delete from alert_history_change h
       where h.student_profile_id = v_student and pg_visible_in_snapshot(h.xact_id, v_snapshot);
    end if;
    v_new_students := v_new_students || v_student;
    v_new_states := v_new_states || v_state;
  end loop;

  v_ready := v_ready || v_new_students;
  v_ready_states := v_ready_states || v_new_states;
  -- By subscript: unnest() would spread the states' fields into columns.
  return query
  select v_ready[i], coalesce(bool_or(a.alert = 'declining'), false)
    from generate_subscripts(v_ready, 1) i
   cross join lateral weekly_trend_alerts(v_ready[i], p_monday - 7, p_monday, p_drop_points, p_min_scores, 6,
                                          v_ready_states[i]) a
   group by i;
end;
$$;
comment on function recent_declines(bigint[], date, numeric, integer) is
  'For each student: whether weekly_trend_alerts() flags a sustained decline on the week of p_monday or the week before. Walks from the student''s alert_walk_checkpoint at a Monday at least three weeks back (kept, or first computed, here under its row lock), so a call reads the last few weeks, not the whole history; the same answer as the walk from the first week. For the teacher''s list (staff_attention(), owner''s rights).';
revoke all on function recent_declines(bigint[], date, numeric, integer) from public;

create or replace function alert_walk_state_usable(p_state alert_walk_state, p_computed_in pg_snapshot,
                                                   p_student bigint, p_x date, p_drop_points numeric,
                                                   p_min_scores integer)
returns boolean
language sql
stable
set search_path = pg_catalog, public
as $$
  -- A kept state to walk on from: walked with these thresholds, at or before the Monday p_x, and no
  -- transaction its snapshot does not see has changed the student's weeks more than two weeks back.
  -- (Not "p_state is not null": that is false for a row with any null field.)
  select p_state.next_monday is not null
     and (p_state.drop_points, p_state.min_scores, p_state.baseline_weeks) = (p_drop_points, p_min_scores, 6)
     and p_state.next_monday <= p_x
     and not exists (select from alert_history_change h
                      where h.student_profile_id = p_student
                        and not pg_visible_in_snapshot(h.xact_id, p_computed_in))
$$;
comment on function alert_walk_state_usable(alert_walk_state, pg_snapshot, bigint, date, numeric, integer) is
  'Whether a kept alert_walk_checkpoint state can be walked on from to answer at the Monday p_x with these thresholds: same thresholds, not after p_x, and no change to the student''s older weeks (alert_history_change) by a transaction its snapshot does not see.';
revoke all on function alert_walk_state_usable(alert_walk_state, pg_snapshot, bigint, date, numeric, integer) from public;
