-- The staff pages' reads (issue 27): which students a staff member may see, the teacher's list of
-- students needing attention (one call), a student's staff page (one call: the family's answer and the
-- staff tools) and the follow-up notes.
--
-- Who may see whom: a staff member who teaches no course (office, counsellors: no course_teacher row)
-- sees and searches every student; a teacher sees only the students of their own courses. A student is
-- in a course when they have a score (a quiz attempt or an assignment) in it.

create or replace function staff_may_see_student(p_staff_member_id bigint, p_student_profile_id bigint)
returns boolean
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  select p_staff_member_id is not null
     and exists (select from staff_member m where m.id = p_staff_member_id)
     and (not exists (select from course_teacher t where t.staff_member_id = p_staff_member_id)
          or exists (select from course_teacher t
                      where t.staff_member_id = p_staff_member_id
                        and (exists (select from quiz_attempt q
                                      where q.student_profile_id = p_student_profile_id and q.course_id = t.course_id)
                             or exists (select from assignment_submission a
                                         where a.student_profile_id = p_student_profile_id
                                           and a.course_id = t.course_id)
                             or exists (select from enrollment e
                                         where e.student_profile_id = p_student_profile_id
                                           and e.course_id = t.course_id))))
$$;
comment on function staff_may_see_student(bigint, bigint) is
  'Whether the staff member may see the student: every student for staff who teach no course (no course_teacher row), else only the students enrolled in or with a score in one of their courses. False for a null or unknown staff member.';
revoke all on function staff_may_see_student(bigint, bigint) from public;
grant execute on function staff_may_see_student(bigint, bigint) to weekly_trends_staff;

create or replace function staff_token_member(p_token_hash bytea, p_token_id bigint)
returns bigint
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  -- A live staff token by its sha256 or (a session) its row id: the staff pages' authentication.
  select t.staff_member_id from staff_token t
   where (t.token_hash = p_token_hash or t.id = p_token_id) and t.revoked_at is null and t.expires_at > now()
   limit 1
$$;
comment on function staff_token_member(bytea, bigint) is
  'The staff member of a live (unrevoked, unexpired) staff token found by its sha256 or row id; null when none.';
revoke all on function staff_token_member(bytea, bigint) from public;
grant execute on function staff_token_member(bytea, bigint) to weekly_trends_staff;

create or replace function staff_missing_counts(p_courses bigint[], p_students bigint[], p_from date,
                                                p_until date)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, public
-- One plan kept, whatever the caller's plan_cache_mode: planning this statement anew was a fifth of its time.
set plan_cache_mode = auto
as $$
begin
  -- The missing work of each (course, student) pair of p_courses and p_students (parallel arrays) due in
  -- the ISO weeks from p_from's to p_until's: student_missing_work()'s rule (its comment is the rule's
  -- home; tests/test_staff_attention.py checks the counts against it), applied course by course to the
  -- roster's pairs: one join over the courses' work, where a call per student
  -- read all six of each student's courses to keep one (measured: about half of the list's time); what
  -- ends a piece's being missing read once for all the pieces and hashed (a probe per pair, and a time
  -- zone conversion per piece, were 15-25 ms of the list at district scale).
  return (
    with due as materialized (
      -- The roster's pieces due in the weeks asked while enrolled. The weeks and the enrollment's days
      -- are compared as instants: local midnights in the student's time zone (a midnight a clock change
      -- skips or repeats is the instant the day begins), once per enrollment, not a conversion per piece.
      select distinct r.student_profile_id, r.course_id, w.id
        from unnest(p_courses, p_students) r(course_id, student_profile_id)
        join public.student_profile sp on sp.id = r.student_profile_id
        join public.enrollment e on e.student_profile_id = r.student_profile_id and e.course_id = r.course_id
       cross join lateral (
         select greatest(public.iso_week_monday(p_from)::timestamp at time zone sp.time_zone,
                         coalesce(e.start_on::timestamp at time zone sp.time_zone, '-infinity')) as since,
                least((public.iso_week_monday(p_until) + 7)::timestamp at time zone sp.time_zone,
                      coalesce((e.end_on + 1)::timestamp at time zone sp.time_zone, 'infinity'),
                      now()) as until
       ) b
        join public.course_work w on w.course_id = r.course_id and w.due_at >= b.since and w.due_at < b.until
    ),
    pieces as (
      select array_agg(distinct d.id) as ids from due d
    ),
    -- What ends a piece's being missing, read by the pieces' index and then hashed, not probed per pair:
    -- an excusal, a counted quiz attempt or assignment linked to it.
    done as materialized (
      select x.course_work_id, x.student_profile_id from public.course_work_excusal x
       where x.course_work_id = any((select ids from pieces)::bigint[])
      union all
      select q.course_work_id, q.student_profile_id from public.quiz_attempt q
       cross join lateral (select (public.quiz_attempt_score_change(q, 1)).*) s
       where q.course_work_id = any((select ids from pieces)::bigint[])
         and s.counted_at is not null and s.score is not null
      union all
      select a.course_work_id, a.student_profile_id from public.assignment_submission a
       cross join lateral (select (public.assignment_submission_score_change(a, 1)).*) s
       where a.course_work_id = any((select ids from pieces)::bigint[])
         and s.counted_at is not null and s.score is not null
    )
    select coalesce(jsonb_object_agg(k, n), '{}')
      from (select m.student_profile_id || ':' || m.course_id as k, count(*) as n
              from due m
             where not exists (select from done d
                                where d.course_work_id = m.id and d.student_profile_id = m.student_profile_id)
             group by m.student_profile_id, m.course_id) x
  );
end;
$$;
comment on function staff_missing_counts(bigint[], bigint[], date, date) is
  'For the teacher''s list: the number of pieces of work missing (student_missing_work()''s rule) for each (course, student) pair of the parallel arrays p_courses and p_students, due in the ISO weeks from p_from''s to p_until''s, as {"student:course": count}; pairs with none are left out.';
revoke all on function staff_missing_counts(bigint[], bigint[], date, date) from public;

create or replace function staff_course_weeks(
  p_courses bigint[],
  p_from date,
  p_monday date,
  out students bigint[],
  out courses bigint[],
  out weeks date[],
  out averages numeric[],
  out scores integer[]
)
language plpgsql
stable
set search_path = pg_catalog, public
-- Planned for its own courses at each call: a generic plan (PL/pgSQL's after five calls) cannot see how
-- few rows the course index gives, and scanned quiz_attempt whole (measured: 0.5 s a call at district
-- scale, against milliseconds).
set plan_cache_mode = force_custom_plan
-- JIT off: a few thousand rows; compiling the statement can cost more than running it.
set jit = off
as $$
begin
  -- The courses' counted scores of those weeks, read by the courses' index (not student by student),
  -- each in its student's ISO week as counted_scores() files it, summed per student, course and week
  -- (parallel arrays); the courses' students are those with a counted score in them in those weeks.
  select coalesce(array_agg(g.student_profile_id order by g.course_id, g.student_profile_id, g.week_start_date), '{}'),
         coalesce(array_agg(g.course_id order by g.course_id, g.student_profile_id, g.week_start_date), '{}'),
         coalesce(array_agg(g.week_start_date order by g.course_id, g.student_profile_id, g.week_start_date), '{}'),
         coalesce(array_agg(g.average order by g.course_id, g.student_profile_id, g.week_start_date), '{}'),
         coalesce(array_agg(g.scores order by g.course_id, g.student_profile_id, g.week_start_date), '{}')
    into students, courses, weeks, averages, scores
    from (select c.student_profile_id, c.course_id, w.week_start_date,
                 weekly_average(sum(c.score), count(*)::integer) as average, count(*)::integer as scores
            from (select (quiz_attempt_score_change(q, 1)).* from quiz_attempt q
                   where q.course_id = any(p_courses) and q.completed_at >= (p_from - 2)::timestamptz
                  union all
                  select (assignment_submission_score_change(a, 1)).* from assignment_submission a
                   where a.course_id = any(p_courses)
                     and coalesce(a.graded_at, a.submitted_at) >= (p_from - 2)::timestamptz) c
            join student_profile sp on sp.id = c.student_profile_id
           cross join lateral (select local_iso_week_start(c.counted_at, sp.time_zone) as week_start_date) w
           where c.counted_at is not null and c.score is not null and w.week_start_date between p_from and p_monday
           group by c.student_profile_id, c.course_id, w.week_start_date) g;
end;
$$;
comment on function staff_course_weeks(bigint[], date, date) is
  'For the teacher''s list: the counted scores of the courses p_courses in the ISO weeks from p_from to p_monday (each in its student''s week, as the weekly rows file it), summed per student, course and week, as parallel arrays sorted by course, student and week: the weekly average and the number of scores.';
revoke all on function staff_course_weeks(bigint[], date, date) from public;

create or replace function staff_attention(
  p_token_hash bytea,
  p_token_id bigint,
  p_course_id bigint,
  p_time_zone text,
  p_below numeric default 60,
  p_missing_at integer default 2,
  p_drop_points numeric default 10,
  p_min_scores integer default 2,
  p_today date default null,
  p_endpoint text default null
)
returns table (status integer, staff_member_id bigint, body jsonb)
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
-- Plans kept across calls (the default): the courses' scores, which need a plan of their own each call,
-- are read by staff_course_weeks(); planning the list's last statement anew cost 3 ms a call.
set plan_cache_mode = auto
-- JIT off: the statements handle a few thousand rows; compiling them can cost more than running them.
set jit = off
as $$
#variable_conflict use_column
declare
  v_staff bigint;
  v_teacher boolean;
  v_monday date;
  v_from date;
  v_courses bigint[];
  v_roster_courses bigint[];
  v_roster_students bigint[];
  v_cw_students bigint[];
  v_cw_courses bigint[];
  v_cw_weeks date[];
  v_cw_averages numeric[];
  v_cw_scores integer[];
  v_missing jsonb := '{}';
  v_declining bigint[];
  v_body jsonb;
begin
  -- Who: one call authenticates, then reads (the staff pages' credential, as staff_token_member()).
  v_staff := staff_token_member(p_token_hash, p_token_id);
  if v_staff is null then
    return query select 401, null::bigint, null::jsonb;
    return;
  end if;
  perform set_config('app.staff_member_id', v_staff::text, true);
  if p_below is null or p_missing_at is null or p_missing_at < 1 or p_drop_points is null or p_drop_points <= 0
     or p_min_scores is null or p_min_scores < 1 then
    raise exception 'staff_attention: thresholds must be positive (below %, missing %, drop %, min scores %)',
      p_below, p_missing_at, p_drop_points, p_min_scores
      using errcode = 'invalid_parameter_value';
  end if;
  v_teacher := exists (select from course_teacher t where t.staff_member_id = v_staff);
  -- This ISO week in the school's time zone, and the 8 weeks before it: a course's students are those
  -- with a score in it in those 9 weeks.
  v_monday := coalesce(p_today, (now() at time zone p_time_zone)::date);
  v_monday := iso_week_monday(v_monday);
  v_from := v_monday - 7 * 8;
  if v_teacher then
    v_courses := array(select t.course_id from course_teacher t
                        where t.staff_member_id = v_staff and (p_course_id is null or t.course_id = p_course_id));
  elsif p_course_id is not null then
    v_courses := array(select c.id from course c where c.id = p_course_id);
  else
    v_courses := '{}';
  end if;
  if p_course_id is not null and cardinality(v_courses) = 0 then
    -- Not a course of this teacher's, or none at all: one answer.
    return query select 404, v_staff, null::jsonb;
    return;
  end if;

  -- The courses' counted scores of those weeks, per student, course and week (staff_course_weeks()).
  select w.students, w.courses, w.weeks, w.averages, w.scores
    into v_cw_students, v_cw_courses, v_cw_weeks, v_cw_averages, v_cw_scores
    from staff_course_weeks(v_courses, v_from, v_monday) w;
  select coalesce(array_agg(r.course_id order by r.course_id, r.student_profile_id), '{}'),
         coalesce(array_agg(r.student_profile_id order by r.course_id, r.student_profile_id), '{}')
    into v_roster_courses, v_roster_students
    from (select distinct x.course_id, x.student_profile_id from unnest(v_cw_courses, v_cw_students) x(course_id, student_profile_id)) r;

  -- Missing work (issue 26): items due this week and the 8 before that the student has not handed in,
  -- per course (staff_missing_counts()).
  v_missing := staff_missing_counts(v_roster_courses, v_roster_students, v_from, v_monday + 6);

  -- The sustained-decline alert on this week or last, walked from each student's kept state of three weeks
  -- back (recent_declines()), not through their whole history.
  select coalesce(array_agg(d.student_profile_id) filter (where d.declining), '{}')
    into v_declining
    from recent_declines(array(select distinct unnest(v_roster_students)), v_monday, p_drop_points, p_min_scores) d;

  with roster as (
    select * from unnest(v_roster_courses, v_roster_students) r(course_id, student_profile_id)
  ),
  students as (
    select distinct student_profile_id as id from roster
  ),
  course_weeks as (
    select * from unnest(v_cw_students, v_cw_courses, v_cw_weeks, v_cw_averages, v_cw_scores)
                    c(student_profile_id, course_id, week_start_date, average, scores)
  ),
  course_now as (
    -- Per student and course: the last week with scores, this week's and last week's averages (one pass;
    -- a join per week was a scan of course_weeks per roster row).
    select c.student_profile_id, c.course_id,
           max(c.week_start_date) filter (where c.scores > 0) as last_week,
           max(c.average) filter (where c.week_start_date = v_monday) as this_week_average,
           max(c.average) filter (where c.week_start_date = v_monday - 7) as last_week_average
      from course_weeks c group by c.student_profile_id, c.course_id
  ),
  declines as (
    -- The sustained-decline alert (weekly_trend_alerts(), the families' rule) on this week or last.
    select unnest(v_declining) as id, true as declining
  ),
  drops as (
    -- The drop: the mean of the 6 weeks with scores before the last two, less the latest of the last two.
    select s.id,
           (select avg(b.overall_average) from (select w.overall_average from student_weekly_performance w
                                                 where w.student_profile_id = s.id and w.week_start_date < v_monday - 7
                                                   and w.quiz_count + w.assignment_count > 0
                                                 order by w.week_start_date desc limit 6) b)
           - (select w.overall_average from student_weekly_performance w
               where w.student_profile_id = s.id and w.week_start_date between v_monday - 7 and v_monday
                 and w.quiz_count + w.assignment_count > 0
               order by w.week_start_date desc limit 1) as drop_points
      from students s
  ),
  entries as (
    select r.course_id, r.student_profile_id,
           jsonb_build_array(
             case when d.declining then jsonb_build_object('reason', 'declining', 'drop_points', round(dr.drop_points, 2)) end,
             case when cn.this_week_average < p_below or cn.last_week_average < p_below then
               jsonb_build_object('reason', 'below', 'this_week', cn.this_week_average,
                                  'last_week', cn.last_week_average, 'below', p_below) end,
             case when coalesce((v_missing ->> (r.student_profile_id || ':' || r.course_id))::integer, 0) >= p_missing_at then
               jsonb_build_object('reason', 'missing_work',
                                  'count', (v_missing ->> (r.student_profile_id || ':' || r.course_id))::integer) end,
             case when cn.last_week is null or cn.last_week < v_monday - 14 then
               jsonb_build_object('reason', 'no_scores', 'last_scores_week', cn.last_week) end
           ) as reasons_raw,
           dr.drop_points
      from roster r
      left join declines d on d.id = r.student_profile_id
      left join drops dr on dr.id = r.student_profile_id
      left join course_now cn on cn.student_profile_id = r.student_profile_id and cn.course_id = r.course_id
  ),
  flagged as (
    select e.*, (select jsonb_agg(x) from jsonb_array_elements(e.reasons_raw) x where x <> 'null') as reasons
      from entries e
  ),
  listed as (
    select f.course_id,
           jsonb_agg(jsonb_build_object(
                       'student_id', sp.id, 'display_name', sp.display_name,
                       'reasons', f.reasons, 'drop_points', round(f.drop_points, 2),
                       'last_note_on', (select max(n.noted_on) from follow_up_note n where n.student_profile_id = sp.id))
                     order by jsonb_array_length(f.reasons) desc, f.drop_points desc nulls last, sp.display_name, sp.id)
             as students
      from flagged f
      join student_profile sp on sp.id = f.student_profile_id
     where f.reasons is not null
     group by f.course_id
  )
  select jsonb_build_object(
           'week_start', v_monday,
           'teacher', v_teacher,
           'course_id', p_course_id,
           'thresholds', jsonb_build_object('below', p_below, 'missing_at', p_missing_at,
                                            'drop_points', p_drop_points, 'min_scores', p_min_scores),
           'missing_work_available', to_regprocedure('public.student_missing_work(bigint,date,date)') is not null,
           'courses', coalesce((select jsonb_agg(jsonb_build_object(
                                                  'course_id', c.id, 'name', c.name,
                                                  'students', coalesce(l.students, '[]'))
                                                order by c.name, c.id)
                                  from course c left join listed l on l.course_id = c.id
                                 where c.id = any(v_courses)), '[]'),
           -- What the course filter offers: the teacher's courses, or every course for other staff.
           'choices', coalesce(case when v_teacher
                                    then (select jsonb_agg(jsonb_build_object('course_id', c.id, 'name', c.name)
                                                           order by c.name, c.id)
                                            from course c
                                           where c.id = any(array(select t.course_id from course_teacher t
                                                                   where t.staff_member_id = v_staff)))
                                    else (select jsonb_agg(jsonb_build_object('course_id', c.id, 'name', c.name)
                                                           order by c.name, c.id)
                                            from course c) end,
                               '[]'))
    into v_body;
  if p_endpoint is not null then
    -- Each student whose figures the list shows: an access-log entry, in this transaction.
    perform log_access(x.id, p_endpoint)
       from (select distinct (e ->> 'student_id')::bigint as id
               from jsonb_array_elements(v_body -> 'courses') c, jsonb_array_elements(c -> 'students') e) x;
  end if;
  return query select 200, v_staff, v_body;
end;
$$;
comment on function staff_attention(bytea, bigint, bigint, text, numeric, integer, numeric, integer, date, text) is
  'The teacher''s list in one call: authenticates the staff token (sha256 or session row id; status 401 when none is live), then for each of the teacher''s courses (or, for staff who teach none, the course p_course_id) the students with a score in it in this ISO week (in p_time_zone) or the 8 before who need attention, each with every reason and its figure: declining (weekly_trend_alerts() on this week or last; drop_points), below (the course average this week or last under p_below), missing_work (at least p_missing_at items, where student_missing_work() exists), no_scores (none in the course in this week or the two before). Sorted by the number of reasons, then the drop. last_note_on: the newest follow-up note''s day. 404 for a p_course_id that is not one of the teacher''s (or unknown). With p_endpoint, an access-log entry for each student listed.';
revoke all on function staff_attention(bytea, bigint, bigint, text, numeric, integer, numeric, integer, date, text) from public;
grant execute on function staff_attention(bytea, bigint, bigint, text, numeric, integer, numeric, integer, date, text)
  to weekly_trends_staff;

create or replace function add_follow_up_note(p_student_profile_id bigint, p_kind text, p_noted_on date, p_note text)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_id bigint;
begin
  -- By the staff member the request acts for (app.staff_member_id), about a student they may see.
  if not coalesce(staff_may_see_student(app_staff_member_id(), p_student_profile_id), false) then
    raise exception 'no student % for this staff member', p_student_profile_id
      using errcode = 'no_data_found';
  end if;
  insert into follow_up_note (student_profile_id, staff_member_id, kind, noted_on, note)
  values (p_student_profile_id, app_staff_member_id(), p_kind, p_noted_on, btrim(p_note))
  returning id into v_id;
  return v_id;
end;
$$;
comment on function add_follow_up_note(bigint, text, date, text) is
  'Adds a follow-up note about a student by the staff member of the request (app.staff_member_id), who must be allowed to see them (staff_may_see_student()); no_data_found otherwise. Returns its id.';
revoke all on function add_follow_up_note(bigint, text, date, text) from public;
grant execute on function add_follow_up_note(bigint, text, date, text) to weekly_trends_staff;

create or replace function staff_student_page(
  p_token_hash bytea,
  p_token_id bigint,
  p_student_profile_id bigint,
  p_weeks integer,
  p_end date,
  p_min_students integer,
  p_endpoint text,
  p_alert_drop_points numeric default 10,
  p_alert_min_scores integer default 2
)
returns table (status integer, staff_member_id bigint, answer text, page jsonb)
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
#variable_conflict use_column
declare
  v_staff bigint;
  v_student record;
  v_last date;
  v_first date;
  v_stats record;
  v_courses json;
begin
  -- A student's staff page in one call: who (the staff token), may they see the student, the access-log
  -- entry, the family's answer (the same pieces as weekly_trend_json()) and the staff tools' data.
  v_staff := staff_token_member(p_token_hash, p_token_id);
  if v_staff is null then
    return query select 401, null::bigint, null::text, null::jsonb;
    return;
  end if;
  perform set_config('app.staff_member_id', v_staff::text, true);
  select sp.id, sp.display_name, sp.time_zone, (now() at time zone sp.time_zone)::date as today
    into v_student
    from student_profile sp where sp.id = p_student_profile_id;
  if not found or not staff_may_see_student(v_staff, p_student_profile_id) then
    -- Unknown and not theirs are one answer.
    return query select 404, v_staff, null::text, null::jsonb;
    return;
  end if;
  perform log_access(p_student_profile_id, p_endpoint);

  v_last := coalesce(p_end, v_student.today);
  v_last := iso_week_monday(v_last);
  v_first := v_last - 7 * (p_weeks - 1);
  select w.weekly_trend, w.weeks_with_data, w.last_updated, w.trend into v_stats
    from student_weekly_stats(p_student_profile_id, v_first, p_weeks, p_alert_drop_points, p_alert_min_scores) w;
  select c.courses into v_courses from student_courses_json(p_student_profile_id, v_first, p_weeks, p_min_students) c;

  return query
  select 200, v_staff,
         weekly_trend_answer_json(p_student_profile_id, p_weeks, v_stats.weekly_trend, v_stats.weeks_with_data,
                                  v_stats.last_updated, v_stats.trend, v_courses)::text,
         jsonb_build_object(
           'student', jsonb_build_object('id', v_student.id, 'display_name', v_student.display_name,
                                         'time_zone', v_student.time_zone),
           'class_averages_available', class_view_populated(),
           'guardians', coalesce((
             select jsonb_agg(jsonb_build_object(
                      'id', g.id, 'email', g.email, 'display_name', g.display_name,
                      -- The one home of a guardian's access: active, shared, dependant, access_ended, restricted.
                      'link_state', guardian_link_state(g.id, p_student_profile_id),
                      'gives_access', guardian_link_state(g.id, p_student_profile_id) in ('active', 'shared', 'dependant'),
                      'preferred_language', g.preferred_language,
                      'weekly_digest', coalesce(mp.weekly_digest, true),
                      'live_links', (select count(*) from guardian_token t
                                      where t.guardian_id = g.id and t.revoked_at is null and t.expires_at > now()),
                      'last_visit', (select max(l.occurred_at) from access_log l where l.guardian_id = g.id))
                    order by g.email, g.id)
               from guardian_student gs
               join guardian g on g.id = gs.guardian_id
               left join guardian_mail_preference mp on mp.guardian_id = g.id
              where gs.student_profile_id = p_student_profile_id), '[]'),
           'notes', coalesce((
             select jsonb_agg(jsonb_build_object('id', n.id, 'kind', n.kind, 'noted_on', n.noted_on, 'note', n.note,
                                                 'author', coalesce(m.display_name, m.email), 'created_at', n.created_at)
                              order by n.noted_on desc, n.id desc)
               from follow_up_note n left join staff_member m on m.id = n.staff_member_id
              where n.student_profile_id = p_student_profile_id), '[]'),
           'rows', coalesce((
             select jsonb_agg(jsonb_build_object(
                      'year', w.year, 'week_number', w.week_number, 'week_start_date', w.week_start_date,
                      'overall_average', w.overall_average::text, 'quiz_average', w.quiz_average::text, 'quiz_count', w.quiz_count,
                      'assignment_average', w.assignment_average::text, 'assignment_count', w.assignment_count,
                      'created_at', w.created_at, 'updated_at', w.updated_at)
                    order by w.week_start_date desc)
               from student_weekly_performance w where w.student_profile_id = p_student_profile_id), '[]'));
end;
$$;
comment on function staff_student_page(bytea, bigint, bigint, integer, date, integer, text, numeric, integer) is
  'A student''s staff page in one call: status 401 (no live staff token), 404 (unknown, or not a student the staff member may see: staff_may_see_student()) or 200 with answer (the weekly-trend JSON the family reads, as weekly_trend_json() builds it) and page (student, class_averages_available, guardians with link state, language, digest, live links and last visit, follow-up notes newest first, the raw weekly rows). Writes the access-log entry (endpoint p_endpoint).';
revoke all on function staff_student_page(bytea, bigint, bigint, integer, date, integer, text, numeric, integer) from public;
grant execute on function staff_student_page(bytea, bigint, bigint, integer, date, integer, text, numeric, integer)
  to weekly_trends_staff;
