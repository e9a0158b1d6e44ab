-- The parents' role reads nothing it does not need (issue 22, finding 7).
--
-- As weekly_trends_reader, with any app.guardian_id, `select * from guardian`
-- returned every family's email, and the class view was readable directly,
-- averages over fewer students than the API shows included. What the app's
-- reader connections run (web/: students.py, i18n.py, auth.py, pages.py,
-- week_scores.py, unsubscribe.py) needs, besides its functions:
--   guardian            its own row's id and preferred_language (i18n.py)
--   guardian_student    its own links        (my students; weekly_trend_json())
--   student_profile     its own children     (the same)
--   student_weekly_performance  its children's weeks (student_weekly_stats())
--   course              course names (no personal data)
-- Everything else it reads through security definer functions that check the
-- link: tokens (find_guardian_token()), the access log (log_access()), a
-- child's scores (week_scores(), linked_course_weeks()) and now the class view
-- (linked_class_weeks(), 430_weekly_trend_json.sql, which also applies the
-- minimum class size). tests/test_row_level_security.py checks the catalogue:
-- whatever the reader may select is a non-personal table or has forced
-- row-level security with a policy for the reader.

-- guardian: row-level security as on the other per-family tables (revision 0004).
alter table guardian enable row level security, force row level security;
do $$
begin
  execute format('create policy owner_all on guardian for all to %I using (true) with check (true)', current_user);
end
$$;
create policy not_app_roles_all on guardian for all to public
  using (not app_role_restricted()) with check (not app_role_restricted());
create policy guardian_reads_self on guardian for select to weekly_trends_reader
  using (id = app_guardian_id());
-- Staff: the staff pages list a student's guardians (revision 0002's grant).
create policy staff_reads_all on guardian for select to weekly_trends_staff using (true);
comment on policy owner_all on guardian is 'The owner (migrations, the import, the digest) reads and writes every guardian.';
comment on policy not_app_roles_all on guardian is 'Writers and operators: governed by their privileges, as before.';
comment on policy guardian_reads_self on guardian is 'The parents'' role sees only the guardian of the request (app.guardian_id).';
comment on policy staff_reads_all on guardian is 'The staff pages list the guardians of any student.';

-- Of its own row the reader needs its language only: no email, no name.
revoke select on guardian from weekly_trends_reader;
grant select (id, preferred_language) on guardian to weekly_trends_reader;

-- Tokens and the access log: only through their security definer functions.
revoke select on guardian_token, access_log from weekly_trends_reader;

-- The class view: only through linked_class_weeks() (350_course_weekly_performance.sql, rebuilt by this
-- revision, no longer grants it; this covers a view that is not rebuilt).
revoke select on course_weekly_performance from weekly_trends_reader;
