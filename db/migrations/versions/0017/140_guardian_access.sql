-- Who may read a student's figures (issue 25): the one home of every decision about a guardian's
-- access (the link, the rights age, the student's sharing, a dependant's record, a restriction).
-- The parents' answer, its page, the CSV, the week's scores, the digest, the alerts and the invitations
-- all ask guardian_link_states() (or guardian_link_state(), the same for one student), as do the
-- row-level security policies of the reader role and the definers that read one student's rows
-- (app_readable_students(), app_may_read_student()): each reads guardian_links(), inlined.
--
-- The states of a guardian's link to a student, at an instant p_at:
--   unlinked      no link (or an unknown id): 404, as for any id;
--   restricted    staff restricted the link (restrict_guardian_link()): exactly as unlinked;
--   active        the student has no birth date, or is under the rights age;
--   shared        past the rights age, the student shares the record with this guardian;
--   dependant     past the rights age, staff recorded the student as a dependant until a date not past;
--   access_ended  past the rights age, neither: a page (and the API's 403 /access-ended) says since when.
-- active, shared and dependant give access. A restriction wins over sharing: staff can lift it.

create or replace function rights_age()
returns integer
language sql
stable
parallel safe
as $$
  -- WEEKLY_TRENDS_RIGHTS_AGE, which the app sets in each transaction (web/db.py) and the CLI on each
  -- connection (web/connection.py); 18 when unset (psql, another program).
  select coalesce(nullif(current_setting('weekly_trends.rights_age', true), '')::integer, 18)
$$;
comment on function rights_age() is
  'The age at which a guardian link stops giving access (WEEKLY_TRENDS_RIGHTS_AGE, the setting weekly_trends.rights_age; 18 when unset).';

create or replace function student_access_mode()
returns text
language sql
stable
parallel safe
as $$
  -- WEEKLY_TRENDS_STUDENT_ACCESS, set as rights_age() is: eligible (default), all or off.
  select coalesce(nullif(current_setting('weekly_trends.student_access', true), ''), 'eligible')
$$;
comment on function student_access_mode() is
  'Which students may sign in (WEEKLY_TRENDS_STUDENT_ACCESS, the setting weekly_trends.student_access): eligible (past the rights age; the default), all or off.';

create or replace function app_student_id()
returns bigint
language sql
stable
parallel safe
as $$ select nullif(current_setting('app.student_id', true), '')::bigint $$;
comment on function app_student_id() is
  'The student reading their own figures in the current request (transaction-local setting app.student_id, set once their token is checked), null when unset.';

create or replace function rights_age_reached_on(p_birth_date date)
returns date
language sql
stable
parallel safe
as $$
  -- A 29 February birthday comes of age on 28 February in a year without one.
  select (p_birth_date + make_interval(years => rights_age()))::date
$$;
comment on function rights_age_reached_on(date) is
  'The student''s birthday at the rights age (rights_age()); null without a birth date.';

create or replace function link_state(p_today date, p_birth_date date, p_dependant_until date,
                                      p_shared_at timestamptz, p_restricted_at timestamptz,
                                      p_restricted_until date)
returns text
language sql
stable
parallel safe
as $$
  -- p_today: the day in the student's time zone. The rule, in the order it is decided.
  select case
           when p_restricted_at is not null and (p_restricted_until is null or p_today <= p_restricted_until)
             then 'restricted'
           when p_birth_date is null or p_today < rights_age_reached_on(p_birth_date) then 'active'
           when p_shared_at is not null then 'shared'
           when p_today <= p_dependant_until then 'dependant'
           else 'access_ended'
         end
$$;
comment on function link_state(date, date, date, timestamptz, timestamptz, date) is
  'The state of one existing guardian link on the student''s day p_today: restricted, active, shared, dependant or access_ended (guardian_link_states() feeds it; the file''s text says what each means).';

create or replace function guardian_links(p_guardian_id bigint, p_at timestamptz)
returns table (student_profile_id bigint, state text, gives_access boolean, access_ended_on date,
               display_name text, time_zone text)
language sql
stable
-- Invoker's rights and no SET clause: inlined into the statement of the definer that asks it
-- (guardian_link_states(), app_readable_students(), which the definers that read one student's rows ask),
-- so that a check costs a join, not a call (issue 26's bound on the answer's p50).
as $$
  select gs.student_profile_id, s.state, s.state in ('active', 'shared', 'dependant'),
         case when s.state = 'access_ended' then rights_age_reached_on(sp.birth_date) end,
         sp.display_name, sp.time_zone
    from public.guardian_student gs
    join public.student_profile sp on sp.id = gs.student_profile_id
   cross join lateral (select link_state((p_at at time zone sp.time_zone)::date, sp.birth_date, sp.dependant_until,
                                         gs.shared_at, gs.restricted_at, gs.restricted_until) as state) s
   where gs.guardian_id = p_guardian_id
$$;
comment on function guardian_links(bigint, timestamptz) is
  'Each student linked to the guardian with the link''s state at p_at (link_state()) and whether it gives access: the query every access decision reads, inlined into the definer asking (guardian_link_states(), app_readable_students()). The owner''s.';
revoke all on function guardian_links(bigint, timestamptz) from public;

create or replace function guardian_link_states(p_guardian_id bigint, p_at timestamptz default now())
returns table (student_profile_id bigint, state text, gives_access boolean, access_ended_on date,
               display_name text, time_zone text)
language plpgsql
stable
-- A definer: the reader role asks it (the parents' answer, its page), and it reads the tables the
-- reader's policies guard. PL/pgSQL, not SQL: its statement's plan is kept for the session, and a SQL
-- definer (never inlined) cost several times as much per call (measured: docs/benchmarks.md).
security definer
set search_path = pg_catalog, public
rows 3
as $$
begin
  return query select l.* from guardian_links(p_guardian_id, p_at) l;
end;
$$;
comment on function guardian_link_states(bigint, timestamptz) is
  'Each student linked to the guardian, with the link''s state at p_at (link_state(): restricted, active, shared, dependant, access_ended), whether it gives access (active, shared, dependant), for access_ended the day it ended, and the student''s name and time zone (which the guardian may know even once access ended). The one home of the guardian''s access to their children.';
revoke all on function guardian_link_states(bigint, timestamptz) from public;
grant execute on function guardian_link_states(bigint, timestamptz) to weekly_trends_reader, weekly_trends_staff;

create or replace function guardian_link_state(p_guardian_id bigint, p_student_id bigint,
                                               p_at timestamptz default now())
returns text
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  select coalesce((select s.state from guardian_link_states(p_guardian_id, p_at) s
                    where s.student_profile_id = p_student_id), 'unlinked')
$$;
comment on function guardian_link_state(bigint, bigint, timestamptz) is
  'The state of the guardian''s access to the student at p_at: unlinked, restricted, active, shared, dependant or access_ended (guardian_link_states() for one student).';
revoke all on function guardian_link_state(bigint, bigint, timestamptz) from public;
grant execute on function guardian_link_state(bigint, bigint, timestamptz) to weekly_trends_reader, weekly_trends_staff;

create or replace function student_link_states(p_student_id bigint, p_at timestamptz default now())
returns table (guardian_id bigint, state text, gives_access boolean, shared boolean)
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  -- The same rule seen from the student: the staff page and the student's own list of guardians.
  select gs.guardian_id, s.state, s.state in ('active', 'shared', 'dependant'), gs.shared_at is not null
    from guardian_student gs
    join student_profile sp on sp.id = gs.student_profile_id
   cross join lateral (select link_state((p_at at time zone sp.time_zone)::date, sp.birth_date, sp.dependant_until,
                                         gs.shared_at, gs.restricted_at, gs.restricted_until) as state) s
   where gs.student_profile_id = p_student_id
$$;
comment on function student_link_states(bigint, timestamptz) is
  'Each guardian linked to the student with the link''s state at p_at (link_state()), whether it gives access, and whether the student shares with them.';
revoke all on function student_link_states(bigint, timestamptz) from public;
grant execute on function student_link_states(bigint, timestamptz) to weekly_trends_staff;

create or replace function student_may_sign_in(p_student_id bigint, p_at timestamptz default now())
returns boolean
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  select case student_access_mode()
           when 'all' then true
           when 'eligible' then (p_at at time zone sp.time_zone)::date >= rights_age_reached_on(sp.birth_date)
           else false
         end
    from student_profile sp
   where sp.id = p_student_id
$$;
comment on function student_may_sign_in(bigint, timestamptz) is
  'Whether the student may sign in at p_at under WEEKLY_TRENDS_STUDENT_ACCESS (student_access_mode()): all, off, or eligible (past the rights age in their time zone; never without a birth date). Null for an unknown id.';
revoke all on function student_may_sign_in(bigint, timestamptz) from public;
grant execute on function student_may_sign_in(bigint, timestamptz) to weekly_trends_reader, weekly_trends_staff;

create or replace function app_readable_students()
returns setof bigint
language plpgsql
stable
security definer
set search_path = pg_catalog, public
rows 3
as $$
declare
  v_guardian bigint := app_guardian_id();
  v_student bigint := app_student_id();
begin
  -- The students the request's reader may read now: a guardian's children their link gives access to,
  -- or the signed-in student themselves (find_student_token() checked they may sign in).
  if v_guardian is not null then
    return query select l.student_profile_id from guardian_links(v_guardian, now()) l where l.gives_access;
  end if;
  if v_student is not null then
    return next v_student;
  end if;
end;
$$;
comment on function app_readable_students() is
  'The students whose figures the request''s reader may read: the children of app.guardian_id whose link gives access (guardian_links()), or app.student_id. The reader role''s row-level security policies ask it.';
revoke all on function app_readable_students() from public;
grant execute on function app_readable_students() to weekly_trends_reader;

create or replace function app_may_read_student(p_student_id bigint)
returns boolean
language plpgsql
stable
-- Invoker's rights: the definers that read one student's rows ask it as their owner. PL/pgSQL: its plan is
-- kept for the session on every supported version (a SQL function with a subquery is never inlined, and
-- before PostgreSQL 18 it was planned at each call).
as $$
begin
  return p_student_id in (select app_readable_students());
end;
$$;
comment on function app_may_read_student(bigint) is
  'Whether the request''s reader (app.guardian_id or app.student_id) may read the student''s figures now (app_readable_students()), for the definers that read their rows (owner''s rights).';
-- No grant: the definers that inline it run as their owner (revision 0017 took the reader's away).
revoke all on function app_may_read_student(bigint) from public, weekly_trends_reader;

-- Restrictions on one link: staff (as the staff member of the request) and operators (the owner).

create or replace function restrict_guardian_link(p_guardian_id bigint, p_student_id bigint, p_reason text,
                                                  p_until date default null)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_event bigint;
begin
  if p_reason is null or length(btrim(p_reason)) not between 1 and 2000 then
    raise exception 'a restriction needs a reason (1 to 2000 characters)'
      using errcode = 'invalid_parameter_value';
  end if;
  if p_until is not null and p_until < current_date - 1 then
    raise exception 'the restriction would end in the past (%)', p_until
      using errcode = 'invalid_parameter_value';
  end if;
  update guardian_student
     set restricted_at = now(), restricted_until = p_until
   where guardian_id = p_guardian_id and student_profile_id = p_student_id;
  if not found then
    raise exception 'guardian % is not linked to student %', p_guardian_id, p_student_id
      using errcode = 'no_data_found';
  end if;
  insert into guardian_link_restriction_event (guardian_id, student_profile_id, action, reason, until, staff_member_id)
  values (p_guardian_id, p_student_id, 'restricted', btrim(p_reason), p_until, app_staff_member_id())
  returning id into v_event;
  -- In the child's record of access for every reader, never naming the restricted guardian.
  perform append_access_record(p_student_id, 'restriction_set', 'The school', 'school',
                               'Restricted one guardian''s access');
  return v_event;
end;
$$;
comment on function restrict_guardian_link(bigint, bigint, text, date) is
  'Restricts one guardian''s link to a student (a court order, a legal document) through p_until (the student''s day; null: until lifted): from the next request the guardian gets what an unlinked guardian gets. Records who (app.staff_member_id, else the database role), when and why in guardian_link_restriction_event; returns that event''s id. Setting it again replaces the reason and end.';
revoke all on function restrict_guardian_link(bigint, bigint, text, date) from public;
grant execute on function restrict_guardian_link(bigint, bigint, text, date) to weekly_trends_staff;

create or replace function lift_guardian_link_restriction(p_guardian_id bigint, p_student_id bigint)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  if not exists (select from guardian_student where guardian_id = p_guardian_id and student_profile_id = p_student_id) then
    raise exception 'guardian % is not linked to student %', p_guardian_id, p_student_id
      using errcode = 'no_data_found';
  end if;
  update guardian_student
     set restricted_at = null, restricted_until = null
   where guardian_id = p_guardian_id and student_profile_id = p_student_id and restricted_at is not null;
  if not found then
    return false;
  end if;
  insert into guardian_link_restriction_event (guardian_id, student_profile_id, action, staff_member_id)
  values (p_guardian_id, p_student_id, 'lifted', app_staff_member_id());
  perform append_access_record(p_student_id, 'restriction_lifted', 'The school', 'school',
                               'Lifted a restriction on one guardian''s access');
  return true;
end;
$$;
comment on function lift_guardian_link_restriction(bigint, bigint) is
  'Lifts the restriction on a guardian''s link to a student: access as before, from the next request. Records who and when; false (and nothing recorded) when the link was not restricted.';
revoke all on function lift_guardian_link_restriction(bigint, bigint) from public;
grant execute on function lift_guardian_link_restriction(bigint, bigint) to weekly_trends_staff;

create or replace function tg_guardian_link_restriction_event__append_only()
returns trigger
language plpgsql
as $$
declare
  v_context text;
begin
  if tg_op = 'DELETE' then
    -- The history leaves only with the student or guardian it is about: a DELETE issued by
    -- erase_student() or purge_family_record() itself (the call stack cannot be set by a caller).
    get diagnostics v_context = pg_context;
    if v_context ~ '(^|\n)PL/pgSQL function (erase_student|purge_family_record)\([^)]*\) line \d+ at (SQL statement|EXECUTE)(\n|$)' then
      return null;
    end if;
  end if;
  raise exception 'guardian_link_restriction_event is append-only: % is refused', tg_op
    using errcode = 'insufficient_privilege',
          hint = 'Entries leave the history only with the student or guardian they are about (erase_student(), purge_family_record()).';
end;
$$;
comment on function tg_guardian_link_restriction_event__append_only() is
  'Refuses UPDATE, TRUNCATE, and DELETE other than erase_student()''s and purge_family_record()''s, on guardian_link_restriction_event, for every role: the history of restrictions is kept while its student and guardian are.';
create or replace trigger _100_append_only_update
  before update on guardian_link_restriction_event
  for each statement execute function tg_guardian_link_restriction_event__append_only();
create or replace trigger _100_append_only_delete
  before delete on guardian_link_restriction_event
  for each statement execute function tg_guardian_link_restriction_event__append_only();
create or replace trigger _100_append_only_truncate
  before truncate on guardian_link_restriction_event
  for each statement execute function tg_guardian_link_restriction_event__append_only();

create or replace function set_student_dependant(p_student_id bigint, p_until date)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  update student_profile set dependant_until = p_until where id = p_student_id;
  if not found then
    raise exception 'unknown student id %', p_student_id using errcode = 'no_data_found';
  end if;
end;
$$;
comment on function set_student_dependant(bigint, date) is
  'Records that the student is a dependant of their guardians through p_until (null clears it): their links keep giving access past the rights age until then. For staff and operators.';
revoke all on function set_student_dependant(bigint, date) from public;
grant execute on function set_student_dependant(bigint, date) to weekly_trends_staff;

-- The student's own access: tokens as the guardians' (returned once, stored as sha256), and the switch
-- that shares the record with a guardian.

create or replace function issue_student_token(p_student_id bigint, p_ttl interval default '30 days')
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_token text;
begin
  if p_ttl is null or p_ttl <= interval '0' then
    raise exception 'token lifetime must be positive, got %', p_ttl using errcode = 'invalid_parameter_value';
  end if;
  if not exists (select from student_profile where id = p_student_id) then
    raise exception 'unknown student id %', p_student_id using errcode = 'no_data_found';
  end if;
  if not student_may_sign_in(p_student_id) then
    raise exception 'student % may not sign in (WEEKLY_TRENDS_STUDENT_ACCESS=%, rights age %)',
                    p_student_id, student_access_mode(), rights_age()
      using errcode = 'insufficient_privilege';
  end if;
  v_token := 'wtl_' || encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'hex');
  insert into student_token (student_profile_id, token_hash, expires_at)
  values (p_student_id, sha256(convert_to(v_token, 'UTF8')), now() + p_ttl);
  return v_token;
end;
$$;
comment on function issue_student_token(bigint, interval) is
  'Issues a student''s own sign-in token (wtl_…), valid for p_ttl, when student_may_sign_in(). Returned once; only its sha256 is stored.';
revoke all on function issue_student_token(bigint, interval) from public;

create or replace function staff_issue_student_token(p_student_id bigint, p_ttl interval)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  if app_staff_member_id() is null then
    raise exception 'staff_issue_student_token: no staff member for this request'
      using errcode = 'insufficient_privilege';
  end if;
  return issue_student_token(p_student_id, p_ttl);
end;
$$;
comment on function staff_issue_student_token(bigint, interval) is
  'A student''s own sign-in token, for the staff member of the request (app.staff_member_id) to mail; returned once, stored hashed.';
revoke all on function staff_issue_student_token(bigint, interval) from public;
grant execute on function staff_issue_student_token(bigint, interval) to weekly_trends_staff;

create or replace function revoke_unsent_student_token(p_student_id bigint, p_token_hash bytea)
returns boolean
language sql
volatile
security definer
set search_path = pg_catalog, public
as $$
  with ended as (
    update student_token set revoked_at = now()
     where student_profile_id = p_student_id and token_hash = p_token_hash and revoked_at is null
    returning 1)
  select exists (select from ended)
$$;
comment on function revoke_unsent_student_token(bigint, bytea) is
  'Revokes the one student token (by sha256) issued for a sign-in link the mail server then refused. True when it was live.';
revoke all on function revoke_unsent_student_token(bigint, bytea) from public;
grant execute on function revoke_unsent_student_token(bigint, bytea) to weekly_trends_staff;

create or replace function find_student_token(p_token_hash bytea, p_token_id bigint default null)
returns table (token_id bigint, student_profile_id bigint)
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  select t.id, t.student_profile_id
    from student_token t
   where (t.token_hash = p_token_hash or t.id = p_token_id)
     and t.revoked_at is null
     and t.expires_at > now()
     and student_may_sign_in(t.student_profile_id)
$$;
comment on function find_student_token(bytea, bigint) is
  'The unexpired, unrevoked student token with this sha256 (or row id, for a session), and its student, while the student may sign in (student_may_sign_in(): a change of WEEKLY_TRENDS_STUDENT_ACCESS applies from the next request).';
revoke all on function find_student_token(bytea, bigint) from public;
grant execute on function find_student_token(bytea, bigint) to weekly_trends_reader;

create or replace function sign_out_student_token(p_token_id bigint)
returns boolean
language sql
volatile
security definer
set search_path = pg_catalog, public
as $$
  with ended as (
    update student_token
       set revoked_at = now()
     where id = p_token_id
       and student_profile_id = app_student_id()
       and revoked_at is null
    returning 1)
  select exists (select from ended)
$$;
comment on function sign_out_student_token(bigint) is
  'Sign-out: revokes the student token of the session (its row id), only for the student the transaction acts for (app.student_id).';
revoke all on function sign_out_student_token(bigint) from public;
grant execute on function sign_out_student_token(bigint) to weekly_trends_reader;

create or replace function my_guardians()
returns table (guardian_id bigint, display_name text, email text, shared boolean, state text)
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  -- The signed-in student's guardians and whether each may read the record (a restricted one is listed:
  -- the student may know whom the school restricted, never the reason).
  select g.id, g.display_name, g.email, s.shared, s.state
    from student_link_states(app_student_id()) s
    join guardian g on g.id = s.guardian_id
   where app_student_id() is not null
   order by g.display_name nulls last, g.email, g.id
$$;
comment on function my_guardians() is
  'The guardians of the student of the request (app.student_id): id, name, email, whether the student shares with them, and the link''s state (student_link_states()).';
revoke all on function my_guardians() from public;
grant execute on function my_guardians() to weekly_trends_reader;

create or replace function set_guardian_sharing(p_guardian_id bigint, p_share boolean)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  if app_student_id() is null then
    raise exception 'set_guardian_sharing: no student for this request' using errcode = 'insufficient_privilege';
  end if;
  if p_share is null then
    raise exception 'set_guardian_sharing: share or not, not null' using errcode = 'null_value_not_allowed';
  end if;
  update guardian_student
     set shared_at = case when p_share then coalesce(shared_at, now()) end
   where guardian_id = p_guardian_id and student_profile_id = app_student_id();
  if not found then
    raise exception 'guardian % is not linked to this student', p_guardian_id using errcode = 'no_data_found';
  end if;
  return p_share;
end;
$$;
comment on function set_guardian_sharing(bigint, boolean) is
  'The signed-in student (app.student_id) shares their record with one of their guardians, or stops: it takes effect from the guardian''s next request.';
revoke all on function set_guardian_sharing(bigint, boolean) from public;
grant execute on function set_guardian_sharing(bigint, boolean) to weekly_trends_reader;
