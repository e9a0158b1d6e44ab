-- Staff sign-in with the school's accounts (OpenID Connect, issue 27): once the app has verified the
-- provider's ID token and its email, the staff member with that email (whatever its case) gets a staff
-- token like a printed one, whose row id the session keeps; the token itself is never returned, so the
-- session is the only way to use it. Removing the staff member or revoking the token ends the session.

create or replace function open_staff_session_by_email(p_email text, p_ttl interval default '12 hours')
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_staff_ids bigint[];
  v_new record;
  v_token_id bigint;
begin
  if p_email is null or p_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' then
    raise exception 'not an email address: %', coalesce(p_email, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  select array_agg(id) into v_staff_ids from staff_member where lower(email) = lower(p_email);
  -- None, or two whose emails differ only in case (staff_member_email_key is case-sensitive): no one.
  if coalesce(cardinality(v_staff_ids), 0) <> 1 then
    return null;
  end if;
  v_new := mint_token('wts_', p_ttl);
  insert into staff_token (staff_member_id, token_hash, expires_at)
  values (v_staff_ids[1], v_new.token_hash, v_new.expires_at)
  returning id into v_token_id;
  return v_token_id;
end;
$$;
comment on function open_staff_session_by_email(text, interval) is
  'OpenID Connect sign-in: a new staff token, valid for p_ttl, for the one staff member whose email is p_email in any case; returns the token''s row id (for the session), never the token; null when no staff member (or more than one) has that email. The caller has verified the email.';
revoke all on function open_staff_session_by_email(text, interval) from public;
grant execute on function open_staff_session_by_email(text, interval) to weekly_trends_staff;
