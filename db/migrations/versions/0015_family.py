"""The family's rights over the record, missing work and chosen alerts, staff sign-in and the teacher's list
(issues 24-27). Each change ships as a file of its own under versions/0015/, run in name order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op  # noqa: F401 - used by the downgrade steps

from db.migrations.sqlfiles import run_frozen_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every file under versions/0015/, in name order (each says what it changes).
    run_frozen_sql(revision)


def downgrade() -> None:
    # Each change undone, in the reverse order of upgrade().
    # 665_erasure_and_retention.sql, 655_family_record.sql (new in 0015; issue 25 items 4-7).
    op.execute("drop function staff_erase_student(bigint, text, text)")
    op.execute("drop function purge_family_record(interval, interval, timestamptz, boolean, text)")
    op.execute("drop function erase_student(bigint, text, text, text, timestamptz, boolean)")
    op.execute("drop table access_record")  # its triggers with it
    op.execute("drop function tg_access_record__append_only()")
    op.execute("drop function table_deletions()")
    op.execute("drop function erased_source_hash(text, text)")
    op.execute("drop function operator_export_json(bigint, text, integer, numeric, integer, timestamptz)")
    op.execute("drop function family_export_json(bigint, text, integer, numeric, integer, timestamptz)")
    op.execute("drop function student_export_json(bigint, bigint, integer, numeric, integer)")
    op.execute("drop function family_access_record_json(bigint, text, timestamptz)")
    op.execute("drop function student_access_record(bigint, bigint)")
    op.execute("drop function record_guardian_sign_in(bytea, timestamptz)")
    op.execute("drop function append_access_record(bigint, text, text, text, text, jsonb, bigint, timestamptz)")
    op.execute("drop function family_may_see(bigint, bigint, timestamptz)")
    # 510_access_log.sql: the copy 0004 froze (only prune_access_log() deletes).
    run_frozen_sql("0004", "510_access_log.sql")
    # 150_family_record_schema.sql
    op.execute("drop table erased_source_record")
    op.execute("drop table erasure_certificate")
