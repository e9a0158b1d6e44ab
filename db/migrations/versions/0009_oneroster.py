"""OneRoster CSV import: the importer's mapping tables and its validation functions.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from db.migrations.sqlfiles import run_frozen_sql, run_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 000_oneroster_schema.sql, then 600_oneroster.sql.
    run_frozen_sql(revision)


def downgrade() -> None:
    run_sql(
        """
        drop table oneroster_result, oneroster_line_item, oneroster_category, oneroster_class,
          oneroster_guardian, oneroster_student;
        drop function oneroster_is_number(text), oneroster_is_datetime(text), oneroster_instant(text, text);
        """
    )
