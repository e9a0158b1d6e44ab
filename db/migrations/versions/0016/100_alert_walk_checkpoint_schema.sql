-- Issue 27 (the teacher's list at 50 ms): the sustained-decline walk's state, kept per student at a week
-- three weeks back, so that the list walks a student's last few weeks instead of their whole history.
--
-- weekly_trend_alerts() (600_weekly_trend_alerts.sql) can now start from such a state and hands back the
-- state after its last week; its return type grows by that column, so it and alert_scored_weeks() (which
-- gains a lower bound) are dropped here and created again by 600_weekly_trend_alerts.sql.

create type alert_walk_state as (
  next_monday date,          -- the walk resumes at this Monday: every week before it is in the state
  drop_points numeric,       -- the rule's N, M and K the state was walked with
  min_scores integer,
  baseline_weeks integer,
  state text,                -- normal | declining | recovering
  base numeric,              -- the baseline of the current decline
  pending_base numeric,      -- normal: the last week was low against this baseline
  prev_low boolean,          -- recovering: the last week was low against base
  good integer,              -- recovering: consecutive good weeks
  ring numeric[],            -- the last baseline_weeks averages of weeks with scores (a ring)
  seen integer,              -- weeks with scores so far
  window_sum numeric         -- the sum of the ring
);
comment on type alert_walk_state is
  'The state of the sustained-decline walk (weekly_trend_alerts()) before the Monday next_monday, for the thresholds it was walked with: enough to go on walking from that Monday with the same result as a walk from the first week.';

drop function weekly_trend_alerts(bigint, date, date, numeric, integer, integer);
drop function alert_scored_weeks(bigint, date);

create table alert_walk_checkpoint (
  -- No foreign key: the teacher's list writes these rows, and a student deleted meanwhile must not make
  -- it fail; tg_student_profile__remove_weeks() removes a deleted student's row.
  student_profile_id bigint primary key,
  -- Null until first computed: the row is also the lock the list takes to compute it.
  state alert_walk_state,
  -- The snapshot the state was computed in: a change to the student's older weeks by a transaction it
  -- does not see (alert_history_change) makes the row stale.
  computed_in pg_snapshot,
  computed_at timestamptz not null default now(),
  constraint alert_walk_checkpoint_state_with_snapshot check ((state is null) = (computed_in is null))
);
comment on table alert_walk_checkpoint is
  'Derived, not a source: the sustained-decline walk''s state of each student at a Monday at least three weeks back (alert_walk_state), written by the teacher''s list (staff_attention()) so that it walks only the weeks after it. Stale once alert_history_change holds a change by a transaction not visible in computed_in.';
revoke all on alert_walk_checkpoint from public;

create table alert_history_change (
  -- Written by the score triggers (apply_weekly_deltas() and the single-row path) when a week more than
  -- two weeks back changes: append-only, one row per student and transaction, so writers never wait on
  -- each other for it (no row is updated).
  student_profile_id bigint not null,
  xact_id xid8 not null default pg_current_xact_id(),
  primary key (student_profile_id, xact_id)
);
comment on table alert_history_change is
  'Derived bookkeeping, not a source: a transaction (xact_id) changed a week of the student more than two weeks back, so an alert_walk_checkpoint computed in a snapshot that does not see that transaction is stale. The teacher''s list deletes the rows its new checkpoints include.';
revoke all on alert_history_change from public;
