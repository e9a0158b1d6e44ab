-- Tokens for staff members: returned once, stored only as a hash. A distinct
-- prefix (wts_) so that neither kind can pass for the other, even by mistake.

create or replace function mint_token(p_prefix text, p_ttl interval,
                                      out token text, out token_hash bytea, out expires_at timestamptz)
language plpgsql
volatile
set search_path = pg_catalog, public
as $$
begin
  if p_ttl is null or p_ttl <= interval '0' then
    raise exception 'token lifetime must be positive, got %', p_ttl
      using errcode = 'invalid_parameter_value';
  end if;
  -- 244 random bits from the server's CSPRNG (two version-4 UUIDs); a hash
  -- without salt is enough for a secret this long.
  token := p_prefix || encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'hex');
  token_hash := sha256(convert_to(token, 'UTF8'));
  expires_at := now() + p_ttl;
end;
$$;
comment on function mint_token(text, interval) is
  'A new random token with the given prefix, its sha256 and its expiry; raises unless p_ttl is positive. Stores nothing.';
revoke all on function mint_token(text, interval) from public;

create or replace function issue_staff_token(p_staff_member_id bigint, p_ttl interval default '30 days')
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_new record;
begin
  v_new := mint_token('wts_', p_ttl);
  if not exists (select from staff_member where id = p_staff_member_id) then
    raise exception 'unknown staff member id %', p_staff_member_id
      using errcode = 'no_data_found';
  end if;
  insert into staff_token (staff_member_id, token_hash, expires_at)
  values (p_staff_member_id, v_new.token_hash, v_new.expires_at);
  return v_new.token;
end;
$$;
comment on function issue_staff_token(bigint, interval) is
  'Issues a token for a staff member, valid for p_ttl. The token is returned once; only its sha256 is stored.';
revoke all on function issue_staff_token(bigint, interval) from public;
