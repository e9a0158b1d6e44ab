"""Hardening: row-level security on per-student data, token revocation, the append-only access log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

PROTECTED_TABLES = (
    "student_profile", "guardian_student", "guardian_token",
    "student_weekly_performance", "student_course_weekly_performance",
)


def upgrade() -> None:
    # 000_hardening_schema.sql, then 420_token_revocation.sql and 510_access_log.sql.
    run_frozen_sql(revision)


def downgrade() -> None:
    policies = "\n".join(
        f"drop policy if exists {policy} on {table};"
        for table in PROTECTED_TABLES
        for policy in ("owner_all", "not_app_roles_all", "guardian_reads_own_links", "guardian_reads_own_tokens",
                       "guardian_reads_own_children", "staff_reads_all")
    )
    disable = "\n".join(
        f"alter table {table} no force row level security, disable row level security;" for table in PROTECTED_TABLES
    )
    run_sql(
        f"""
        drop table access_log;
        {policies}
        {disable}
        drop function find_guardian_token(bytea, bigint), revoke_guardian_tokens(bigint),
          log_access(bigint, text), prune_access_log(interval), tg_access_log__append_only(),
          app_role_restricted(), app_guardian_id(), app_staff_member_id();
        """
    )
