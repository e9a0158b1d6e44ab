-- Signing out ends the session server-side (issue 22, finding 10): the session cookie holds only
-- its token's row id, re-checked on every request, so revoking that token makes a replayed copy of
-- the cookie worthless. Only the token the request authenticated with, and only for its own owner
-- (the transaction-local setting authenticate() made).

create or replace function sign_out_guardian_token(p_token_id bigint)
returns boolean
language sql
volatile
security definer
set search_path = pg_catalog, public
as $$
  with ended as (
    update guardian_token
       set revoked_at = now()
     where id = p_token_id
       and guardian_id = nullif(current_setting('app.guardian_id', true), '')::bigint
       and revoked_at is null
    returning 1)
  select exists (select from ended)
$$;
comment on function sign_out_guardian_token(bigint) is
  'Sign-out: revokes the guardian token of the session (its row id), only for the guardian the transaction acts for (app.guardian_id). A replayed session cookie then opens nothing. True when a live token was revoked.';
revoke all on function sign_out_guardian_token(bigint) from public;
grant execute on function sign_out_guardian_token(bigint) to weekly_trends_reader;

create or replace function sign_out_staff_token(p_token_id bigint)
returns boolean
language sql
volatile
security definer
set search_path = pg_catalog, public
as $$
  with ended as (
    update staff_token
       set revoked_at = now()
     where id = p_token_id
       and staff_member_id = nullif(current_setting('app.staff_member_id', true), '')::bigint
       and revoked_at is null
    returning 1)
  select exists (select from ended)
$$;
comment on function sign_out_staff_token(bigint) is
  'Sign-out: revokes the staff token of the session (its row id), only for the staff member the transaction acts for (app.staff_member_id). True when a live token was revoked.';
revoke all on function sign_out_staff_token(bigint) from public;
grant execute on function sign_out_staff_token(bigint) to weekly_trends_staff;
