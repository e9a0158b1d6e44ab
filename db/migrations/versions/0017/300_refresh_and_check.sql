-- Rebuilding the aggregates from the source rows, and checking them.

create or replace function assert_read_committed(p_action text)
returns void
language plpgsql
stable
as $$
begin
  -- Under REPEATABLE READ or SERIALIZABLE a statement would not see rows
  -- committed by the writers it waited for, and would write stale figures.
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception '% needs READ COMMITTED isolation, not %', p_action, current_setting('transaction_isolation')
      using errcode = 'invalid_transaction_state';
  end if;
end;
$$;
comment on function assert_read_committed(text) is 'Raises unless the transaction runs under READ COMMITTED.';

create or replace function counted_scores(p_student_profile_id bigint default null, p_since date default null,
                                          p_until date default null)
returns table (student_profile_id bigint, course_id bigint, week_start_date date, is_quiz boolean, score numeric)
language sql
stable
-- Parallel safe (it only reads): a query that names a parallel-unsafe
-- function is planned without workers even when the call is inlined, so the
-- class view's refresh and the full rebuild ran on one core (revision 0012).
parallel safe
as $$
  -- Every counted score of both source tables with its ISO week in its
  -- student's time zone: the triggers' rules (quiz_attempt_score_change and
  -- assignment_submission_score_change) applied to the rows at once. Of one
  -- student (null: all), of the weeks from p_since's to p_until's (null: no
  -- bound). Null arguments widen to the whole range rather than 'p is null
  -- or ...', so that one cached plan serves a single student by index: a
  -- range scan of (student_profile_id, completed_at) and of
  -- (student_profile_id, coalesce(graded_at, submitted_at)). Names are
  -- schema-qualified: REFRESH MATERIALIZED VIEW (the class view reads this)
  -- runs with search_path pg_catalog, pg_temp, and an inlined body is
  -- resolved there.
  with scores as (
    select (public.quiz_attempt_score_change(q, 1)).*
      from public.quiz_attempt q
     where q.student_profile_id between coalesce(p_student_profile_id, -9223372036854775808)
                                    and coalesce(p_student_profile_id, 9223372036854775807)
       -- A cheap pre-filter; the exact week test is below. It starts 2 days
       -- before the Monday of p_since's week and ends 2 days after the Sunday
       -- of p_until's: whole ISO weeks, whatever the student's (or this
       -- session's) UTC offset, up to 14 hours either way. Bounds as
       -- timestamptz: a date compared with each row's instant is converted per row.
       and q.completed_at >= coalesce((public.iso_week_monday(p_since) - 2)::timestamptz, '-infinity')
       and q.completed_at < coalesce((public.iso_week_monday(p_until) + 9)::timestamptz, 'infinity')
    union all
    select (public.assignment_submission_score_change(a, 1)).*
      from public.assignment_submission a
     where a.student_profile_id between coalesce(p_student_profile_id, -9223372036854775808)
                                    and coalesce(p_student_profile_id, 9223372036854775807)
       and coalesce(a.graded_at, a.submitted_at) >= coalesce((public.iso_week_monday(p_since) - 2)::timestamptz, '-infinity')
       and coalesce(a.graded_at, a.submitted_at) < coalesce((public.iso_week_monday(p_until) + 9)::timestamptz, 'infinity')
  )
  select s.student_profile_id, s.course_id, w.week_start_date, s.is_quiz, s.score
    from scores s
    join public.student_profile sp on sp.id = s.student_profile_id
   cross join lateral (select public.local_iso_week_start(s.counted_at, sp.time_zone) as week_start_date) w
   where s.counted_at is not null
     and s.score is not null
     and sp.id between coalesce(p_student_profile_id, -9223372036854775808)
                   and coalesce(p_student_profile_id, 9223372036854775807)
     -- 'p is null or': a null bound folds the test away; the week is computed
     -- once a row, not once more per bound (measured 2.8 s against 1.2 s for
     -- every score of the 2,000-student district). The bounds' Mondays by
     -- iso_week_monday(): date_trunc() takes a date through a timestamptz, per row.
     and (p_since is null or w.week_start_date >= public.iso_week_monday(p_since))
     and (p_until is null or w.week_start_date <= public.iso_week_monday(p_until))
$$;
comment on function counted_scores(bigint, date, date) is
  'Every counted score (its student, course, ISO week in the student''s time zone, kind and value) of one student (null: all) in the weeks from p_since''s to p_until''s (null: unbounded). The one statement of the counting rules that every recomputation groups.';

create or replace function expected_course_weeks(p_student_profile_id bigint default null, p_since date default null,
                                                 p_until date default null)
returns setof course_week_delta
language sql
stable
parallel safe
as $$
  select c.student_profile_id,
         c.course_id,
         c.week_start_date,
         coalesce(sum(c.score) filter (where c.is_quiz), 0),
         (count(*) filter (where c.is_quiz))::integer,
         coalesce(sum(c.score) filter (where not c.is_quiz), 0),
         (count(*) filter (where not c.is_quiz))::integer
    from counted_scores(p_student_profile_id, p_since, p_until) c
   group by c.student_profile_id, c.course_id, c.week_start_date
$$;
comment on function expected_course_weeks(bigint, date, date) is
  'Sums and counts per student, course (null: none) and ISO week, computed from the source rows: a student''s per-course weeks as the parents'' answer shows them.';

create or replace function expected_weeks(p_student_profile_id bigint default null, p_since date default null)
returns setof week_delta
language sql
stable
parallel safe
as $$
  -- The weekly grain straight from the scores: no per-course groups first.
  select c.student_profile_id,
         c.week_start_date,
         coalesce(sum(c.score) filter (where c.is_quiz), 0),
         (count(*) filter (where c.is_quiz))::integer,
         coalesce(sum(c.score) filter (where not c.is_quiz), 0),
         (count(*) filter (where not c.is_quiz))::integer
    from counted_scores(p_student_profile_id, p_since, null) c
   group by c.student_profile_id, c.week_start_date
$$;
comment on function expected_weeks(bigint, date) is
  'Sums and counts per student and ISO week, computed from the source rows: what student_weekly_performance must hold.';

create or replace function weekly_row_differences(p_student_profile_id bigint, p_since date)
returns setof week_delta
language plpgsql
stable
set search_path = pg_catalog, public
-- One student's rebuild (a time-zone change, the staff's Recalculate) reuses
-- one plan instead of planning this statement each time; a rebuild of every
-- student switches to a plan for its size below.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_first_student bigint := coalesce(p_student_profile_id, -9223372036854775808);
  v_last_student bigint := coalesce(p_student_profile_id, 9223372036854775807);
  v_week_floor date := coalesce(iso_week_monday(p_since), '-infinity');
begin
  if p_student_profile_id is null then
    perform set_config('plan_cache_mode', 'force_custom_plan', true);
  end if;
  -- One full join finds the rows that differ (missing, extra or wrong); each
  -- becomes the delta from what is stored to what the source rows give.
  -- RETURN QUERY, not SELECT ... INTO: PL/pgSQL runs a SELECT INTO without
  -- parallel workers, and this statement is a GROUP BY over every source row
  -- when all students are rebuilt (measured: 2.0 s on one core, 1.6 s with two
  -- workers, 2,000 students).
  return query
  select coalesce(e.student_profile_id, s.student_profile_id),
         coalesce(e.week_start_date, s.week_start_date),
         coalesce(e.quiz_sum, 0) - coalesce(s.quiz_sum, 0),
         coalesce(e.quiz_count, 0) - coalesce(s.quiz_count, 0),
         coalesce(e.assignment_sum, 0) - coalesce(s.assignment_sum, 0),
         coalesce(e.assignment_count, 0) - coalesce(s.assignment_count, 0)
    from (select * from student_weekly_performance t
           where t.student_profile_id between v_first_student and v_last_student
             and t.week_start_date >= v_week_floor) s
    full join expected_weeks(p_student_profile_id, p_since) e
      on (e.student_profile_id, e.week_start_date) = (s.student_profile_id, s.week_start_date)
   where (s.year, s.week_number, s.quiz_sum, s.quiz_count, s.assignment_sum, s.assignment_count,
          s.quiz_average, s.assignment_average, s.overall_average)
         is distinct from (date_part('isoyear', e.week_start_date)::integer, date_part('week', e.week_start_date)::integer,
                           e.quiz_sum, e.quiz_count, e.assignment_sum, e.assignment_count,
                           weekly_average(e.quiz_sum, e.quiz_count),
                           weekly_average(e.assignment_sum, e.assignment_count),
                           weekly_average(e.quiz_sum + e.assignment_sum, e.quiz_count + e.assignment_count));
end;
$$;
comment on function weekly_row_differences(bigint, date) is
  'The weekly rows of one student (null: all) from week p_since on (null: all weeks) that differ from expected_weeks(), each as the delta from what is stored to what the source rows give. No row: exact.';

create or replace function rebuild_weekly_rows(p_student_profile_id bigint, p_since date)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_deltas week_delta[];
begin
  -- The caller holds the students' rows FOR UPDATE, so no writer changes
  -- these rows meanwhile. The deltas are applied by the one writer of the
  -- table, in (student, week) order.
  select array_agg(d order by d.student_profile_id, d.week_start_date)
    into v_deltas
    from weekly_row_differences(p_student_profile_id, p_since) d;
  if v_deltas is null then
    return 0;
  end if;
  -- A row whose figures were wrong but whose sums were right gets a zero
  -- delta: the write rewrites year, week and averages from the sums; a row
  -- that should not exist ends at zero scores and is deleted.
  return apply_weekly_deltas(v_deltas, true);
end;
$$;
comment on function rebuild_weekly_rows(bigint, date) is
  'Makes the weekly rows of one student (null: all) from week p_since on (null: all weeks) equal to expected_weeks(); returns the rows written. The caller must lock the students first: use refresh_weekly_performance().';

create or replace function refresh_course_weekly_performance()
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  if (select c.relispopulated from pg_class c where c.oid = 'public.course_weekly_performance'::regclass) then
    -- CONCURRENTLY: parents' reads of the class view are never blocked.
    refresh materialized view concurrently course_weekly_performance;
  else
    -- Unpopulated (a restore that could not refresh it): CONCURRENTLY refuses such a view. Parents' reads
    -- do not wait: linked_class_weeks() reads nothing from an unpopulated view.
    refresh materialized view course_weekly_performance;
  end if;
  insert into class_view_refresh (refreshed_at) values (now())
  on conflict (only_row) do update set refreshed_at = excluded.refreshed_at;
end;
$$;
comment on function refresh_course_weekly_performance() is
  'Refreshes the class view course_weekly_performance without blocking its readers (an unpopulated view, after a restore, is filled the plain way) and records the time in class_view_refresh. Nightly from pg_cron; also called by refresh_weekly_performance().';

create or replace function check_class_view(p_max_age interval default interval '36 hours')
returns table (problem text, detail text)
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  -- No row: the class view is populated and was refreshed within p_max_age. Cheap: the catalogue and one
  -- row, never the view's contents (comparing them with a recomputation would cost a refresh).
  select 'unpopulated',
         'the class view course_weekly_performance is not populated (after a restore?): parents see no class averages'
    from pg_class c
   where c.oid = to_regclass('public.course_weekly_performance') and not c.relispopulated
  union all
  select 'stale',
         'the class view course_weekly_performance was last refreshed '
           || coalesce(to_char(r.refreshed_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'), 'never')
           || ', more than ' || p_max_age::text || ' ago'
    from (select max(refreshed_at) as refreshed_at from class_view_refresh) r
   where r.refreshed_at is null or r.refreshed_at < now() - p_max_age
$$;
comment on function check_class_view(interval) is
  'One row per problem of the class view course_weekly_performance: unpopulated (parents see no class averages until it is refreshed), or stale (not refreshed within p_max_age, default 36 hours: a missed nightly refresh). No row: fine. Repair: select refresh_course_weekly_performance().';

create or replace function refresh_weekly_performance(
  p_student_profile_id bigint default null,
  p_since date default null,
  p_refresh_class_view boolean default true
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_written bigint;
begin
  perform assert_read_committed('refresh_weekly_performance()');
  if p_student_profile_id is not null
     and not exists (select from student_profile where id = p_student_profile_id) then
    raise exception 'unknown student_profile id %', p_student_profile_id
      using errcode = 'no_data_found';
  end if;

  if p_student_profile_id is null then
    -- Every student: hold the writers off for the rebuild. Locking their
    -- students one by one could deadlock with a multi-row INSERT, whose
    -- foreign-key checks lock its students in row order, not id order.
    -- SHARE waits for the writers in flight and lets readers through.
    lock table quiz_attempt, assignment_submission in share mode;
  end if;
  -- Exclusive against writers' FOR KEY SHARE locks (see the source tables'
  -- trigger) and against time-zone changes, in id order; the rebuild below
  -- starts after every writer in flight has committed, and writers that
  -- come later apply their deltas on top of it.
  perform 1
     from student_profile
    where p_student_profile_id is null or id = p_student_profile_id
    order by id
      for update;

  v_written := rebuild_weekly_rows(p_student_profile_id, p_since);
  if p_refresh_class_view then
    perform refresh_course_weekly_performance();
  end if;
  return v_written;
end;
$$;
comment on function refresh_weekly_performance(bigint, date, boolean) is
  'Rebuilds the weekly rows from the source rows: everything, one student, or the ISO weeks from p_since on; safe while writers are active. Returns the number of aggregate rows inserted, updated or deleted (0 when they were exact). Refreshes the class view unless p_refresh_class_view is false.';

create or replace function weekly_figures_json(p_quiz_sum numeric, p_quiz_count integer,
                                               p_assignment_sum numeric, p_assignment_count integer,
                                               p_quiz_average numeric, p_assignment_average numeric,
                                               p_overall_average numeric)
returns jsonb
language sql
immutable
parallel safe
as $$
  select jsonb_build_object(
    'quiz_count', p_quiz_count,
    'quiz_average', p_quiz_average,
    'assignment_count', p_assignment_count,
    'assignment_average', p_assignment_average,
    'overall_average', p_overall_average,
    'quiz_sum', p_quiz_sum,
    'assignment_sum', p_assignment_sum)
$$;
comment on function weekly_figures_json(numeric, integer, numeric, integer, numeric, numeric, numeric) is
  'One week''s sums, counts and the averages a parent sees, as stored, for the check functions.';

create or replace function weekly_figures_json(p_quiz_sum numeric, p_quiz_count integer,
                                               p_assignment_sum numeric, p_assignment_count integer)
returns jsonb
language sql
immutable
parallel safe
as $$
  select weekly_figures_json(p_quiz_sum, p_quiz_count, p_assignment_sum, p_assignment_count,
                             weekly_average(p_quiz_sum, p_quiz_count),
                             weekly_average(p_assignment_sum, p_assignment_count),
                             weekly_average(p_quiz_sum + p_assignment_sum, p_quiz_count + p_assignment_count))
$$;
comment on function weekly_figures_json(numeric, integer, numeric, integer) is
  'One week''s sums and counts with the averages they give, for the check functions.';

create or replace function check_weekly_performance(p_student_profile_id bigint default null)
returns table (
  student_profile_id bigint,
  year integer,
  week_number integer,
  week_start_date date,
  stored jsonb,
  expected jsonb
)
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  with expected as (
    select e.student_profile_id, e.week_start_date,
           weekly_figures_json(e.quiz_sum, e.quiz_count, e.assignment_sum, e.assignment_count)
             || jsonb_build_object('year', date_part('isoyear', e.week_start_date)::integer,
                                   'week_number', date_part('week', e.week_start_date)::integer) as figures
      from expected_weeks(p_student_profile_id, null) e
  ),
  stored as (
    -- The stored averages, year and week too: they are written, not generated.
    select t.student_profile_id, t.week_start_date,
           weekly_figures_json(t.quiz_sum, t.quiz_count, t.assignment_sum, t.assignment_count,
                               t.quiz_average, t.assignment_average, t.overall_average)
             || jsonb_build_object('year', t.year, 'week_number', t.week_number) as figures
      from student_weekly_performance t
     where p_student_profile_id is null or t.student_profile_id = p_student_profile_id
  )
  select coalesce(s.student_profile_id, e.student_profile_id),
         extract(isoyear from coalesce(s.week_start_date, e.week_start_date))::integer,
         extract(week from coalesce(s.week_start_date, e.week_start_date))::integer,
         coalesce(s.week_start_date, e.week_start_date),
         s.figures,
         e.figures
    from stored s
    full join expected e
      on (e.student_profile_id, e.week_start_date) = (s.student_profile_id, s.week_start_date)
   where s.figures is distinct from e.figures
   order by 1, 4
$$;
comment on function check_weekly_performance(bigint) is
  'One row per student week whose stored figures differ from a recomputation from the source rows (stored or expected null: the row is missing or should not exist). No row: consistent.';

create or replace function check_course_weekly_performance(p_course_id bigint default null)
returns table (
  course_id bigint,
  year integer,
  week_number integer,
  week_start_date date,
  stored jsonb,
  expected jsonb
)
language plpgsql
stable
security definer
set search_path = pg_catalog, public
as $$
begin
  -- The class view is refreshed, not maintained (nightly, and by
  -- refresh_weekly_performance()): between refreshes it lags the source
  -- rows. This compares it with what a refresh would give now, by running
  -- the view's own query (its one definition, 350_course_weekly_performance.sql),
  -- so any write since the last refresh that moved a class week shows here.
  return query execute format(
    $q$
    with expected as (
      select e.course_id, e.week_start_date,
             jsonb_build_object('year', e.year, 'week_number', e.week_number, 'class_average', e.class_average,
                                'student_count', e.student_count, 'item_count', e.item_count) as figures
        from (%s) e
       where $1 is null or e.course_id = $1
    ),
    stored as (
      select v.course_id, v.week_start_date,
             jsonb_build_object('year', v.year, 'week_number', v.week_number, 'class_average', v.class_average,
                                'student_count', v.student_count, 'item_count', v.item_count) as figures
        from course_weekly_performance v
       where $1 is null or v.course_id = $1
    )
    select coalesce(s.course_id, e.course_id),
           extract(isoyear from coalesce(s.week_start_date, e.week_start_date))::integer,
           extract(week from coalesce(s.week_start_date, e.week_start_date))::integer,
           coalesce(s.week_start_date, e.week_start_date),
           s.figures,
           e.figures
      from stored s
      full join expected e on (e.course_id, e.week_start_date) = (s.course_id, s.week_start_date)
     where s.figures is distinct from e.figures
     order by 1, 4
    $q$,
    rtrim(pg_get_viewdef('course_weekly_performance'::regclass), '; ' || chr(10)))
  using p_course_id;
end;
$$;
comment on function check_course_weekly_performance(bigint) is
  'One row per class week (of one course, or all) where the class view course_weekly_performance differs from what its own query gives from the source rows now (stored or expected null: the week is missing or should not exist). Rows are expected between refreshes: the view is refreshed, not maintained; none right after refresh_course_weekly_performance().';

revoke all on function weekly_row_differences(bigint, date) from public;
revoke all on function rebuild_weekly_rows(bigint, date) from public;
revoke all on function counted_scores(bigint, date, date) from public;
revoke all on function expected_course_weeks(bigint, date, date) from public;
revoke all on function expected_weeks(bigint, date) from public;
revoke all on function refresh_course_weekly_performance() from public;
revoke all on function refresh_weekly_performance(bigint, date, boolean) from public;
revoke all on function check_weekly_performance(bigint) from public;
revoke all on function check_course_weekly_performance(bigint) from public;
revoke all on function check_class_view(interval) from public;
