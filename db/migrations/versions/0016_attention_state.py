"""Open revision after 0015 (issues 26 and 27 follow-ups). Each change ships as a file of its own under
versions/0016/, run in name order.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op  # noqa: F401 - used by the downgrade steps

from db.migrations.sqlfiles import run_frozen_sql, run_sql  # noqa: F401

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every file under versions/0016/, in name order (each says what it changes).
    run_frozen_sql(revision)


def downgrade() -> None:
    # Each change undone, in the reverse order of upgrade().
    pass
