-- The staff student page's "send sign-in link" and "revoke links" buttons.
-- The staff role may not issue or revoke guardian tokens at large
-- (issue_guardian_token() and revoke_guardian_tokens() stay the owner's):
-- only for a guardian of the student the page shows, as the staff member of
-- the request.

create or replace function staff_issue_guardian_token(p_student_id bigint, p_guardian_id bigint, p_ttl interval)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  if app_staff_member_id() is null then
    raise exception 'staff_issue_guardian_token: no staff member for this request'
      using errcode = 'insufficient_privilege';
  end if;
  -- Only for a link that gives access now (guardian_link_state()): a restricted link is as none.
  case guardian_link_state(p_guardian_id, p_student_id)
    when 'unlinked', 'restricted' then
      raise exception 'guardian % is not linked to student %', p_guardian_id, p_student_id
        using errcode = 'no_data_found';
    when 'access_ended' then
      raise exception 'guardian %''s access to student % ended at the rights age (%): the student can share it',
                      p_guardian_id, p_student_id, rights_age()
        using errcode = 'insufficient_privilege';
    else
      null;  -- active, shared, dependant
  end case;
  return issue_guardian_token(p_guardian_id, p_ttl);
end;
$$;
comment on function staff_issue_guardian_token(bigint, bigint, interval) is
  'A fresh sign-in token for a guardian of the student whose link gives access (guardian_link_state()), for the staff member of the request (app.staff_member_id) to mail; returned once, stored hashed.';
revoke all on function staff_issue_guardian_token(bigint, bigint, interval) from public;
grant execute on function staff_issue_guardian_token(bigint, bigint, interval) to weekly_trends_staff;

create or replace function staff_revoke_guardian_tokens(p_student_id bigint, p_guardian_id bigint)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, public
as $$
begin
  if app_staff_member_id() is null then
    raise exception 'staff_revoke_guardian_tokens: no staff member for this request'
      using errcode = 'insufficient_privilege';
  end if;
  if not exists (select from guardian_student
                  where student_profile_id = p_student_id and guardian_id = p_guardian_id) then
    raise exception 'guardian % is not linked to student %', p_guardian_id, p_student_id
      using errcode = 'no_data_found';
  end if;
  return revoke_guardian_tokens(p_guardian_id);
end;
$$;
comment on function staff_revoke_guardian_tokens(bigint, bigint) is
  'Revokes every live token of a guardian of the student, for the staff member of the request. Returns how many.';
revoke all on function staff_revoke_guardian_tokens(bigint, bigint) from public;
grant execute on function staff_revoke_guardian_tokens(bigint, bigint) to weekly_trends_staff;
