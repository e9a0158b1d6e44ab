-- When the class view (course_weekly_performance) was last refreshed, so that check_class_view() can
-- say when it is stale (issue 24). A materialized view keeps no such time itself; pg_class.relispopulated
-- says only whether it was ever filled (a pg_restore that could not refresh it leaves it unpopulated).
create table class_view_refresh (
  only_row boolean primary key default true,
  refreshed_at timestamptz not null,
  constraint class_view_refresh_one_row check (only_row)
);
comment on table class_view_refresh is
  'One row: when refresh_course_weekly_performance() last refreshed the class view course_weekly_performance (check_class_view() reads it).';
comment on column class_view_refresh.only_row is 'Always true: the table holds one row.';
comment on column class_view_refresh.refreshed_at is 'When the class view was last refreshed (or rebuilt by a migration).';
revoke all on class_view_refresh from public;
-- 350_course_weekly_performance.sql rebuilds the view in this revision, after this file.
insert into class_view_refresh (refreshed_at) values (now());
