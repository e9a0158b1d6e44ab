-- Missing work (issue 26): computed from the source rows when it is read, so that whatever program
-- links a score, excuses, deletes or moves work, or ends an enrollment, the next read shows it.

create or replace function student_missing_work(p_student_profile_id bigint, p_from date default null,
                                                p_until date default null)
returns table (course_work_id bigint, course_id bigint, course_name text, title text, kind text,
               due_at timestamptz, week_start_date date)
language sql
stable
parallel safe
as $$
  -- A piece of work is missing for the student when:
  -- - its due_at has passed (now(): the transaction's start);
  -- - the student was enrolled in its course on the day it was due, in the student's time zone
  --   (start_on <= that day <= end_on, a null bound open);
  -- - no counted score of the student is linked to it (course_work_id), counted by the triggers' rules
  --   (quiz_attempt_score_change(), assignment_submission_score_change(): an instant and a score),
  --   whenever that score was made: a late score ends it too;
  -- - the student is not excused from it.
  -- It belongs to the ISO week of its due_at in the student's time zone (Mondays by iso_week_monday():
  -- date_trunc() would take each date through a timestamptz, per row). Of the weeks from p_from's to
  -- p_until's (null: unbounded), by index: the student's enrolled courses, then each course's work by
  -- (course_id, due_at) within 2 days either side of those weeks (any UTC offset), the exact week test last.
  with due as (
    -- The student's enrollments that overlap those weeks (2 days' margin either side), each course's work
    -- due in them, kept where the enrollment holds on the local day it was due: a join, not a probe per
    -- piece; distinct on: overlapping enrollments give a piece once. The time zone read once (an
    -- initplan), not joined per piece.
    select distinct on (w.id) w.id, w.course_id, w.title, w.kind, w.due_at,
           public.iso_week_monday(l.due_on) as week_start_date
      from public.enrollment e
      join public.course_work w
        on w.course_id = e.course_id
       and w.due_at < now()
       and w.due_at >= coalesce((public.iso_week_monday(p_from) - 2)::timestamptz, '-infinity')
       and w.due_at < coalesce((public.iso_week_monday(p_until) + 9)::timestamptz, 'infinity')
     cross join lateral (select (w.due_at at time zone (select sp.time_zone from public.student_profile sp
                                                        where sp.id = p_student_profile_id))::date as due_on) l
     where e.student_profile_id = p_student_profile_id
       and (e.end_on is null or e.end_on >= coalesce(public.iso_week_monday(p_from) - 2, '-infinity'::date))
       and (e.start_on is null or e.start_on <= coalesce(public.iso_week_monday(p_until) + 9, 'infinity'::date))
       and (e.start_on is null or e.start_on <= l.due_on)
       and (e.end_on is null or e.end_on >= l.due_on)
     order by w.id
  )
  -- The course's name by its key, per piece (a join would be planned for the one row the estimate
  -- gives the pieces, as a scan of every course).
  select w.id, w.course_id, (select c.name from public.course c where c.id = w.course_id), w.title, w.kind,
         w.due_at, w.week_start_date
    from due w
   where (p_from is null or w.week_start_date >= public.iso_week_monday(p_from))
     and (p_until is null or w.week_start_date <= public.iso_week_monday(p_until))
     and not exists (select from public.course_work_excusal x
                      where x.course_work_id = w.id and x.student_profile_id = p_student_profile_id)
     and not exists (select from public.quiz_attempt q
                      cross join lateral (select (public.quiz_attempt_score_change(q, 1)).*) s
                      where q.course_work_id = w.id and q.student_profile_id = p_student_profile_id
                        and s.counted_at is not null and s.score is not null)
     and not exists (select from public.assignment_submission a
                      cross join lateral (select (public.assignment_submission_score_change(a, 1)).*) s
                      where a.course_work_id = w.id and a.student_profile_id = p_student_profile_id
                        and s.counted_at is not null and s.score is not null)
$$;
comment on function student_missing_work(bigint, date, date) is
  'The work missing for a student in the ISO weeks from p_from''s to p_until''s (null: unbounded): due_at passed, enrolled in its course on that day (student''s time zone), no counted score linked (the triggers'' counting rules), not excused; week_start_date the Monday of due_at''s ISO week in the student''s time zone. Computed from the source rows at each call. The owner''s: the parents'' answer reads it through linked_missing_work().';
revoke all on function student_missing_work(bigint, date, date) from public;

create or replace function linked_missing_work(p_student_profile_id bigint, p_from date, p_until date)
returns table (course_work_id bigint, course_id bigint, course_name text, title text, kind text,
               due_at timestamptz, week_start_date date)
language plpgsql
stable
security definer
set search_path = pg_catalog, public
rows 10
set plan_cache_mode = force_generic_plan
as $$
begin
  -- The reader role cannot read the source tables; this reads one student's missing work, and only for
  -- the request's reader when they may read the student now (app_may_read_student(): the one home of
  -- access, as in linked_course_weeks()). The digest sets app.guardian_id for each household it writes.
  return query
  select m.*
    from student_missing_work(p_student_profile_id, p_from, p_until) m
   where (app_may_read_student(p_student_profile_id)
          or (app_staff_member_id() is not null
              and staff_may_see_student(app_staff_member_id(), p_student_profile_id)))
   order by m.due_at, m.course_name, m.title, m.course_work_id;
end;
$$;
comment on function linked_missing_work(bigint, date, date) is
  'student_missing_work() of a student (by due date, course, title), for the request''s reader only when they may read the student (app_may_read_student()), or its staff member when they may see them (staff_may_see_student()); nothing otherwise.';
revoke all on function linked_missing_work(bigint, date, date) from public;
grant execute on function linked_missing_work(bigint, date, date) to weekly_trends_reader;

create or replace function missing_weeks(p_student_profile_id bigint, p_from date, p_until date)
returns missing_week[]
language plpgsql
stable
security definer
set search_path = pg_catalog, public
-- One plan per session, as linked_missing_work(): planning the inlined student_missing_work() per call
-- cost several times its run (measured at --students 2000: 2.5 ms against 0.4 ms).
set plan_cache_mode = force_generic_plan
as $$
begin
  -- student_missing_work() counted per course and week, for the request's reader only when
  -- linked_missing_work() would give them the rows: the form the parents' answer passes to the functions
  -- that build its weeks, so that it is computed once an answer. Counted here, not from
  -- linked_missing_work(): the count needs neither the course's name nor the order (issue 26's bound on
  -- the answer's p50, docs/benchmarks.md).
  return (
    select coalesce(array_agg(row(m.course_id, m.week_start_date, m.missing_count)::missing_week), '{}')
      from (select w.course_id, w.week_start_date, count(*)::integer as missing_count
              from student_missing_work(p_student_profile_id, p_from, p_until) w
             where (app_may_read_student(p_student_profile_id)
                    or (app_staff_member_id() is not null
                        and staff_may_see_student(app_staff_member_id(), p_student_profile_id)))
             group by w.course_id, w.week_start_date) m);
end;
$$;
comment on function missing_weeks(bigint, date, date) is
  'The work missing per course and ISO week (student_missing_work(), for the request''s reader only, as linked_missing_work() decides), as an array.';
revoke all on function missing_weeks(bigint, date, date) from public;
grant execute on function missing_weeks(bigint, date, date) to weekly_trends_reader;
