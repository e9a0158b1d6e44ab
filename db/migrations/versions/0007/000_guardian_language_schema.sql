-- A guardian's language, and the parents' read of the scores behind a week.

-- The language a guardian chose on the parents' page (a locale the app ships,
-- e.g. 'es'); null: none chosen, the browser's Accept-Language decides.
alter table guardian add column preferred_language text;
alter table guardian add constraint guardian_preferred_language_format
  check (preferred_language ~ '^[a-z]{2,3}(_[A-Z]{2})?$');
comment on column guardian.preferred_language is
  'The locale a guardian chose for the parents'' page (set_guardian_language()); null: Accept-Language, else the school default.';
