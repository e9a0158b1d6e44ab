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
    # 415_staff_oidc.sql: staff sign-in by OpenID Connect (new in 0015).
    op.execute("drop function open_staff_session_by_email(text, interval)")
