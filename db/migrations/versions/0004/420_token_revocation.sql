-- Guardian tokens under row-level security: found by hash (or by the row id a
-- session cookie holds) before the request knows its guardian, and revoked.

create or replace function find_guardian_token(p_token_hash bytea, p_token_id bigint default null)
returns table (token_id bigint, guardian_id bigint)
language sql
stable
security definer
set search_path = pg_catalog, public
as $$
  select t.id, t.guardian_id
    from guardian_token t
   where (t.token_hash = p_token_hash or t.id = p_token_id)
     and t.revoked_at is null
     and t.expires_at > now()
$$;
comment on function find_guardian_token(bytea, bigint) is
  'The unexpired, unrevoked guardian token with this sha256 (or this row id, for a session), and its guardian. The app''s role cannot read other guardians'' tokens, so it authenticates through this.';
revoke all on function find_guardian_token(bytea, bigint) from public;
grant execute on function find_guardian_token(bytea, bigint) to weekly_trends_reader;

create or replace function revoke_guardian_tokens(p_guardian_id bigint)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_revoked integer;
begin
  if not exists (select from guardian where id = p_guardian_id) then
    raise exception 'unknown guardian id %', p_guardian_id
      using errcode = 'no_data_found';
  end if;
  update guardian_token
     set revoked_at = now()
   where guardian_id = p_guardian_id
     and revoked_at is null
     and expires_at > now();
  get diagnostics v_revoked = row_count;
  return v_revoked;
end;
$$;
comment on function revoke_guardian_tokens(bigint) is
  'Revokes every live token of a guardian (and so every session opened with one, from the next request on). Returns how many were revoked.';
revoke all on function revoke_guardian_tokens(bigint) from public;
