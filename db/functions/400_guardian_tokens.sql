-- Bearer tokens for guardians: returned once, stored only as a hash.

create or replace function issue_guardian_token(p_guardian_id bigint, p_ttl interval default '90 days')
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_token text;
begin
  if p_ttl is null or p_ttl <= interval '0' then
    raise exception 'token lifetime must be positive, got %', p_ttl
      using errcode = 'invalid_parameter_value';
  end if;
  if not exists (select from guardian where id = p_guardian_id) then
    raise exception 'unknown guardian id %', p_guardian_id
      using errcode = 'no_data_found';
  end if;
  -- 244 random bits from the server's CSPRNG (two version-4 UUIDs); a hash
  -- without salt is enough for a secret this long.
  v_token := 'wt_' || encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'hex');
  insert into guardian_token (guardian_id, token_hash, expires_at)
  values (p_guardian_id, sha256(convert_to(v_token, 'UTF8')), now() + p_ttl);
  return v_token;
end;
$$;
comment on function issue_guardian_token(bigint, interval) is
  'Issues a bearer token for a guardian, valid for p_ttl. The token is returned once; only its sha256 is stored.';
revoke all on function issue_guardian_token(bigint, interval) from public;
