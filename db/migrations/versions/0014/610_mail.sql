-- Mail preferences and the digest's unsubscribe link, for the app's roles
-- (which cannot read guardian_mail_preference or digest_delivery themselves).

create or replace function guardian_weekly_digest(p_guardian_id bigint)
returns boolean
language sql
stable
as $$
  select coalesce((select p.weekly_digest from guardian_mail_preference p where p.guardian_id = p_guardian_id), true)
$$;
comment on function guardian_weekly_digest(bigint) is
  'Whether the guardian receives the weekly digest: on unless they turned it off (no guardian_mail_preference row: on). The one statement of that default: my_weekly_digest() and the digest job (web/mail/digest.py) ask it.';
revoke all on function guardian_weekly_digest(bigint) from public;

create or replace function unsubscribe_weekly_digest(p_token_hash bytea)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_guardian bigint;
begin
  select d.guardian_id into v_guardian
    from digest_delivery d
   where d.unsubscribe_token_hash = p_token_hash;
  if v_guardian is null then
    return null;
  end if;
  insert into guardian_mail_preference (guardian_id, weekly_digest, updated_at)
  values (v_guardian, false, now())
  on conflict (guardian_id) do update set weekly_digest = false, updated_at = now();
  return v_guardian;
end;
$$;
comment on function unsubscribe_weekly_digest(bytea) is
  'One-click unsubscribe (RFC 8058): turns the weekly digest off for the guardian whose digest carried the token with this sha256. Returns the guardian id, or null for an unknown token. Repeating it changes nothing.';
revoke all on function unsubscribe_weekly_digest(bytea) from public;
grant execute on function unsubscribe_weekly_digest(bytea) to weekly_trends_reader;

create or replace function set_weekly_digest(p_on boolean)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_guardian bigint := app_guardian_id();
begin
  if v_guardian is null then
    raise exception 'set_weekly_digest: no guardian for this request'
      using errcode = 'insufficient_privilege';
  end if;
  if p_on is null then
    raise exception 'set_weekly_digest: on or off, not null' using errcode = 'null_value_not_allowed';
  end if;
  insert into guardian_mail_preference (guardian_id, weekly_digest, updated_at)
  values (v_guardian, p_on, now())
  on conflict (guardian_id) do update set weekly_digest = p_on, updated_at = now();
  return p_on;
end;
$$;
comment on function set_weekly_digest(boolean) is
  'Turns the weekly digest on or off for the guardian of the request (app.guardian_id).';
revoke all on function set_weekly_digest(boolean) from public;
grant execute on function set_weekly_digest(boolean) to weekly_trends_reader;

create or replace function my_weekly_digest()
returns boolean
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  select guardian_weekly_digest(app_guardian_id())
$$;
comment on function my_weekly_digest() is
  'Whether the guardian of the request (app.guardian_id) receives the weekly digest (true unless turned off).';
revoke all on function my_weekly_digest() from public;
grant execute on function my_weekly_digest() to weekly_trends_reader;
