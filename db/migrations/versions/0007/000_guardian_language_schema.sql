-- A guardian's language, and the parents' read of the scores behind a week.

-- The language a guardian chose on the parents' page (a locale the app ships,
-- e.g. 'es'); null: none chosen, the browser's Accept-Language decides.
alter table guardian add column preferred_language text;
alter table guardian add constraint guardian_preferred_language_format
  check (preferred_language ~ '^[a-z]{2,3}(_[A-Z]{2})?$');
comment on column guardian.preferred_language is
  'The locale a guardian chose for the parents'' page (set_guardian_language()); null: Accept-Language, else the school default.';

-- The reader lists the scores behind a week (week_scores(), security invoker):
-- it reads the source rows, under row-level security like the aggregates.
grant select on quiz_attempt, assignment_submission to weekly_trends_reader;
do $$
declare
  v_table text;
begin
  foreach v_table in array array['quiz_attempt', 'assignment_submission']
  loop
    execute format('alter table %I enable row level security, force row level security', v_table);
    execute format('create policy owner_all on %I for all to %I using (true) with check (true)', v_table, current_user);
    execute format('create policy not_app_roles_all on %I for all to public'
                   ' using (not app_role_restricted()) with check (not app_role_restricted())', v_table);
    execute format('create policy guardian_reads_own_children on %I for select to weekly_trends_reader'
                   ' using (student_profile_id in (select gs.student_profile_id from guardian_student gs'
                   ' where gs.guardian_id = app_guardian_id()))', v_table);
  end loop;
end
$$;
