-- Instants a week can be computed for, in every language that reads them:
-- PostgreSQL accepts years up to 294276 and 'infinity', Python's dates stop
-- at 9999, and no school records a quiz in 1850 or 2300. Each constraint
-- names its column, so a refused row says which value was wrong. NOT VALID
-- then VALIDATE: the scan of existing rows does not block writers.
alter table quiz_attempt
  add constraint quiz_attempt_completed_at_in_range
    check (completed_at >= '1900-01-01 00:00+00' and completed_at < '2200-01-01 00:00+00') not valid;
alter table assignment_submission
  add constraint assignment_submission_submitted_at_in_range
    check (submitted_at >= '1900-01-01 00:00+00' and submitted_at < '2200-01-01 00:00+00') not valid,
  add constraint assignment_submission_graded_at_in_range
    check (graded_at >= '1900-01-01 00:00+00' and graded_at < '2200-01-01 00:00+00') not valid;
alter table quiz_attempt validate constraint quiz_attempt_completed_at_in_range;
alter table assignment_submission validate constraint assignment_submission_submitted_at_in_range;
alter table assignment_submission validate constraint assignment_submission_graded_at_in_range;
