-- A parent's weekly-trend answer in one round trip: authentication, the
-- link check, the access-log entry and the whole JSON body, in one call made
-- as the reader role (weekly_trends_reader), under row-level security.

create or replace function class_view_populated()
returns boolean
language sql
stable
parallel safe
set search_path = pg_catalog, public
as $$
  select c.relispopulated from pg_class c where c.oid = to_regclass('public.course_weekly_performance')
$$;
comment on function class_view_populated() is
  'Whether the class view course_weekly_performance is populated (false after a restore that could not refresh it, until refresh_course_weekly_performance() runs): the parents'' page then says class averages are not yet available.';
revoke all on function class_view_populated() from public;
grant execute on function class_view_populated() to weekly_trends_reader;

create or replace function linked_course_class_weeks(p_student_profile_id bigint, p_from date, p_until date,
                                                     p_min_students integer)
returns table (course_id bigint, week_start_date date, quiz_sum numeric, quiz_count integer,
               assignment_sum numeric, assignment_count integer, class_average numeric, student_count integer)
language plpgsql
stable
security definer
set search_path = pg_catalog, public
rows 40  -- 6 weeks of about 6 courses: the caller plans its joins for a handful, not 1,000
-- One plan per session: the null-widened bounds of counted_scores() make it a range scan of one student's
-- index entries either way (planning it per call measured 0.9 ms, the generic plan runs in 0.16 ms).
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
  -- The reader role can read neither the source tables nor the class view (revision 0014). This reads
  -- one student's sums and counts per course and ISO week from p_from's to p_until's (computed from the
  -- source rows: expected_course_weeks()), and the class view's weeks of the courses they have counted
  -- scores in those weeks: each course's every week from the view, with the student's own figures where
  -- they have scores (null where not). All of it only when the request's reader may read the student now
  -- (app_may_read_student(): the guardian's link gives access, or the student themselves), or its staff
  -- member may see them. One call, one reading of the student's rows and one access check (issue 26's
  -- bound on the answer's p50: docs/benchmarks.md). The class average is null where fewer students than
  -- p_min_students have scores, and never below 5 (the floor of WEEKLY_TRENDS_CLASS_AVERAGE_MIN_STUDENTS),
  -- whatever the caller asks.
  if (app_may_read_student(p_student_profile_id)
      or (app_staff_member_id() is not null
          and staff_may_see_student(app_staff_member_id(), p_student_profile_id))) is not true then
    return;
  end if;
  if not class_view_populated() then
    -- After a restore that could not refresh it: no class averages (not yet available), not an error
    -- ("materialized view has not been populated") that would take the parents' answer down.
    return query
    select e.course_id, e.week_start_date, e.quiz_sum, e.quiz_count, e.assignment_sum, e.assignment_count,
           null::numeric, null::integer
      from expected_course_weeks(p_student_profile_id, p_from, p_until) e
     where e.course_id is not null and e.quiz_count + e.assignment_count > 0;
    return;
  end if;
  return query
  with mine as materialized (
    select e.course_id, e.week_start_date, e.quiz_sum, e.quiz_count, e.assignment_sum, e.assignment_count
      from expected_course_weeks(p_student_profile_id, p_from, p_until) e
     where e.course_id is not null and e.quiz_count + e.assignment_count > 0
  ),
  classes as (
    -- By the view's unique index (course_id, week_start_date): never a scan of the whole view.
    select v.course_id, v.week_start_date, v.class_average, v.student_count
      from (select distinct m.course_id from mine m) c
      join course_weekly_performance v on v.course_id = c.course_id
     where v.week_start_date between p_from and p_until
  )
  select coalesce(m.course_id, v.course_id), coalesce(m.week_start_date, v.week_start_date),
         m.quiz_sum, m.quiz_count, m.assignment_sum, m.assignment_count,
         case when v.student_count >= greatest(p_min_students, 5) then v.class_average end,
         v.student_count
    from mine m
    full join classes v on v.course_id = m.course_id and v.week_start_date = m.week_start_date;
end;
$$;
comment on function linked_course_class_weeks(bigint, date, date, integer) is
  'A student''s sums and counts per course and ISO week from p_from''s to p_until''s (computed from the source rows; null where they have no counted score that week), with the class view''s weeks of the courses they have counted scores in those weeks (class_average null where student_count is below p_min_students, or below 5 whatever p_min_students says; both null while the view is unpopulated, class_view_populated()); nothing unless the request''s reader may read the student (app_may_read_student()) or its staff member (app.staff_member_id) may see them (staff_may_see_student()).';
revoke all on function linked_course_class_weeks(bigint, date, date, integer) from public;
grant execute on function linked_course_class_weeks(bigint, date, date, integer) to weekly_trends_reader;

create or replace function week_json(p_monday date, p_quiz_sum numeric, p_quiz_count integer,
                                     p_assignment_sum numeric, p_assignment_count integer,
                                     p_class_average numeric default null, p_class_students integer default null,
                                     p_min_students integer default null, p_alert text default null,
                                     p_missing_count integer default null)
returns json
language sql
-- stable, as json_build_object is: an immutable function calling stable ones
-- is never inlined, and a call per week costs ~20 µs.
stable
parallel safe
as $$
  -- One week of the answer: its name, the averages (weekly_average(), as the
  -- triggers store them) and counts; null sums are a week without scores;
  -- missing_count the work missing that week (student_missing_work(), null: none).
  -- With p_min_students (a course's week) also the class average, hidden
  -- when fewer students than that have scores: it could give a classmate's
  -- score away. json, not jsonb: built as text, several times cheaper.
  select case
           when p_min_students is null then
             json_build_object(
               'week', 'W' || extract(week from p_monday)::integer,
               'year', extract(isoyear from p_monday)::integer,
               'week_number', extract(week from p_monday)::integer,
               'week_start', p_monday,
               'overall_avg', weekly_average(p_quiz_sum + p_assignment_sum, p_quiz_count + p_assignment_count),
               'quiz_avg', weekly_average(p_quiz_sum, p_quiz_count),
               'assignment_avg', weekly_average(p_assignment_sum, p_assignment_count),
               'quiz_count', coalesce(p_quiz_count, 0),
               'assignment_count', coalesce(p_assignment_count, 0),
               'missing_count', coalesce(p_missing_count, 0),
               'alert', p_alert)
           else
             json_build_object(
               'week', 'W' || extract(week from p_monday)::integer,
               'year', extract(isoyear from p_monday)::integer,
               'week_number', extract(week from p_monday)::integer,
               'week_start', p_monday,
               'overall_avg', weekly_average(p_quiz_sum + p_assignment_sum, p_quiz_count + p_assignment_count),
               'quiz_avg', weekly_average(p_quiz_sum, p_quiz_count),
               'assignment_avg', weekly_average(p_assignment_sum, p_assignment_count),
               'quiz_count', coalesce(p_quiz_count, 0),
               'assignment_count', coalesce(p_assignment_count, 0),
               'missing_count', coalesce(p_missing_count, 0),
               'class_average', case when p_class_students >= p_min_students then p_class_average end,
               'class_average_suppressed', coalesce(p_class_students < p_min_students, false))
         end
$$;
comment on function week_json(date, numeric, integer, numeric, integer, numeric, integer, integer, text, integer) is
  'One week of the weekly-trend answer (week, year, week_number, week_start, the averages and counts, missing_count (p_missing_count, null: 0) and the sustained-decline alert p_alert); with p_min_students, a course''s week with its class average (null and class_average_suppressed when fewer than p_min_students students have scores).';

create or replace function trend_json(p_points bigint, p_num numeric, p_den numeric)
returns json
language sql
stable  -- json_build_object is
parallel safe
as $$
  -- The least-squares slope of the weeks with data, x the week's index in
  -- the range (a gap keeps its width), y its overall average, given as
  -- p_num / p_den = (n*Sxy - Sx*Sy) / (n*Sxx - Sx^2): exact in numeric (the
  -- averages have 2 decimals, x is an integer). Its sign and size decide the
  -- direction, then it is rounded once, half away from zero.
  select case
           when p_points < 3 then json_build_object('direction', 'insufficient_data', 'slope_per_week', null)
           else json_build_object('direction', case when abs(p_num) < p_den then 'stable'
                                                    when p_num > 0 then 'improving'
                                                    else 'declining' end,
                                  'slope_per_week', round(p_num / p_den, 2))
         end
$$;
comment on function trend_json(bigint, numeric, numeric) is
  'The trend of the answer from the least-squares sums of p_points weeks: insufficient_data under 3 points, else stable under 1 point a week, improving or declining; slope_per_week rounded to 2 decimals. tests/reference.py holds the same rule in exact fractions, as the tests'' oracle.';

create or replace function utc_iso_timestamp(p_instant timestamptz)
returns text
language sql
stable  -- to_char is
parallel safe
as $$
  -- As Python's datetime.isoformat() writes it: microseconds only when not zero.
  select to_char(p_instant at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
         || case when extract(microseconds from p_instant)::bigint % 1000000 = 0 then ''
                 else to_char(p_instant at time zone 'UTC', '.US') end
         || '+00:00'
$$;
comment on function utc_iso_timestamp(timestamptz) is 'An instant as ISO 8601 in UTC (+00:00), microseconds when not zero.';

create or replace function student_weekly_stats(
  p_student_profile_id bigint,
  p_first date,
  p_weeks integer,
  p_alert_drop_points numeric default 10,
  p_alert_min_scores integer default 2,
  -- The missing work per course and week when the caller has it (missing_weeks()), else computed here.
  p_missing missing_week[] default null
)
returns table (weekly_trend json, weeks_with_data integer, last_updated text, trend json)
language sql
stable
-- Invoker's rights, no SET clause and not strict: the planner inlines the
-- call into weekly_trend_json()'s statement, and row-level security decides
-- whose weeks the caller reads.
as $$
  -- The weeks of one student from the Monday p_first (callers pass a Monday:
  -- the weeks are p_first + 7n), each with its figures
  -- (week_json()) and sustained-decline alert, the weeks with scores, the
  -- last change and the trend: the parents' answer and the weekly digest
  -- both read a child's weeks from here.
  with weeks as materialized (
    select n, p_first + 7 * n as monday from generate_series(0, p_weeks - 1) n
  ),
  stored as (
    select t.week_start_date, t.quiz_sum, t.quiz_count, t.assignment_sum, t.assignment_count,
           t.overall_average, t.updated_at
      from student_weekly_performance t
     where t.student_profile_id = p_student_profile_id
       and t.week_start_date between p_first and p_first + 7 * (p_weeks - 1)
  ),
  missing as (
    -- The work missing each week, for the guardian of the request (app.guardian_id).
    select m.week_start_date, sum(m.missing_count)::integer as missing_count
      from unnest(coalesce(p_missing, missing_weeks(p_student_profile_id, p_first, p_first + 7 * (p_weeks - 1)))) m
     group by m.week_start_date
  )
  select json_agg(week_json(k.monday, s.quiz_sum, s.quiz_count, s.assignment_sum, s.assignment_count,
                            p_alert => a.alert, p_missing_count => mw.missing_count)
                  order by k.n),
         (count(s.week_start_date) filter (where s.quiz_count + s.assignment_count > 0))::integer,
         utc_iso_timestamp(max(s.updated_at)),
         trend_json(count(s.overall_average),
                    count(s.overall_average) * sum(k.n * s.overall_average)
                      - sum(k.n) filter (where s.overall_average is not null) * sum(s.overall_average),
                    count(s.overall_average) * sum(k.n * k.n) filter (where s.overall_average is not null)
                      - (sum(k.n) filter (where s.overall_average is not null))
                        * (sum(k.n) filter (where s.overall_average is not null)))
    from weeks k
    left join stored s on s.week_start_date = k.monday
    left join missing mw on mw.week_start_date = k.monday
    left join weekly_trend_alerts(p_student_profile_id, p_first, p_first + 7 * (p_weeks - 1),
                                  p_alert_drop_points, p_alert_min_scores) a
           on a.week_start_date = k.monday
$$;
comment on function student_weekly_stats(bigint, date, integer, numeric, integer, missing_week[]) is
  'One student''s p_weeks ISO weeks from the Monday p_first: weekly_trend (week_json() of each, with its sustained-decline alert and missing_count: p_missing when given, else missing_weeks(), so for the guardian of the request, app.guardian_id), weeks_with_data, last_updated (ISO 8601, UTC) and trend (trend_json()). The one home of a child''s weekly figures: weekly_trend_json() and the weekly digest read them from here.';
revoke all on function student_weekly_stats(bigint, date, integer, numeric, integer, missing_week[]) from public;
-- The parents' answer runs it as the reader role; the digest as the owner; the staff's search for its trends.
grant execute on function student_weekly_stats(bigint, date, integer, numeric, integer, missing_week[])
  to weekly_trends_reader, weekly_trends_staff;

-- weekly_trend_json()'s named pieces: SQL-language, invoker's rights, without
-- SET clauses, called in FROM or as one expression, so the planner inlines
-- each into weekly_trend_json()'s statement (no call of their own: measured,
-- docs/benchmarks.md). Row-level security decides what the caller reads.

create or replace function guardian_children_json(p_guardian_id bigint)
returns table (children jsonb)
language sql
stable
as $$
  -- The parents' page's list of children: ids and names, by name; only those the guardian's link
  -- gives access to now (guardian_link_states()).
  select coalesce(jsonb_agg(jsonb_build_object('id', gs.student_profile_id, 'display_name', gs.display_name)
                            order by gs.display_name, gs.student_profile_id), '[]')
    from guardian_link_states(p_guardian_id) gs
   where gs.gives_access
$$;
comment on function guardian_children_json(bigint) is
  'The children whose link gives the guardian p_guardian_id access now (guardian_link_states()), as a JSON array of {id, display_name} by name: the parents'' page''s list.';
revoke all on function guardian_children_json(bigint) from public;
grant execute on function guardian_children_json(bigint) to weekly_trends_reader;

create or replace function student_courses_json(p_student_profile_id bigint, p_first date, p_weeks integer,
                                                p_min_students integer, p_missing missing_week[] default null)
returns table (courses json)
language sql
stable
as $$
  -- The student's courses with scores in the p_weeks weeks from the Monday
  -- p_first, each with every week (week_json()) and its class average.
  with weeks as materialized (
    select n, p_first + 7 * n as monday from generate_series(0, p_weeks - 1) n
  ),
  course_weeks as materialized (
    -- The student's figures and the class averages per course and week, for the reader of the request.
    select * from linked_course_class_weeks(p_student_profile_id, p_first, p_first + 7 * (p_weeks - 1), p_min_students)
  ),
  missing as materialized (
    -- The work missing per course and week (for the guardian of the request): a course with missing
    -- work and no score in these weeks is listed too.
    select m.course_id, m.week_start_date, m.missing_count
      from unnest(coalesce(p_missing, missing_weeks(p_student_profile_id, p_first, p_first + 7 * (p_weeks - 1)))) m
  ),
  courses as (
    select c.id, c.name,
           json_agg(week_json(k.monday, cw.quiz_sum, cw.quiz_count, cw.assignment_sum, cw.assignment_count,
                              cw.class_average, cw.student_count, p_min_students, p_missing_count => mw.missing_count)
                    order by k.n) as weeks
      from (select course_id from course_weeks union select course_id from missing) i
      join course c on c.id = i.course_id
     cross join weeks k
      left join course_weeks cw on cw.course_id = c.id and cw.week_start_date = k.monday
      left join missing mw on mw.course_id = c.id and mw.week_start_date = k.monday
     group by c.id, c.name
  )
  select coalesce(json_agg(json_build_object('course_id', c.id, 'name', c.name, 'weeks', c.weeks)
                           order by c.name, c.id), '[]')
    from courses c
$$;
comment on function student_courses_json(bigint, date, integer, integer, missing_week[]) is
  'The courses of the weekly-trend answer: a JSON array, by name, of the student''s courses with scores or missing work (linked_missing_work()) in the p_weeks ISO weeks from the Monday p_first, each with every week (week_json() with the class average, hidden under p_min_students students, and missing_count).';
revoke all on function student_courses_json(bigint, date, integer, integer, missing_week[]) from public;
grant execute on function student_courses_json(bigint, date, integer, integer, missing_week[]) to weekly_trends_reader;

create or replace function weekly_trend_answer_json(p_student_profile_id bigint, p_weeks integer,
                                                    p_weekly_trend json, p_weeks_with_data integer,
                                                    p_last_updated text, p_trend json, p_courses json)
returns json
language sql
stable  -- json_build_object is
parallel safe
as $$
  -- The stats also at the top level (but the weeks): the issue names them as the endpoint's.
  select json_build_object(
           'student_id', p_student_profile_id,
           'weekly_stats', json_build_object('weekly_trend', p_weekly_trend, 'total_weeks', p_weeks,
                                             'weeks_with_data', p_weeks_with_data, 'last_updated', p_last_updated,
                                             'trend', p_trend, 'courses', p_courses),
           'weeks_with_data', p_weeks_with_data,
           'last_updated', p_last_updated,
           'trend', p_trend,
           'courses', p_courses)
$$;
comment on function weekly_trend_answer_json(bigint, integer, json, integer, text, json, json) is
  'The weekly-trend answer''s JSON body from its parts: student_id, weekly_stats (weekly_trend, total_weeks, weeks_with_data, last_updated, trend, courses) and, again at the top level, weeks_with_data, last_updated, trend and courses.';

create or replace function weekly_trend_json(
  p_token_hash bytea,
  p_token_id bigint,
  p_student_profile_id bigint,
  p_weeks integer,
  p_end date,
  p_min_students integer,
  p_endpoint text,
  p_log boolean default true,
  p_page boolean default false,
  -- the sustained-decline alert's N and M (weekly_trend_alerts())
  p_alert_drop_points numeric default 10,
  p_alert_min_scores integer default 2,
  -- whose credential: a guardian's, or a student's own (student_token)
  p_principal text default 'guardian'
)
returns table (status integer, reader_id bigint, answer text, page jsonb)
language plpgsql
volatile
security invoker
set search_path = pg_catalog, public
-- Plan each statement once per session: planning them per call cost more
-- than running them (the keys make every plan an index lookup anyway).
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
  v_guardian_id bigint;
  v_self bigint;
  v_student_id bigint := p_student_profile_id;
  v_children jsonb;
  v_student record;
  v_last date;
  v_first date;
  v_weekly_trend json;
  v_weeks_with_data integer;
  v_last_updated text;
  v_trend json;
  v_courses json;
  v_missing missing_week[];
begin
  if p_principal = 'student' then
    -- A student reading their own figures: a token (or session) of theirs, while they may sign in.
    select t.student_profile_id into v_self from find_student_token(p_token_hash, p_token_id) t;
    if v_self is null then
      return query select 401, null::bigint, null::text, null::jsonb;
      return;
    end if;
    perform set_config('app.student_id', v_self::text, true);
    v_student_id := coalesce(v_student_id, v_self);
    select sp.id, sp.display_name, sp.time_zone, (now() at time zone sp.time_zone)::date as today,
           'active' as state, null::date as access_ended_on
      into v_student
      from student_profile sp
     where sp.id = v_student_id and sp.id = v_self;
    if not found then
      return query select 404, v_self, null::text, null::jsonb;
      return;
    end if;
    if p_page then
      v_children := jsonb_build_array(jsonb_build_object('id', v_student.id, 'display_name', v_student.display_name));
    end if;
  else
    -- Who: a token (by sha256) or a session (by the token's row id).
    select t.guardian_id into v_guardian_id from find_guardian_token(p_token_hash, p_token_id) t;
    if v_guardian_id is null then
      return query select 401, null::bigint, null::text, null::jsonb;
      return;
    end if;
    -- The rest of the transaction acts for this guardian: the row-level
    -- security policies and log_access() read the setting.
    perform set_config('app.guardian_id', v_guardian_id::text, true);
    if p_page then
      select c.children into v_children from guardian_children_json(v_guardian_id) c;
      if v_student_id is null then
        if jsonb_array_length(v_children) = 0 then
          -- No child to show: one whose access ended (the page says so), else none at all.
          v_student_id := (select s.student_profile_id from guardian_link_states(v_guardian_id) s
                            where s.state = 'access_ended' order by s.display_name, s.student_profile_id limit 1);
          if v_student_id is null then
            return query select 200, v_guardian_id, null::text, jsonb_build_object('children', v_children);
            return;
          end if;
        else
          v_student_id := (v_children -> 0 ->> 'id')::bigint;
        end if;
      end if;
    end if;
    -- The link and its state now (guardian_link_states(): the one home of the decision).
    select s.student_profile_id as id, s.display_name, s.time_zone, (now() at time zone s.time_zone)::date as today,
           s.state, s.access_ended_on
      into v_student
      from guardian_link_states(v_guardian_id) s
     where s.student_profile_id = v_student_id and s.state <> 'restricted';
    if not found then
      -- Unknown, not linked and restricted are one answer: no id is confirmed to exist.
      return query select 404, v_guardian_id, null::text, null::jsonb;
      return;
    end if;
    if v_student.state = 'access_ended' then
      -- The student came of age: the guardian learns since when, and nothing of the figures.
      return query select 403, v_guardian_id, null::text,
                          jsonb_build_object('children', v_children, 'access_ended_on', v_student.access_ended_on,
                                             'student', jsonb_build_object('id', v_student.id,
                                                                           'display_name', v_student.display_name));
      return;
    end if;
  end if;
  if p_log then
    -- In this transaction: no figures leave without their entry.
    perform log_access(v_student_id, p_endpoint);
    -- The entry is this transaction's only write, so its commit need not
    -- wait for the WAL flush: on a crash of the database server the entries
    -- of the reads committed in the last moments (up to 3 x wal_writer_delay,
    -- 0.6 s by default) can be lost; nothing else can, and the setting ends
    -- with this transaction (true: local), so the connection's next
    -- transaction commits durably again.
    perform set_config('synchronous_commit', 'off', true);
  end if;

  v_last := coalesce(p_end, v_student.today);
  v_last := iso_week_monday(v_last);
  v_first := v_last - 7 * (p_weeks - 1);

  -- The missing work once, for the weeks and the courses' weeks.
  v_missing := missing_weeks(v_student_id, v_first, v_last);

  select w.weekly_trend, w.weeks_with_data, w.last_updated, w.trend
    into v_weekly_trend, v_weeks_with_data, v_last_updated, v_trend
    from student_weekly_stats(v_student_id, v_first, p_weeks, p_alert_drop_points, p_alert_min_scores, v_missing) w;

  select c.courses into v_courses
    from student_courses_json(v_student_id, v_first, p_weeks, p_min_students, v_missing) c;

  return query
  select 200, coalesce(v_guardian_id, v_self),
         weekly_trend_answer_json(v_student_id, p_weeks, v_weekly_trend, v_weeks_with_data, v_last_updated,
                                  v_trend, v_courses)::text,
         case when p_page then jsonb_build_object('children', v_children,
                                                  'student', jsonb_build_object('id', v_student.id,
                                                                                'display_name', v_student.display_name,
                                                                                'time_zone', v_student.time_zone),
                                                  'class_averages_available', class_view_populated()) end;
end;
$$;
comment on function weekly_trend_json(bytea, bigint, bigint, integer, date, integer, text, boolean, boolean, numeric, integer, text) is
  'The weekly-trend answer in one call, as the reader role: status 401 (no live token with this sha256 or row id), 404 (the student is not linked to the token''s guardian, the link is restricted, or unknown; for a student, any id but their own), 403 (the student came of age and the link gives no access: page holds access_ended_on and the student) or 200 with answer, the JSON body; reader_id is the guardian (or the student, p_principal ''student''). The link''s state comes from guardian_link_states(). Writes the access-log entry (endpoint p_endpoint) unless p_log is false (a read replica: the caller writes it on the primary). p_page adds the children (for a student: themselves), the student and whether class averages are available (the parents'' page); a null student then means the first child (none: the first whose access ended, else 200 with no answer). Each week carries its sustained-decline alert (weekly_trend_alerts() with p_alert_drop_points and p_alert_min_scores).';
revoke all on function weekly_trend_json(bytea, bigint, bigint, integer, date, integer, text, boolean, boolean, numeric, integer, text) from public;
grant execute on function weekly_trend_json(bytea, bigint, bigint, integer, date, integer, text, boolean, boolean, numeric, integer, text)
  to weekly_trends_reader;
