-- The staff page's "send sign-in link" claims, commits, sends, then records (issue 22, finding 11): the
-- token is issued and committed before the SMTP conversation, with no connection or transaction held
-- across it. When the mail server refuses the message, the link went nowhere: this revokes that one
-- token (not the guardian's others), for the staff member of the request.

create or replace function staff_revoke_unsent_guardian_token(p_student_id bigint, p_guardian_id bigint,
                                                              p_token_hash bytea)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
declare
  v_revoked integer;
begin
  if app_staff_member_id() is null then
    raise exception 'staff_revoke_unsent_guardian_token: no staff member for this request'
      using errcode = 'insufficient_privilege';
  end if;
  if not exists (select from guardian_student
                  where student_profile_id = p_student_id and guardian_id = p_guardian_id) then
    raise exception 'guardian % is not linked to student %', p_guardian_id, p_student_id
      using errcode = 'no_data_found';
  end if;
  update guardian_token
     set revoked_at = now()
   where guardian_id = p_guardian_id
     and token_hash = p_token_hash
     and revoked_at is null;
  get diagnostics v_revoked = row_count;
  return v_revoked > 0;
end;
$$;
comment on function staff_revoke_unsent_guardian_token(bigint, bigint, bytea) is
  'Revokes the one token (by sha256) that staff_issue_guardian_token() issued for a sign-in link the mail server then refused, for the staff member of the request (app.staff_member_id). True when it was live.';
revoke all on function staff_revoke_unsent_guardian_token(bigint, bigint, bytea) from public;
grant execute on function staff_revoke_unsent_guardian_token(bigint, bigint, bytea) to weekly_trends_staff;
