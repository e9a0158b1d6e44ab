-- Tokens for staff members: returned once, stored only as a hash. A distinct
-- prefix (wts_) so that neither kind can pass for the other, even by mistake.

create or replace function issue_staff_token(p_staff_member_id bigint, p_ttl interval default '30 days')
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
  if not exists (select from staff_member where id = p_staff_member_id) then
    raise exception 'unknown staff member id %', p_staff_member_id
      using errcode = 'no_data_found';
  end if;
  -- 244 random bits from the server's CSPRNG, as for guardian tokens.
  v_token := 'wts_' || encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'hex');
  insert into staff_token (staff_member_id, token_hash, expires_at)
  values (p_staff_member_id, sha256(convert_to(v_token, 'UTF8')), now() + p_ttl);
  return v_token;
end;
$$;
comment on function issue_staff_token(bigint, interval) is
  'Issues a token for a staff member, valid for p_ttl. The token is returned once; only its sha256 is stored.';
revoke all on function issue_staff_token(bigint, interval) from public;
