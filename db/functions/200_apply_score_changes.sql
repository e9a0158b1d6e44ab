-- Applies signed score changes to the weekly aggregates as deltas: a write
-- costs the same however many rows its week already holds.

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

create or replace function apply_score_changes(p_changes score_change[])
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_deltas course_week_delta[];
  v_emptied course_week_delta[];
  v_negative boolean;
begin
  -- Writers share these row locks; a time-zone change or a rebuild takes
  -- FOR NO KEY UPDATE, so it waits for the writers in flight and later
  -- writers wait for it. Taken in id order. Every statement below starts
  -- after the locks are held, so it reads the student's current time zone.
  perform 1
     from student_profile
    where id in (select c.student_profile_id from unnest(p_changes) c
                  where c.counted_at is not null and c.score is not null)
    order by id
      for share;
  if not found then
    return;  -- nothing that counts changed, or the students are being deleted
  end if;

  -- One net delta per (student, course, week). Changes that cancel out (an
  -- update of a column that does not count) leave no delta and take no lock.
  select array_agg(d order by d.student_profile_id, d.week_start_date, d.course_id)
    into v_deltas
    from (select c.student_profile_id,
                 c.course_id,
                 local_iso_week_start(c.counted_at, sp.time_zone) as week_start_date,
                 coalesce(sum(c.sign * c.score) filter (where c.is_quiz), 0) as quiz_sum,
                 coalesce(sum(c.sign) filter (where c.is_quiz), 0)::integer as quiz_count,
                 coalesce(sum(c.sign * c.score) filter (where not c.is_quiz), 0) as assignment_sum,
                 coalesce(sum(c.sign) filter (where not c.is_quiz), 0)::integer as assignment_count
            from unnest(p_changes) c
            join student_profile sp on sp.id = c.student_profile_id
           where c.counted_at is not null and c.score is not null
           group by 1, 2, 3) d
   where (d.quiz_sum, d.quiz_count, d.assignment_sum, d.assignment_count) <> (0, 0, 0, 0);
  if v_deltas is null then
    return;
  end if;

  -- Aggregate rows are locked in one global order, per course rows first,
  -- then weekly rows, each sorted by key: concurrent writers cannot deadlock
  -- on them.
  with upserted as (
    insert into student_course_weekly_performance as t
           (student_profile_id, course_id, week_start_date, quiz_sum, quiz_count, assignment_sum, assignment_count)
    select d.student_profile_id, d.course_id, d.week_start_date,
           d.quiz_sum, d.quiz_count, d.assignment_sum, d.assignment_count
      from unnest(v_deltas) d
     where d.course_id in (select id from course)  -- a course deleted in this statement: its rows cascade away
     order by d.student_profile_id, d.course_id, d.week_start_date
    on conflict (student_profile_id, course_id, week_start_date) do update
       set quiz_sum = t.quiz_sum + excluded.quiz_sum,
           quiz_count = t.quiz_count + excluded.quiz_count,
           assignment_sum = t.assignment_sum + excluded.assignment_sum,
           assignment_count = t.assignment_count + excluded.assignment_count,
           updated_at = now()
    returning t.*
  )
  select array_agg(row(u.student_profile_id, u.course_id, u.week_start_date, 0, 0, 0, 0)::course_week_delta)
           filter (where u.quiz_count = 0 and u.assignment_count = 0),
         bool_or(u.quiz_count < 0 or u.assignment_count < 0)
    into v_emptied, v_negative
    from upserted u;
  if v_negative then
    perform raise_aggregate_drift('student_course_weekly_performance');
  end if;
  if v_emptied is not null then
    delete from student_course_weekly_performance t
     using unnest(v_emptied) e
     where (t.student_profile_id, t.course_id, t.week_start_date) = (e.student_profile_id, e.course_id, e.week_start_date)
       and t.quiz_count = 0 and t.assignment_count = 0;
  end if;

  with upserted as (
    insert into student_weekly_performance as t
           (student_profile_id, week_start_date, quiz_sum, quiz_count, assignment_sum, assignment_count)
    select d.student_profile_id, d.week_start_date,
           sum(d.quiz_sum), sum(d.quiz_count), sum(d.assignment_sum), sum(d.assignment_count)
      from unnest(v_deltas) d
     group by d.student_profile_id, d.week_start_date
    having (sum(d.quiz_sum), sum(d.quiz_count), sum(d.assignment_sum), sum(d.assignment_count)) <> (0, 0, 0, 0)
     order by d.student_profile_id, d.week_start_date
    on conflict (student_profile_id, week_start_date) do update
       set quiz_sum = t.quiz_sum + excluded.quiz_sum,
           quiz_count = t.quiz_count + excluded.quiz_count,
           assignment_sum = t.assignment_sum + excluded.assignment_sum,
           assignment_count = t.assignment_count + excluded.assignment_count,
           updated_at = now()
    returning t.*
  )
  select array_agg(row(u.student_profile_id, null, u.week_start_date, 0, 0, 0, 0)::course_week_delta)
           filter (where u.quiz_count = 0 and u.assignment_count = 0),
         bool_or(u.quiz_count < 0 or u.assignment_count < 0)
    into v_emptied, v_negative
    from upserted u;
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
end;
$$;
comment on function apply_score_changes(score_change[]) is
  'Adds signed score changes to student_course_weekly_performance and student_weekly_performance as sums and counts, locking rows in key order. Called by the source tables'' triggers.';
revoke all on function apply_score_changes(score_change[]) from public;
