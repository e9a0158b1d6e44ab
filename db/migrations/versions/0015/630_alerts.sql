-- Alerts each family chooses (issue 26 item 3): the settings' defaults, the parents' read and write of
-- them, the one-click unsubscribe, and the alerts due for a guardian (weekly-trends alerts,
-- web/mail/alerts.py). Tables: 0015/250_alerts_schema.sql.

create or replace function guardian_alert_settings(p_guardian_id bigint, p_student_profile_id bigint)
returns table (missing_work boolean, sustained_decline boolean, course_average_below integer, score_below integer)
language sql
stable
as $$
  -- The one statement of the defaults: missing work and sustained decline on, the thresholds off.
  select coalesce(s.missing_work, true), coalesce(s.sustained_decline, true),
         s.course_average_below::integer, s.score_below::integer
    from (select) d
    left join guardian_alert_setting s
      on s.guardian_id = p_guardian_id and s.student_profile_id = p_student_profile_id
$$;
comment on function guardian_alert_settings(bigint, bigint) is
  'A guardian''s alert choices for a child: the row of guardian_alert_setting, else the defaults (missing_work and sustained_decline on, course_average_below and score_below off: null). The one statement of the defaults: the parents'' functions and the alerts job ask it.';
revoke all on function guardian_alert_settings(bigint, bigint) from public;

create or replace function my_alert_settings(p_student_profile_id bigint)
returns table (missing_work boolean, sustained_decline boolean, course_average_below integer, score_below integer)
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  -- No row unless the request's guardian's link gives access to the student now (guardian_link_state()).
  select s.*
    from guardian_alert_settings(app_guardian_id(), p_student_profile_id) s
   where guardian_link_state(app_guardian_id(), p_student_profile_id) in ('active', 'shared', 'dependant')
$$;
comment on function my_alert_settings(bigint) is
  'The alert choices of the request''s guardian (app.guardian_id) for one child their link gives access to now (guardian_link_state()); no row otherwise.';
revoke all on function my_alert_settings(bigint) from public;
grant execute on function my_alert_settings(bigint) to weekly_trends_reader;

create or replace function set_my_alert_settings(p_student_profile_id bigint, p_missing_work boolean,
                                                 p_sustained_decline boolean, p_course_average_below integer,
                                                 p_score_below integer)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_guardian bigint := app_guardian_id();
begin
  if v_guardian is null then
    raise exception 'set_my_alert_settings: no guardian for this request' using errcode = 'insufficient_privilege';
  end if;
  if p_missing_work is null or p_sustained_decline is null then
    raise exception 'set_my_alert_settings: missing_work and sustained_decline are on or off, not null'
      using errcode = 'null_value_not_allowed';
  end if;
  if p_course_average_below not between 1 and 100 or p_score_below not between 1 and 100 then
    raise exception 'set_my_alert_settings: a threshold is from 1 to 100 (or null: off), got % and %',
      p_course_average_below, p_score_below
      using errcode = 'check_violation';
  end if;
  if guardian_link_state(v_guardian, p_student_profile_id) not in ('active', 'shared', 'dependant') then
    return false;
  end if;
  insert into guardian_alert_setting as s
         (guardian_id, student_profile_id, missing_work, sustained_decline, course_average_below, score_below)
  values (v_guardian, p_student_profile_id, p_missing_work, p_sustained_decline, p_course_average_below, p_score_below)
  on conflict (guardian_id, student_profile_id) do update
     set missing_work = excluded.missing_work, sustained_decline = excluded.sustained_decline,
         course_average_below = excluded.course_average_below, score_below = excluded.score_below,
         updated_at = now();
  return true;
end;
$$;
comment on function set_my_alert_settings(bigint, boolean, boolean, integer, integer) is
  'Saves the alert choices of the request''s guardian (app.guardian_id) for one child. False (nothing written) when that child is not linked to them.';
revoke all on function set_my_alert_settings(bigint, boolean, boolean, integer, integer) from public;
grant execute on function set_my_alert_settings(bigint, boolean, boolean, integer, integer) to weekly_trends_reader;

create or replace function unsubscribe_alerts(p_token_hash bytea, p_kinds text[])
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_guardian bigint;
begin
  if p_kinds is null or cardinality(p_kinds) = 0 or not p_kinds <@ array['missing_work', 'course_average_below',
                                                                          'score_below', 'sustained_decline'] then
    raise exception 'unsubscribe_alerts: unknown alert kind in %', p_kinds using errcode = 'invalid_parameter_value';
  end if;
  select m.guardian_id into v_guardian from alert_message m where m.unsubscribe_token_hash = p_token_hash;
  if v_guardian is null then
    return null;
  end if;
  -- Every linked child: the parent asked to stop this kind of email.
  insert into guardian_alert_setting as s
         (guardian_id, student_profile_id, missing_work, sustained_decline, course_average_below, score_below)
  select gs.guardian_id, gs.student_profile_id,
         a.missing_work and not 'missing_work' = any(p_kinds),
         a.sustained_decline and not 'sustained_decline' = any(p_kinds),
         case when not 'course_average_below' = any(p_kinds) then a.course_average_below end,
         case when not 'score_below' = any(p_kinds) then a.score_below end
    from guardian_student gs
   cross join lateral guardian_alert_settings(gs.guardian_id, gs.student_profile_id) a
   where gs.guardian_id = v_guardian
  on conflict (guardian_id, student_profile_id) do update
     set missing_work = excluded.missing_work, sustained_decline = excluded.sustained_decline,
         course_average_below = excluded.course_average_below, score_below = excluded.score_below,
         updated_at = now();
  return v_guardian;
end;
$$;
comment on function unsubscribe_alerts(bytea, text[]) is
  'One-click unsubscribe from alert emails (RFC 8058): turns the kinds p_kinds off, for every child, for the guardian whose alert email carried the token with this sha256. Returns the guardian id, or null for an unknown token. Repeating it changes nothing.';
revoke all on function unsubscribe_alerts(bytea, text[]) from public;
grant execute on function unsubscribe_alerts(bytea, text[]) to weekly_trends_reader;

create or replace function new_alerts(p_guardian_id bigint, p_at timestamptz, p_drop_points numeric default 10,
                                      p_min_scores integer default 2)
returns table (student_profile_id bigint, kind text, subject text, detail jsonb, happened_at timestamptz)
language sql
stable
as $$
  -- The alerts due for a guardian at p_at: for each linked child, by the guardian's choices
  -- (guardian_alert_settings()), what happened in the last 14 days (scores counted, work due) or in
  -- the last two complete ISO weeks in the child's time zone (course averages, the sustained decline),
  -- less what alert_delivery already holds: each alert once ever.
  with kid as (
    select sp.id, sp.time_zone, a.*,
           -- the Monday of the child's current week; the two weeks before it are complete
           date_trunc('week', (p_at at time zone sp.time_zone))::date as this_monday
      from guardian_link_states(p_guardian_id, p_at) ls
      join student_profile sp on sp.id = ls.student_profile_id
     cross join lateral guardian_alert_settings(p_guardian_id, ls.student_profile_id) a
     where ls.gives_access  -- the one home of access: no alert about a restricted or ended link's child
  ), found as (
    -- missing_work: work due in the last 14 days and missing now (student_missing_work(): the rule of
    -- the parents' figures, 0015/240_missing_work.sql)
    select k.id, 'missing_work' as kind, w.course_work_id::text as subject,
           jsonb_build_object('title', w.title, 'course_name', w.course_name, 'work_kind', w.kind,
                              'due_at', w.due_at) as detail,
           w.due_at as happened_at
      from kid k
     cross join lateral student_missing_work(k.id, (p_at at time zone k.time_zone)::date - 15,
                                             (p_at at time zone k.time_zone)::date) w
     where k.missing_work and w.due_at > p_at - interval '14 days' and w.due_at <= p_at
    union all
    -- score_below: a single counted score under the threshold (the counting rules of the weekly rows)
    select k.id, 'score_below', 'quiz:' || q.id,
           jsonb_build_object('score_kind', 'quiz', 'course_name', co.name, 'score', c.score,
                              'threshold', k.score_below, 'at', c.counted_at),
           c.counted_at
      from kid k
      join quiz_attempt q on q.student_profile_id = k.id
       and q.completed_at > p_at - interval '14 days' and q.completed_at <= p_at
     cross join lateral (select (quiz_attempt_score_change(q, 1)).*) c
      left join course co on co.id = c.course_id
     where k.score_below is not null and c.score < k.score_below
    union all
    select k.id, 'score_below', 'assignment:' || s.id,
           jsonb_build_object('score_kind', 'assignment', 'course_name', co.name, 'score', c.score,
                              'threshold', k.score_below, 'at', c.counted_at),
           c.counted_at
      from kid k
      join assignment_submission s on s.student_profile_id = k.id
       and coalesce(s.graded_at, s.submitted_at) > p_at - interval '14 days'
       and coalesce(s.graded_at, s.submitted_at) <= p_at
     cross join lateral (select (assignment_submission_score_change(s, 1)).*) c
      left join course co on co.id = c.course_id
     where k.score_below is not null and c.counted_at is not null and c.score < k.score_below
    union all
    -- course_average_below: a course's complete week whose average is under the threshold
    select k.id, 'course_average_below', e.course_id || ':' || e.week_start_date,
           jsonb_build_object('course_name', co.name, 'average', w.average, 'threshold', k.course_average_below,
                              'week_start', e.week_start_date),
           (e.week_start_date + 7)::timestamp at time zone k.time_zone
      from kid k
     cross join lateral expected_course_weeks(k.id, k.this_monday - 14, k.this_monday - 7) e
     cross join lateral (select weekly_average(e.quiz_sum + e.assignment_sum,
                                               e.quiz_count + e.assignment_count) as average) w
      join course co on co.id = e.course_id
     where k.course_average_below is not null and e.week_start_date < k.this_monday
       and w.average < k.course_average_below
    union all
    -- sustained_decline: the week a decline is first flagged, and the week it is back on track
    -- (weekly_trend_alerts(), the rule the dashboard and the digest show), of complete weeks
    select k.id, 'sustained_decline', t.week_start_date || ':' || t.alert,
           jsonb_build_object('alert', t.alert, 'week_start', t.week_start_date, 'drop', p_drop_points),
           (t.week_start_date + 7)::timestamp at time zone k.time_zone
      from kid k
     cross join lateral (
       select w.week_start_date, w.alert, lag(w.alert) over (order by w.week_start_date) as before
         from weekly_trend_alerts(k.id, k.this_monday - 21, k.this_monday - 7, p_drop_points, p_min_scores) w
     ) t
     where k.sustained_decline and t.week_start_date >= k.this_monday - 14
       and (t.alert = 'back_on_track' or (t.alert = 'declining' and t.before is distinct from 'declining'))
  )
  select f.id, f.kind, f.subject, f.detail, f.happened_at
    from found f
   where not exists (select from alert_delivery d
                      where d.guardian_id = p_guardian_id and d.student_profile_id = f.id
                        and d.kind = f.kind and d.subject = f.subject)
   order by f.id, f.kind, f.happened_at, f.subject
$$;
comment on function new_alerts(bigint, timestamptz, numeric, integer) is
  'The alerts due for a guardian at p_at and not yet in alert_delivery, per linked child and the guardian''s choices: missing_work (work due in the last 14 days and missing, by student_missing_work()), score_below (a counted score of the last 14 days under the threshold), course_average_below (a course''s average in one of the last two complete ISO weeks under the threshold), sustained_decline (the first week of a decline, or back on track, by weekly_trend_alerts(), in those weeks); subject names the thing alerted on. For the alerts job (owner).';
revoke all on function new_alerts(bigint, timestamptz, numeric, integer) from public;
