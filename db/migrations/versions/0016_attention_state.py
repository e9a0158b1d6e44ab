"""The teacher's list without each student's whole history (issue 27): the sustained-decline walk's state
kept per student three weeks back (alert_walk_checkpoint), and the score triggers noting changes to older
weeks (alert_history_change); and the family's record completed (issue 25's gaps): the export holds the
alerts mailed about the student and the history of restrictions, the purge ages out alerts and student
tokens. Each change ships as a file of its own under versions/0016/, run in name order.

No maintenance window: the new triggers only add rows to a new table, and the functions keep their callers'
signatures (weekly_trend_alerts() gains an optional argument and a column).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op

from db.migrations.sqlfiles import run_frozen_sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every file under versions/0016/, in name order (each says what it changes).
    run_frozen_sql(revision)


def downgrade() -> None:
    # Each change undone, in the reverse order of upgrade().
    # 665_erasure_and_retention.sql and 655_family_record.sql (the purge ages out alerts and student
    # tokens; the export holds the alerts mailed and the history of restrictions): 0015's copies.
    run_frozen_sql("0015", "665_erasure_and_retention.sql")
    run_frozen_sql("0015", "655_family_record.sql")
    # 600_weekly_trend_alerts.sql, 390_staff_attention.sql, 220 and 210: the copies before them (0015's
    # staff_attention() counts missing work itself).
    op.execute(
        """
        drop function staff_missing_counts(bigint[], bigint[], date, date);
        drop function staff_course_weeks(bigint[], date, date);
        drop function recent_declines(bigint[], date, numeric, integer);
        drop function alert_walk_state_usable(alert_walk_state, pg_snapshot, bigint, date, numeric, integer);
        drop function weekly_trend_alerts(bigint, date, date, numeric, integer, integer, alert_walk_state);
        drop function alert_scored_weeks(bigint, date, date);
        """
    )
    run_frozen_sql("0014", "600_weekly_trend_alerts.sql")
    run_frozen_sql("0015", "390_staff_attention.sql")
    run_frozen_sql("0006", "220_student_profile_triggers.sql")
    run_frozen_sql("0014", "210_source_triggers.sql")
    op.execute(
        """
        drop function note_alert_history_change(bigint[]);
        drop function alert_history_horizon();
        """
    )
    # 100_alert_walk_checkpoint_schema.sql
    op.execute("drop table alert_history_change, alert_walk_checkpoint; drop type alert_walk_state")
