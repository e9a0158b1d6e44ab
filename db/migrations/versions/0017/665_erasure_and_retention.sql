-- Erasure and retention (issue 25 items 6 and 7): erase_student() deletes every row about a student in
-- one transaction and keeps a certificate and a tombstone; purge_family_record() applies the retention
-- policy, students through erase_student().

create or replace function erased_source_hash(p_source text, p_sourced_id text)
returns bytea
language sql
immutable
parallel safe
set search_path = pg_catalog, public
as $$ select sha256(convert_to(p_source || E'\n' || p_sourced_id, 'UTF8')) $$;
comment on function erased_source_hash(text, text) is
  'The tombstone of an erased student: sha256 of the OneRoster source and sourcedId (the source holds no newline).';

create or replace function table_deletions()
returns jsonb
language sql
stable
set search_path = pg_catalog, public
as $$
  -- Rows each table of the schema lost so far in this transaction, cascades and triggers included.
  select coalesce(jsonb_object_agg(c.relname, pg_stat_get_xact_tuples_deleted(c.oid)), '{}'::jsonb)
    from pg_class c
   where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
$$;
comment on function table_deletions() is
  'Per table of schema public, the rows deleted so far in this transaction (pg_stat_get_xact_tuples_deleted): erasure certificates count with it.';
revoke all on function table_deletions() from public;

create or replace function tg_access_record__append_only()
returns trigger
language plpgsql
as $$
declare
  v_context text;
begin
  if tg_op = 'DELETE' then
    -- Only erase_student() and purge_family_record() delete; the call stack cannot be set by a caller.
    get diagnostics v_context = pg_context;
    if v_context ~ '(^|\n)PL/pgSQL function (erase_student|purge_family_record)\([^)]*\) line \d+ at (SQL statement|EXECUTE)(\n|$)' then
      return null;
    end if;
  end if;
  raise exception 'access_record is append-only: % is refused', tg_op
    using errcode = 'insufficient_privilege',
          hint = 'Entries leave the record only through erase_student() and purge_family_record().';
end;
$$;
comment on function tg_access_record__append_only() is
  'Refuses UPDATE, TRUNCATE, and DELETE other than erase_student()''s and purge_family_record()''s, on access_record, for every role.';

create or replace trigger _100_append_only_update
  before update on access_record for each statement execute function tg_access_record__append_only();
create or replace trigger _100_append_only_delete
  before delete on access_record for each statement execute function tg_access_record__append_only();
create or replace trigger _100_append_only_truncate
  before truncate on access_record for each statement execute function tg_access_record__append_only();

create or replace function erase_student(
  p_student_profile_id bigint,
  p_reason text,
  p_erased_by text,
  p_kind text default 'request',
  p_at timestamptz default now(),
  p_refresh_class_view boolean default true
)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_guardians bigint[];
  v_before jsonb;
  v_rows jsonb;
  v_ref record;
  v_certificate_id bigint;
begin
  if p_reason is null or btrim(p_reason) = '' or length(p_reason) > 1000 then
    raise exception 'an erasure needs a reason of 1 to 1000 characters'
      using errcode = 'invalid_parameter_value';
  end if;
  if p_erased_by is null or btrim(p_erased_by) = '' or length(p_erased_by) > 200 then
    raise exception 'an erasure needs who runs it (1 to 200 characters)'
      using errcode = 'invalid_parameter_value';
  end if;
  -- The student's row locked first: a writer adding a score for them waits, then fails its foreign key.
  perform from student_profile where id = p_student_profile_id for update;
  if not found then
    raise exception 'no student with id %', p_student_profile_id using errcode = 'no_data_found';
  end if;
  -- Guardians left with no other child go too (their tokens, preferences, deliveries by cascade).
  select coalesce(array_agg(gs.guardian_id), '{}') into v_guardians
    from guardian_student gs
   where gs.student_profile_id = p_student_profile_id
     and not exists (select from guardian_student o
                      where o.guardian_id = gs.guardian_id and o.student_profile_id <> p_student_profile_id);
  perform from guardian where id = any(v_guardians) for update;
  -- Tombstones: an import of the same source record reports the student erased.
  insert into erased_source_record (source_hash, erased_at)
  select erased_source_hash(m.source, m.sourced_id), p_at
    from oneroster_student m where m.student_profile_id = p_student_profile_id
  on conflict (source_hash) do nothing;

  v_before := table_deletions();
  -- The import's copies of the student's results (they name the student by sourcedId).
  delete from oneroster_result r using oneroster_student m
   where m.student_profile_id = p_student_profile_id and r.source = m.source and r.student_sourced_id = m.sourced_id;
  -- Every table whose foreign key refers to the student (or a departing guardian) without a cascade:
  -- found in the catalogue, so tables added later are covered. Cascading ones go with the row.
  for v_ref in
    select c.conrelid::regclass as tab, a.attname as col, c.confrelid::regclass as target
      from pg_constraint c
      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
     where c.contype = 'f' and cardinality(c.conkey) = 1 and c.confdeltype <> 'c'
       and c.confrelid in ('public.student_profile'::regclass, 'public.guardian'::regclass)
  loop
    if v_ref.target = 'public.student_profile'::regclass then
      execute format('delete from %s where %I = $1', v_ref.tab, v_ref.col) using p_student_profile_id;
    else
      execute format('delete from %s where %I = any($1)', v_ref.tab, v_ref.col) using v_guardians;
    end if;
  end loop;
  delete from student_profile where id = p_student_profile_id;
  delete from guardian where id = any(v_guardians);
  -- Tables naming students or guardians without a foreign key (the access log, the record, the weekly rows).
  for v_ref in
    select a.attrelid::regclass as tab, a.attname as col
      from pg_attribute a
      join pg_class t on t.oid = a.attrelid
     where t.relnamespace = 'public'::regnamespace and t.relkind in ('r', 'p')
       and a.attnum > 0 and not a.attisdropped and a.atttypid = 'bigint'::regtype
       and a.attname in ('student_profile_id', 'guardian_id')
       and not exists (select from pg_constraint c
                        where c.conrelid = a.attrelid and c.contype = 'f' and c.conkey = array[a.attnum])
     order by 1, 2
  loop
    if v_ref.col = 'student_profile_id' then
      execute format('delete from %s where %I = $1', v_ref.tab, v_ref.col) using p_student_profile_id;
    else
      execute format('delete from %s where %I = any($1)', v_ref.tab, v_ref.col) using v_guardians;
    end if;
  end loop;
  -- The class view's weeks that held the student's scores, recomputed now.
  if p_refresh_class_view then
    perform refresh_course_weekly_performance();
  end if;

  select coalesce(jsonb_object_agg(a.key, (a.value::bigint - coalesce((v_before ->> a.key)::bigint, 0))
                                   order by a.key), '{}'::jsonb)
    into v_rows
    from jsonb_each_text(table_deletions()) a
   where a.value::bigint > coalesce((v_before ->> a.key)::bigint, 0);
  insert into erasure_certificate (erased_at, erased_by, reason, kind, rows_deleted)
  values (p_at, p_erased_by, p_reason, p_kind, v_rows)
  returning id into v_certificate_id;
  return jsonb_build_object('certificate', v_certificate_id, 'erased_at', utc_iso_timestamp(p_at),
                            'erased_by', p_erased_by, 'reason', p_reason, 'kind', p_kind,
                            'rows_deleted', v_rows);
end;
$$;
comment on function erase_student(bigint, text, text, text, timestamptz, boolean) is
  'Deletes every row about a student in every table (found through the catalogue''s foreign keys and student_profile_id / guardian_id columns), and each guardian left with no child; keeps a tombstone per OneRoster mapping and a certificate (when, who, why, rows per table; no personal data), which it returns. p_kind: request or retention. The class view is refreshed unless p_refresh_class_view is false.';
revoke all on function erase_student(bigint, text, text, text, timestamptz, boolean) from public;

create or replace function purge_family_record(
  p_retention interval,
  p_left_grace interval default interval '90 days',
  p_now timestamptz default now(),
  p_dry_run boolean default false,
  p_erased_by text default 'weekly-trends purge'
)
returns table (what text, rows bigint)
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_cut timestamptz := p_now - p_retention;
  v_before jsonb;
  v_result jsonb := '{}'::jsonb;
  v_students bigint := 0;
  v_student bigint;
  v_left boolean;
  v_message text;
begin
  if p_retention is not null and p_retention <= interval '0' then
    raise exception 'retention must be positive, got %', p_retention using errcode = 'invalid_parameter_value';
  end if;
  if p_left_grace is null or p_left_grace < interval '0' then
    raise exception 'the grace after a student left must be zero or more, got %', p_left_grace
      using errcode = 'invalid_parameter_value';
  end if;
  begin
    v_before := table_deletions();
    if p_retention is not null then
      -- Whole ISO weeks (in the student's time zone) older than the week p_retention ago: the weekly rows
      -- go with their scores (the triggers), so the weeks left stay exact. The teacher's list's kept walk
      -- states of these students (alert_walk_checkpoint) can hold averages of the weeks removed: they go
      -- too (always safe: the next list walks the weeks left again).
      with quiz as (
        delete from quiz_attempt q using student_profile sp
         where sp.id = q.student_profile_id
           and local_iso_week_start(coalesce(q.completed_at, q.created_at), sp.time_zone)
               < local_iso_week_start(v_cut, sp.time_zone)
        returning q.student_profile_id
      ), assignment as (
        delete from assignment_submission a using student_profile sp
         where sp.id = a.student_profile_id
           and local_iso_week_start(coalesce(a.graded_at, a.submitted_at, a.created_at), sp.time_zone)
               < local_iso_week_start(v_cut, sp.time_zone)
        returning a.student_profile_id
      )
      delete from alert_walk_checkpoint c
       where c.student_profile_id in (select student_profile_id from quiz union select student_profile_id from assignment);
      delete from digest_delivery d
       where to_date(d.iso_year || '-' || d.iso_week || '-1', 'IYYY-IW-ID') < local_iso_week_start(v_cut, 'UTC');
      -- The alerts mailed, as the digests: those of UTC ISO weeks older than the retention, then the
      -- emails left carrying none. Never the last five weeks' (new_alerts() looks up to three weeks back
      -- and mails each alert once ever: a short retention must not send one again).
      delete from alert_delivery d
       where local_iso_week_start(d.created_at, 'UTC')
             < local_iso_week_start(least(v_cut, p_now - interval '5 weeks'), 'UTC');
      delete from alert_message m
       where local_iso_week_start(m.created_at, 'UTC')
             < local_iso_week_start(least(v_cut, p_now - interval '5 weeks'), 'UTC')
         and not exists (select from alert_delivery d where d.message = m.id);
      delete from access_record r where r.at < v_cut;
      delete from access_log l where l.occurred_at < v_cut;
    end if;
    -- Entries about students deleted outside erase_student() (a writer, or the import removing a student
    -- its source no longer lists): the log and the record have no foreign key to cascade.
    delete from access_record r where not exists (select from student_profile sp where sp.id = r.student_profile_id);
    delete from access_log l where not exists (select from student_profile sp where sp.id = l.student_profile_id);
    delete from guardian_token t where t.expires_at < p_now - interval '30 days'
                                    or t.revoked_at < p_now - interval '30 days';
    delete from staff_token t where t.expires_at < p_now - interval '30 days'
                                 or t.revoked_at < p_now - interval '30 days';
    delete from student_token t where t.expires_at < p_now - interval '30 days'
                                   or t.revoked_at < p_now - interval '30 days';
    -- Students who left (student_profile.left_at: the import, or a writer) or have no score left, past the
    -- grace: through the erasure path, a certificate each. A student who left has the whole grace from
    -- leaving, scores or not.
    for v_student, v_left in
      select sp.id, sp.left_at is not null and sp.left_at < p_now - p_left_grace from student_profile sp
       where (sp.left_at < p_now - p_left_grace)
          or (sp.left_at is null and sp.created_at < p_now - p_left_grace
              and not exists (select from quiz_attempt q where q.student_profile_id = sp.id)
              and not exists (select from assignment_submission a where a.student_profile_id = sp.id))
       order by sp.id
    loop
      perform erase_student(v_student,
                            case when v_left then 'retention: left the school''s records more than the grace period ago'
                                 else 'retention: no scores left after the grace period' end,
                            p_erased_by, 'retention', p_now, false);
      v_students := v_students + 1;
    end loop;
    perform refresh_course_weekly_performance();
    select coalesce(jsonb_object_agg(a.key, a.value::bigint - coalesce((v_before ->> a.key)::bigint, 0)), '{}')
      into v_result
      from jsonb_each_text(table_deletions()) a
     where a.value::bigint > coalesce((v_before ->> a.key)::bigint, 0);
    v_result := v_result || jsonb_build_object('students erased', v_students);
    if p_dry_run then
      raise exception using errcode = 'WTDRY', message = v_result::text;
    end if;
  exception when sqlstate 'WTDRY' then
    -- A dry run: everything above undone, its counts kept.
    get stacked diagnostics v_message = message_text;
    v_result := v_message::jsonb;
  end;
  return query select e.key, e.value::bigint from jsonb_each_text(v_result) e order by e.key;
end;
$$;
comment on function purge_family_record(interval, interval, timestamptz, boolean, text) is
  'The retention policy (weekly-trends purge): scores and digest deliveries of ISO weeks older than p_retention (null: kept) with their weekly rows and the kept walk states of their students (alert_walk_checkpoint), alerts mailed (alert_delivery) in such weeks and older than five weeks with the alert emails left carrying none (alert_message), record and access-log entries older than it, entries of students deleted outside erase_student(), guardian, staff and student tokens expired or revoked more than 30 days before p_now, and students who left (left_at) more than p_left_grace before p_now or without scores created before then, through erase_student() (their staff notes with them). Returns rows deleted per table (dry run: what would be, nothing deleted).';
revoke all on function purge_family_record(interval, interval, timestamptz, boolean, text) from public;

create or replace function staff_erase_student(p_student_profile_id bigint, p_reason text, p_confirmation text)
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_staff bigint := app_staff_member_id();
  v_who text;
begin
  if v_staff is null then
    raise exception 'no staff member acts in this transaction' using errcode = 'insufficient_privilege';
  end if;
  -- The confirmation: the student's id typed again.
  if p_confirmation is distinct from p_student_profile_id::text then
    raise exception 'type the student''s id (%) to confirm the erasure', p_student_profile_id
      using errcode = 'invalid_parameter_value';
  end if;
  select 'staff member ' || s.id || coalesce(' (' || s.display_name || ')', '') into v_who
    from staff_member s where s.id = v_staff;
  return erase_student(p_student_profile_id, p_reason, coalesce(v_who, 'staff member ' || v_staff));
end;
$$;
comment on function staff_erase_student(bigint, text, text) is
  'erase_student() for the staff pages: the staff member of the request (app.staff_member_id) runs it, confirmed by the student''s id typed again (p_confirmation); returns the certificate.';
revoke all on function staff_erase_student(bigint, text, text) from public;
grant execute on function staff_erase_student(bigint, text, text) to weekly_trends_staff;
