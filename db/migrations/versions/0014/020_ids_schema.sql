-- Ids that writers' explicit ids cannot collide with (issue 22, finding 5).
--
-- The writer contract lets a program insert student_profile, guardian, course,
-- quiz_attempt and assignment_submission rows with ids of its own choosing;
-- an identity column's sequence knows nothing of them, so the next id it gave
-- (the OneRoster import's, or any writer's that leaves id to its default)
-- could already be taken. advance_id_sequence() moves a table's sequence past
-- an id written explicitly, never backwards. It runs:
--  * from a statement trigger on student_profile, guardian and course (few,
--    small statements; student_profile already keeps a transition table of
--    its inserts for the time-zone check), so every later default id is free;
--  * from the import, for all five tables, before it takes any id (one index
--    lookup of max(id) per table), so the two score tables' hot write path
--    carries no trigger for it.

create or replace function advance_id_sequence(p_table regclass, p_id bigint)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_sequence regclass;
  v_key bigint;
begin
  if p_table not in ('public.student_profile'::regclass, 'public.guardian'::regclass, 'public.course'::regclass,
                     'public.quiz_attempt'::regclass, 'public.assignment_submission'::regclass) then
    raise exception 'advance_id_sequence() keeps the id sequences of the writers'' tables only, not of %', p_table
      using errcode = 'invalid_parameter_value';
  end if;
  v_sequence := pg_get_serial_sequence(p_table::text, 'id')::regclass;
  -- The usual case costs one read of the sequence: the id is one it gave already (or below).
  -- pg_sequence_last_value() is null before the first nextval(), which then gives 1.
  if p_id is null or p_id < 1 or p_id <= coalesce(pg_sequence_last_value(v_sequence), 0) then
    return;
  end if;
  -- Two writers past the sequence at once must not move it backwards (one setting 1000, the other
  -- then 500): read and set under a lock held only for this statement (a session lock, released
  -- here: a transaction lock would make such writers wait on each other until commit). greatest()
  -- reads the sequence again in the same statement, so an id given meanwhile is not given twice.
  v_key := hashtextextended('weekly-trends id sequence ' || v_sequence::text, 0);
  perform pg_advisory_lock(v_key);
  begin
    perform setval(v_sequence, greatest(p_id, pg_sequence_last_value(v_sequence)));
  exception when others or query_canceled then
    perform pg_advisory_unlock(v_key);
    raise;
  end;
  perform pg_advisory_unlock(v_key);
end;
$$;
comment on function advance_id_sequence(regclass, bigint) is
  'Moves the id sequence of a writers'' table (student_profile, guardian, course, quiz_attempt, assignment_submission) past p_id when p_id is at or above its next value, never backwards; a writer''s explicit id then never collides with an id the database gives later.';
revoke all on function advance_id_sequence(regclass, bigint) from public;

create or replace function tg_id__advance_sequence()
returns trigger
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_max bigint;
begin
  if tg_relid not in ('public.student_profile'::regclass, 'public.guardian'::regclass, 'public.course'::regclass)
     or tg_level <> 'STATEMENT' or tg_when <> 'AFTER' or tg_op <> 'INSERT' then
    raise exception '%() runs only as an AFTER INSERT statement trigger of student_profile, guardian or course, not on %',
      'tg_id__advance_sequence', tg_relid::regclass
      using errcode = 'trigger_protocol_violated';
  end if;
  select max(n.id) into v_max from new_rows n;
  perform advance_id_sequence(tg_relid, v_max);
  return null;
end;
$$;
comment on function tg_id__advance_sequence() is
  'After an insert into student_profile, guardian or course: the id sequence moves past the highest id written (explicit ids a writer chose), so a later default id never collides.';
revoke all on function tg_id__advance_sequence() from public;

create trigger _900_advance_id_sequence
  after insert on student_profile referencing new table as new_rows
  for each statement execute function tg_id__advance_sequence();
comment on trigger _900_advance_id_sequence on student_profile is
  'Keeps the id sequence ahead of explicit ids (tg_id__advance_sequence()).';
create trigger _900_advance_id_sequence
  after insert on guardian referencing new table as new_rows
  for each statement execute function tg_id__advance_sequence();
comment on trigger _900_advance_id_sequence on guardian is
  'Keeps the id sequence ahead of explicit ids (tg_id__advance_sequence()).';
create trigger _900_advance_id_sequence
  after insert on course referencing new table as new_rows
  for each statement execute function tg_id__advance_sequence();
comment on trigger _900_advance_id_sequence on course is
  'Keeps the id sequence ahead of explicit ids (tg_id__advance_sequence()).';

-- Ids written before this revision: every sequence past its table's highest id once.
select advance_id_sequence('student_profile', (select max(id) from student_profile));
select advance_id_sequence('guardian', (select max(id) from guardian));
select advance_id_sequence('course', (select max(id) from course));
select advance_id_sequence('quiz_attempt', (select max(id) from quiz_attempt));
select advance_id_sequence('assignment_submission', (select max(id) from assignment_submission));
