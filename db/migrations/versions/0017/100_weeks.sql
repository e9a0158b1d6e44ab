-- Which ISO week an instant belongs to, for a student, and what a source row
-- counts for. The score_change casts are schema-qualified: these bodies are
-- inlined into the class view's query, which REFRESH MATERIALIZED VIEW runs
-- with search_path pg_catalog, pg_temp.

create or replace function local_iso_week_start(p_instant timestamptz, p_time_zone text)
returns date
language sql
immutable
strict
parallel safe
as $$
  -- date_trunc('week', ...) on a local timestamp is that ISO week's Monday.
  select date_trunc('week', p_instant at time zone p_time_zone)::date
$$;
comment on function local_iso_week_start(timestamptz, text) is
  'Monday of the ISO week that holds p_instant in the time zone p_time_zone (IANA name).';

create or replace function iso_week_monday(p_day date)
returns date
language sql
immutable
parallel safe
as $$
  -- Through a timestamp without time zone: date_trunc('week', p_day) would take the date through a
  -- timestamptz (the session's time zone) at each call, per row where a bound is compared. p_day once:
  -- the planner inlines a body that names an argument twice only for a cheap argument.
  select date_trunc('week', p_day::timestamp)::date
$$;
comment on function iso_week_monday(date) is
  'Monday of the ISO week that holds the day p_day (null for null).';

create or replace function quiz_attempt_score_change(p_attempt quiz_attempt, p_sign integer)
returns score_change
language sql
immutable
parallel safe
as $$
  select row(p_attempt.student_profile_id, p_attempt.course_id, p_attempt.completed_at, true,
             coalesce(p_attempt.teacher_score, p_attempt.score), p_sign)::public.score_change
$$;
comment on function quiz_attempt_score_change(quiz_attempt, integer) is
  'The one place that says what a quiz attempt counts for: its final score coalesce(teacher_score, score) at completed_at.';

create or replace function assignment_submission_score_change(p_submission assignment_submission, p_sign integer)
returns score_change
language sql
immutable
parallel safe
as $$
  select row(p_submission.student_profile_id, p_submission.course_id,
             coalesce(p_submission.graded_at, p_submission.submitted_at), false,
             case when p_submission.is_graded then p_submission.percentage end, p_sign)::public.score_change
$$;
comment on function assignment_submission_score_change(assignment_submission, integer) is
  'The one place that says what an assignment counts for: percentage when is_graded, at coalesce(graded_at, submitted_at).';

create or replace function weekly_average(p_sum numeric, p_count integer)
returns numeric
language sql
immutable
parallel safe
as $$
  -- Rounded once, from the exact sum: half away from zero (numeric round).
  select round(p_sum / nullif(p_count, 0), 2)
$$;
comment on function weekly_average(numeric, integer) is
  'The mean of p_count scores summing to p_sum, to 2 decimals, rounded half away from zero; null when there are none.';
