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
create or replace function weekly_trend_alerts(
  p_student bigint,
  p_from date,
  p_to date,
  p_drop_points numeric default 10,
  p_min_scores integer default 2,
  p_baseline_weeks integer default 6
)
returns table (week_start_date date, alert text)
language plpgsql
stable
as $$
declare
  v_week record;
  v_history numeric[] := '{}';   -- averages of the weeks with scores so far, oldest first
  v_window_sum numeric := 0;     -- the sum of the last p_baseline_weeks of them
  v_state text := 'normal';      -- normal | declining | recovering
  v_base numeric;                -- the baseline of the current decline
  v_pending_base numeric;        -- normal: last week was low against this baseline
  v_prev_low boolean := false;   -- recovering: last week was low against v_base
  v_good integer := 0;           -- recovering: consecutive good weeks
  v_week_base numeric;
  v_low boolean;
  v_good_week boolean;
  v_alert text;
  v_first date;
  v_n integer;
begin
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
  select min(s.week_start_date) into v_first
    from student_weekly_performance s
   where s.student_profile_id = p_student and s.quiz_count + s.assignment_count > 0;
  v_first := least(coalesce(v_first, date_trunc('week', p_from::timestamp)::date), date_trunc('week', p_from::timestamp)::date);
  for v_week in
    select m::date as monday, coalesce(s.quiz_count + s.assignment_count, 0) as scores, s.overall_average as average
      from generate_series(v_first, date_trunc('week', p_to::timestamp)::date, interval '7 days') as m
      left join student_weekly_performance s
        on s.student_profile_id = p_student and s.week_start_date = m::date
     order by m
  loop
    v_alert := null;
    v_n := cardinality(v_history);
    v_week_base := case when v_n >= p_baseline_weeks then v_window_sum / p_baseline_weeks end;
    if v_state = 'normal' then
      if v_pending_base is not null and v_week.scores >= p_min_scores
         and v_week.average <= v_pending_base - p_drop_points then
        v_alert := 'declining';
        v_state := 'declining';
        v_base := v_pending_base;
        v_pending_base := null;
      elsif v_week_base is not null and v_week.scores >= p_min_scores
         and v_week.average <= v_week_base - p_drop_points then
        v_pending_base := v_week_base;
      else
        v_pending_base := null;
      end if;
    elsif v_state = 'declining' then
      if v_week.scores >= p_min_scores and v_week.average <= v_base - p_drop_points then
        v_alert := 'declining';
      else
        v_state := 'recovering';
        v_prev_low := false;
        v_good := 0;
      end if;
    end if;
    -- the week that ended a decline counts towards the recovery
    if v_state = 'recovering' and v_alert is null then
      v_low := v_week.scores >= p_min_scores and v_week.average <= v_base - p_drop_points;
      v_good_week := v_week.scores >= p_min_scores and v_week.average >= v_base - p_drop_points / 2;
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
    if v_week.scores > 0 then
      v_history := v_history || v_week.average;
      v_window_sum := v_window_sum + v_week.average;
      if cardinality(v_history) > p_baseline_weeks then
        v_window_sum := v_window_sum - v_history[cardinality(v_history) - p_baseline_weeks];
      end if;
    end if;
    if v_week.monday >= date_trunc('week', p_from::timestamp)::date then
      week_start_date := v_week.monday;
      alert := v_alert;
      return next;
    end if;
  end loop;
end;
$$;
comment on function weekly_trend_alerts(bigint, date, date, numeric, integer, integer) is
  'Per ISO week from p_from''s to p_to''s: ''declining'' (a sustained decline: two consecutive weeks each with at least p_min_scores scores, overall average at least p_drop_points below the mean of the p_baseline_weeks weeks with scores before the first), ''back_on_track'' (after a decline, two consecutive such weeks back within p_drop_points/2 of that baseline), else null. The alert rule''s one home; see docs/mail.md.';
-- Invoker's rights: row-level security decides whose weeks a caller reads.
revoke all on function weekly_trend_alerts(bigint, date, date, numeric, integer, integer) from public;
grant execute on function weekly_trend_alerts(bigint, date, date, numeric, integer, integer)
  to weekly_trends_reader, weekly_trends_staff;
