-- The family's record (issue 25 items 4 and 5): who may read a child's record, the record of access
-- the family sees (access_record beside access_log's staff reads and the reader's digests), and the
-- export of everything held about a child.

create or replace function family_may_see(p_guardian_id bigint, p_student_profile_id bigint,
                                          p_at timestamptz default now())
returns boolean
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  -- The record's and the export's routes ask the one home of a guardian's access (guardian_link_state():
  -- rights age, sharing, dependency, restriction), as the figures do.
  select guardian_link_state(p_guardian_id, p_student_profile_id, p_at) in ('active', 'shared', 'dependant')
$$;
comment on function family_may_see(bigint, bigint, timestamptz) is
  'Whether guardian p_guardian_id may read student p_student_profile_id''s record of access and export at p_at: the one access decision of those routes.';
revoke all on function family_may_see(bigint, bigint, timestamptz) from public;

create or replace function append_access_record(
  p_student_profile_id bigint,
  p_kind text,
  p_who text,
  p_role text,
  p_what text,
  p_detail jsonb default null,
  p_guardian_id bigint default null,
  p_at timestamptz default now()
)
returns bigint
language sql
volatile
security definer
set search_path = pg_catalog, public
as $$
  insert into access_record (at, student_profile_id, guardian_id, kind, who, role, what, detail)
  values (p_at, p_student_profile_id, p_guardian_id, p_kind, left(p_who, 200), left(p_role, 50), left(p_what, 500),
          p_detail)
  returning id
$$;
comment on function append_access_record(bigint, text, text, text, text, jsonb, bigint, timestamptz) is
  'Adds an entry to a child''s record of access (the only way in): p_kind (export, erasure_request, import, restriction_set, restriction_lifted, sign_in, ...), who did it and in which role, what, machine-readable p_detail; p_guardian_id: the guardian whose own activity it is (shown to them alone), null for every reader. A restriction''s entry names no guardian.';
revoke all on function append_access_record(bigint, text, text, text, text, jsonb, bigint, timestamptz) from public;

create or replace function record_guardian_sign_in(p_token_hash bytea, p_at timestamptz default now())
returns integer
language sql
volatile
security definer
set search_path = pg_catalog, public
as $$
  -- One entry per child of the token's guardian, shown to that guardian alone.
  with g as (select t.guardian_id from find_guardian_token(p_token_hash) t)
  select count(append_access_record(gs.student_profile_id, 'sign_in', 'You', 'guardian', 'Signed in',
                                    null, g.guardian_id, p_at))::integer
    from g join guardian_student gs on gs.guardian_id = g.guardian_id
$$;
comment on function record_guardian_sign_in(bytea, timestamptz) is
  'Records a sign-in with the live guardian token of sha256 p_token_hash in each of the guardian''s children''s record, visible to that guardian only; returns the entries written (0 for no live token).';
revoke all on function record_guardian_sign_in(bytea, timestamptz) from public;
grant execute on function record_guardian_sign_in(bytea, timestamptz) to weekly_trends_reader;

create or replace function student_access_record(p_student_profile_id bigint, p_guardian_id bigint default null)
returns table (at timestamptz, kind text, who text, role text, what text)
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  -- What a reader of the child's record sees, newest first: the record's entries for everyone and the
  -- reader's own; every staff read of the child's figures (access_log); the reader's digests. Never
  -- another guardian's own activity. p_guardian_id null: the staff's and the student's view.
  select * from (
    select r.at, r.kind, r.who, r.role, r.what
      from access_record r
     where r.student_profile_id = p_student_profile_id
       and (r.guardian_id is null or r.guardian_id = p_guardian_id)
    union all
    select l.occurred_at, 'staff_view', coalesce(s.display_name, 'A member of staff'), 'staff',
           'Opened the figures (' || l.endpoint || ')'
      from access_log l
      left join staff_member s on s.id = l.staff_member_id
     where l.student_profile_id = p_student_profile_id and l.staff_member_id is not null
    union all
    select d.sent_at, 'digest', 'Weekly Trends', 'mail',
           'Weekly digest sent for ' || d.iso_year || '-W' || lpad(d.iso_week::text, 2, '0')
      from digest_delivery d
     where d.guardian_id = p_guardian_id and d.outcome = 'sent'
       and exists (select from guardian_student gs
                    where gs.guardian_id = p_guardian_id and gs.student_profile_id = p_student_profile_id)
  ) e
  order by e.at desc, e.kind
$$;
comment on function student_access_record(bigint, bigint) is
  'A child''s record of access as reader p_guardian_id sees it (null: staff, the student), newest first: access_record''s entries for all and the reader''s own, staff reads from access_log, the reader''s sent digests.';
revoke all on function student_access_record(bigint, bigint) from public;

create or replace function family_access_record_json(p_student_profile_id bigint, p_endpoint text,
                                                     p_at timestamptz default now())
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_guardian bigint := app_guardian_id();
  v_student bigint := app_student_id();
begin
  -- Null: not this reader's to read (the caller answers 404, as for an unknown id). A signed-in student
  -- reads their own record (the staff's view: every guardian's own activity left out).
  if v_guardian is null then
    if v_student is distinct from p_student_profile_id or not student_may_sign_in(v_student, p_at) then
      return null;
    end if;
  elsif not family_may_see(v_guardian, p_student_profile_id, p_at) then
    return null;
  end if;
  perform log_access(p_student_profile_id, p_endpoint);  -- the read of the record is itself recorded
  return jsonb_build_object('entries', coalesce((
    select jsonb_agg(jsonb_build_object('at', utc_iso_timestamp(e.at), 'kind', e.kind, 'who', e.who,
                                        'role', e.role, 'what', e.what) order by e.at desc, e.kind)
      from student_access_record(p_student_profile_id, v_guardian) e), '[]'::jsonb));
end;
$$;
comment on function family_access_record_json(bigint, text, timestamptz) is
  'The record of access of a child for the guardian of the request (app.guardian_id) as {"entries": [...]}, newest first, the read logged under p_endpoint; null when family_may_see() says no.';
revoke all on function family_access_record_json(bigint, text, timestamptz) from public;
grant execute on function family_access_record_json(bigint, text, timestamptz) to weekly_trends_reader;

create or replace function student_export_json(
  p_student_profile_id bigint,
  p_guardian_id bigint default null,
  p_min_students integer default 10,
  p_alert_drop_points numeric default 10,
  p_alert_min_scores integer default 2,
  p_staff_notes boolean default false
)
returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  -- Everything held about the child, as one document (the OpenAPI document's StudentExport). For a
  -- guardian (p_guardian_id), the other guardians' emails, deliveries, alert choices and own activity are
  -- left out. Staff's follow-up notes, who set a restriction on a link and why, and mail servers'
  -- errors only in the school's own export (p_staff_notes). Never a token or a token's hash.
  with sp as (select * from student_profile where id = p_student_profile_id),
  counted as (select * from counted_scores(p_student_profile_id)),
  span as (select min(week_start_date) as first_week, max(week_start_date) as last_week from counted)
  select jsonb_build_object(
    'format', 'weekly-trends-student-export',
    'version', 1,
    'generated_at', utc_iso_timestamp(now()),
    'student', (select to_jsonb(sp) from sp),
    'guardians', coalesce((
      select jsonb_agg(jsonb_build_object(
               'guardian_id', g.id,
               'display_name', g.display_name,
               'email', case when p_guardian_id is null or g.id = p_guardian_id then g.email end,
               'preferred_language', g.preferred_language,
               'linked_at', utc_iso_timestamp(gs.created_at),
               'weekly_digest', case when p_guardian_id is null or g.id = p_guardian_id
                                     then coalesce(mp.weekly_digest, true) end)
             order by g.id)
        from guardian_student gs
        join guardian g on g.id = gs.guardian_id
        left join guardian_mail_preference mp on mp.guardian_id = g.id
       where gs.student_profile_id = p_student_profile_id), '[]'::jsonb),
    'quiz_attempts', coalesce((
      select jsonb_agg(to_jsonb(q) order by q.id) from quiz_attempt q
       where q.student_profile_id = p_student_profile_id), '[]'::jsonb),
    'assignment_submissions', coalesce((
      select jsonb_agg(to_jsonb(a) order by a.id) from assignment_submission a
       where a.student_profile_id = p_student_profile_id), '[]'::jsonb),
    'weekly_rows', coalesce((
      select jsonb_agg(to_jsonb(w) order by w.week_start_date) from student_weekly_performance w
       where w.student_profile_id = p_student_profile_id), '[]'::jsonb),
    'courses', coalesce((
      select jsonb_agg(jsonb_build_object(
               'course_id', c.id,
               'name', c.name,
               'weeks', (
                 select jsonb_agg(jsonb_build_object(
                          'week_start_date', cw.week_start_date,
                          'class_average', case when v.student_count >= p_min_students then v.class_average end,
                          'class_average_suppressed', v.student_count is null or v.student_count < p_min_students)
                        order by cw.week_start_date)
                   from (select distinct week_start_date from counted k where k.course_id = c.id) cw
                   left join course_weekly_performance v
                          on v.course_id = c.id and v.week_start_date = cw.week_start_date))
             order by c.id)
        from course c
       where c.id in (select course_id from counted)), '[]'::jsonb),
    'alerts', coalesce((
      select jsonb_agg(jsonb_build_object('week_start_date', a.week_start_date, 'alert', a.alert)
                       order by a.week_start_date)
        from span, weekly_trend_alerts(p_student_profile_id, span.first_week, span.last_week,
                                       p_alert_drop_points, p_alert_min_scores) a
       where span.first_week is not null and a.alert is not null), '[]'::jsonb),
    'digest_deliveries', coalesce((
      select jsonb_agg(jsonb_build_object('guardian_id', d.guardian_id, 'iso_year', d.iso_year,
                                          'iso_week', d.iso_week, 'outcome', d.outcome,
                                          'sent_at', utc_iso_timestamp(d.sent_at))
                       order by d.iso_year, d.iso_week, d.guardian_id)
        from digest_delivery d
       where d.guardian_id in (select guardian_id from guardian_student
                                where student_profile_id = p_student_profile_id)
         and (p_guardian_id is null or d.guardian_id = p_guardian_id)), '[]'::jsonb),
    'alert_deliveries', coalesce((
      -- The alerts mailed about the child: to which guardian, what (kind, subject, detail), when, in
      -- which email (alert_messages). A guardian's copy: their own, as digest deliveries.
      select jsonb_agg(jsonb_build_object('guardian_id', d.guardian_id, 'kind', d.kind, 'subject', d.subject,
                                          'detail', d.detail, 'created_at', utc_iso_timestamp(d.created_at),
                                          'alert_message', d.message)
                       order by d.created_at, d.guardian_id, d.kind, d.subject)
        from alert_delivery d
       where d.student_profile_id = p_student_profile_id
         and (p_guardian_id is null or d.guardian_id = p_guardian_id)), '[]'::jsonb),
    'alert_messages', coalesce((
      -- The outcome of each alert email that carried an alert about the child; never its unsubscribe
      -- token's hash. The server's error (it may name the guardian's address): the school's copy only.
      select jsonb_agg(jsonb_build_object('id', m.id, 'guardian_id', m.guardian_id, 'outcome', m.outcome,
                                          'attempts', m.attempts, 'created_at', utc_iso_timestamp(m.created_at),
                                          'sent_at', utc_iso_timestamp(m.sent_at),
                                          'last_error', case when p_staff_notes then m.last_error end)
                       order by m.id)
        from alert_message m
       where m.id in (select d.message from alert_delivery d
                       where d.student_profile_id = p_student_profile_id
                         and (p_guardian_id is null or d.guardian_id = p_guardian_id))), '[]'::jsonb),
    'link_restrictions', coalesce((
      -- The history of restrictions on the child's links (guardian_link_restriction_event), oldest first.
      -- A family's copy says when one was set or lifted, as the record of access does: whose link only to
      -- that guardian themself, never why or by whom (a court order's details stay with the school).
      select jsonb_agg(jsonb_build_object(
               'at', utc_iso_timestamp(e.at),
               'action', e.action,
               'guardian_id', case when p_staff_notes or e.guardian_id = p_guardian_id then e.guardian_id end,
               'until', case when p_staff_notes or e.guardian_id = p_guardian_id then e.until end,
               'reason', case when p_staff_notes then e.reason end,
               'by', case when p_staff_notes then coalesce(s.display_name, e.by_role) end)
             order by e.at, e.id)
        from guardian_link_restriction_event e
        left join staff_member s on s.id = e.staff_member_id
       where e.student_profile_id = p_student_profile_id), '[]'::jsonb),
    'access_record', coalesce((
      select jsonb_agg(jsonb_build_object('at', utc_iso_timestamp(e.at), 'kind', e.kind, 'who', e.who,
                                          'role', e.role, 'what', e.what) order by e.at desc, e.kind)
        from student_access_record(p_student_profile_id, p_guardian_id) e), '[]'::jsonb),
    'enrollments', coalesce((
      select jsonb_agg(to_jsonb(e) order by e.course_id, e.start_on) from enrollment e
       where e.student_profile_id = p_student_profile_id), '[]'::jsonb),
    'excusals', coalesce((
      select jsonb_agg(to_jsonb(x) order by x.course_work_id) from course_work_excusal x
       where x.student_profile_id = p_student_profile_id), '[]'::jsonb),
    'missing_work', coalesce((
      select jsonb_agg(jsonb_build_object('course_work_id', m.course_work_id, 'course_id', m.course_id,
                                          'course_name', m.course_name, 'title', m.title, 'kind', m.kind,
                                          'due_at', utc_iso_timestamp(m.due_at),
                                          'week_start_date', m.week_start_date)
                       order by m.due_at, m.course_work_id)
        from student_missing_work(p_student_profile_id, null, null) m), '[]'::jsonb),
    'alert_settings', coalesce((
      select jsonb_agg(jsonb_build_object('guardian_id', gs.guardian_id, 'missing_work', a.missing_work,
                                          'sustained_decline', a.sustained_decline,
                                          'course_average_below', a.course_average_below,
                                          'score_below', a.score_below)
                       order by gs.guardian_id)
        from guardian_student gs
       cross join lateral guardian_alert_settings(gs.guardian_id, gs.student_profile_id) a
       where gs.student_profile_id = p_student_profile_id
         and (p_guardian_id is null or gs.guardian_id = p_guardian_id)), '[]'::jsonb),
    'follow_up_notes', case when p_staff_notes then coalesce((
      select jsonb_agg(jsonb_build_object('noted_on', n.noted_on, 'kind', n.kind, 'note', n.note,
                                          'author', m.display_name) order by n.noted_on desc, n.id desc)
        from follow_up_note n left join staff_member m on m.id = n.staff_member_id
       where n.student_profile_id = p_student_profile_id), '[]'::jsonb) end)
    from sp
$$;
comment on function student_export_json(bigint, bigint, integer, numeric, integer, boolean) is
  'Everything held about a student as one JSON document (profile, guardians without tokens, every quiz attempt and assignment submission, weekly rows, courses with class averages, alerts, digest deliveries, the alerts mailed and their emails'' outcomes, the history of restrictions on the links, the record of access, enrollments, excusals, missing work, alert choices; staff''s follow-up notes when p_staff_notes, else null); null for an unknown student. p_guardian_id: a guardian''s copy (other guardians'' emails, deliveries, alerts and alert choices left out). Who restricted a link and why, whose link unless the reader''s own, and mail errors: only when p_staff_notes (the school''s copy).';
revoke all on function student_export_json(bigint, bigint, integer, numeric, integer, boolean) from public;

create or replace function family_export_json(
  p_student_profile_id bigint,
  p_endpoint text,
  p_min_students integer default 10,
  p_alert_drop_points numeric default 10,
  p_alert_min_scores integer default 2,
  p_at timestamptz default now()
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_guardian bigint := app_guardian_id();
  v_student bigint := app_student_id();
begin
  if v_guardian is null then
    if v_student is distinct from p_student_profile_id or not student_may_sign_in(v_student, p_at) then
      return null;
    end if;
  elsif not family_may_see(v_guardian, p_student_profile_id, p_at) then
    return null;
  end if;
  perform log_access(p_student_profile_id, p_endpoint);
  -- A guardian's own activity: in their record only; the student's own export: in the record for all.
  perform append_access_record(p_student_profile_id, 'export', 'You', 'guardian',
                               'Downloaded the export', null, v_guardian, p_at)
    where v_guardian is not null;
  perform append_access_record(p_student_profile_id, 'export', 'The student', 'student',
                               'Downloaded the export', null, null, p_at)
    where v_guardian is null;
  return student_export_json(p_student_profile_id, v_guardian, p_min_students, p_alert_drop_points,
                             p_alert_min_scores);
end;
$$;
comment on function family_export_json(bigint, text, integer, numeric, integer, timestamptz) is
  'The export of a child for the guardian of the request (app.guardian_id), the read logged and the export recorded in their record; null when family_may_see() says no.';
revoke all on function family_export_json(bigint, text, integer, numeric, integer, timestamptz) from public;
grant execute on function family_export_json(bigint, text, integer, numeric, integer, timestamptz)
  to weekly_trends_reader;

create or replace function operator_export_json(
  p_student_profile_id bigint,
  p_who text,
  p_min_students integer default 10,
  p_alert_drop_points numeric default 10,
  p_alert_min_scores integer default 2,
  p_at timestamptz default now()
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  if not exists (select from student_profile where id = p_student_profile_id) then
    return null;
  end if;
  perform append_access_record(p_student_profile_id, 'export', p_who, 'school', 'Exported the whole record',
                               null, null, p_at);
  return student_export_json(p_student_profile_id, null, p_min_students, p_alert_drop_points,
                             p_alert_min_scores, p_staff_notes => true);
end;
$$;
comment on function operator_export_json(bigint, text, integer, numeric, integer, timestamptz) is
  'The whole export of a student for staff and operators (`weekly-trends export`), recorded in the child''s record as done by p_who; null for an unknown student.';
revoke all on function operator_export_json(bigint, text, integer, numeric, integer, timestamptz) from public;
