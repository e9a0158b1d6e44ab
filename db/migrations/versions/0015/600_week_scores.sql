-- The scores behind one week of a student's figures: what the parents' page
-- lists under "the scores behind a week" (GET .../weeks/<YYYY>-W<ww>/scores).

create or replace function week_scores(p_student_profile_id bigint, p_week_start date)
returns table (
  kind text,
  course_id bigint,
  course_name text,
  counted_at timestamptz,
  score numeric,
  teacher_override boolean,
  automatic_score numeric
)
language sql
stable
-- Security definer, like linked_course_weeks(): the reader cannot read the
-- source tables (row-level security there would cost every writer a policy
-- check per row); this reads one student's week, and only when the request's
-- reader may read the student now (app_may_read_student(): the guardian's
-- link gives access, or the student themselves): the rule of the policy
-- guardian_reads_own_children.
security definer
set search_path = pg_catalog, public
parallel safe
as $$
  with student as (
    select sp.id, sp.time_zone,
           p_week_start::timestamp at time zone sp.time_zone as week_from,
           (p_week_start + 7)::timestamp at time zone sp.time_zone as week_to
      from student_profile sp
     where sp.id = p_student_profile_id
       and app_may_read_student(sp.id)
  ), counted as (
    -- What each row counts for comes from the functions the triggers use.
    select c.course_id, c.counted_at, c.score, c.is_quiz,
           q.teacher_score is not null as teacher_override,
           case when q.teacher_score is not null then q.score end as automatic_score
      from student s
      join quiz_attempt q on q.student_profile_id = s.id
       and q.completed_at >= s.week_from and q.completed_at < s.week_to
      cross join lateral (select (quiz_attempt_score_change(q, 1)).*) c
    union all
    select c.course_id, c.counted_at, c.score, c.is_quiz, false, null
      from student s
      join assignment_submission a on a.student_profile_id = s.id
      cross join lateral (select (assignment_submission_score_change(a, 1)).*) c
     where c.counted_at >= s.week_from and c.counted_at < s.week_to
  )
  select case when c.is_quiz then 'quiz' else 'assignment' end, c.course_id, co.name,
         c.counted_at, c.score, c.teacher_override, c.automatic_score
    from counted c
    left join course co on co.id = c.course_id
   where c.score is not null and c.counted_at is not null
   order by c.counted_at, c.is_quiz desc, c.course_id nulls first
$$;
comment on function week_scores(bigint, date) is
  'Every counted score of a student in the ISO week starting p_week_start (in the student''s time zone): kind, course, instant, the score that counts (a teacher''s override replaces the automatic score), as the weekly aggregates count them. Only for a student the request''s reader may read now (app_may_read_student()); executable by weekly_trends_reader.';
revoke all on function week_scores(bigint, date) from public;
grant execute on function week_scores(bigint, date) to weekly_trends_reader;
