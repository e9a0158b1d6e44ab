-- A guardian saves the language of the parents' page.

create or replace function set_guardian_language(p_language text)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  -- Only the request's own guardian (app.guardian_id, set after the token is checked).
  if app_guardian_id() is null then
    raise exception 'set_guardian_language: no guardian in this transaction (app.guardian_id)'
      using errcode = '42501';
  end if;
  update guardian set preferred_language = p_language where id = app_guardian_id();
end
$$;
comment on function set_guardian_language(text) is
  'Saves the language the guardian of this request (app.guardian_id) chose for the parents'' page; null clears it. The guardian_preferred_language_format check refuses a malformed tag.';
revoke all on function set_guardian_language(text) from public;
grant execute on function set_guardian_language(text) to weekly_trends_reader;
