"""Staff: staff members, their tokens, and the role the staff pages run as.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 000_staff_schema.sql, then 410_staff_tokens.sql as it was at this revision.
    run_frozen_sql(revision)


def downgrade() -> None:
    run_sql(
        """
        drop function if exists issue_staff_token(bigint, interval), mint_token(text, interval);
        drop table if exists staff_token, staff_member cascade;

        -- What 0001 created and this revision granted: revoke, so that 0001's
        -- objects carry no trace of the staff role.
        revoke all on function refresh_weekly_performance(bigint, date, boolean) from weekly_trends_staff;
        revoke all on student_profile, guardian, guardian_student, student_weekly_performance from weekly_trends_staff;
        revoke all on schema public from weekly_trends_staff;

        -- The role is cluster-wide: drop it only when no other database of
        -- the cluster still grants it anything (pg_shdepend spans databases).
        do $$
        begin
          if exists (select from pg_roles where rolname = 'weekly_trends_staff')
             and not exists (select from pg_shdepend d
                              where d.refobjid = 'weekly_trends_staff'::regrole
                                and d.refclassid = 'pg_authid'::regclass) then
            drop role weekly_trends_staff;
          end if;
        end
        $$;
        """
    )
