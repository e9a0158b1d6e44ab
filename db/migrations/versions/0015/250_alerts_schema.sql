-- Alerts each family chooses (issue 26 item 3): per guardian and child settings, and the delivery log
-- of `weekly-trends alerts` (web/mail/alerts.py; functions in db/functions/630_alerts.sql).

create table guardian_alert_setting (
  guardian_id bigint not null,
  student_profile_id bigint not null,
  missing_work boolean not null default true,
  sustained_decline boolean not null default true,
  course_average_below smallint,
  score_below smallint,
  updated_at timestamptz not null default now(),
  primary key (guardian_id, student_profile_id),
  -- a setting belongs to a link: removing the link removes it
  constraint guardian_alert_setting_link foreign key (guardian_id, student_profile_id)
    references guardian_student (guardian_id, student_profile_id) on delete cascade,
  constraint guardian_alert_setting_course_average_below check (course_average_below between 1 and 100),
  constraint guardian_alert_setting_score_below check (score_below between 1 and 100)
);
comment on table guardian_alert_setting is
  'A guardian''s alert choices for one linked child. No row: the defaults (missing work and sustained decline on, the two thresholds off), stated once by guardian_alert_settings(). A threshold (1 to 100) turns its alert on; null: off.';
comment on column guardian_alert_setting.course_average_below is
  'Alert when one of the child''s courses has a complete week whose average is under this (1 to 100); null: off.';
comment on column guardian_alert_setting.score_below is
  'Alert when a single counted score of the child is under this (1 to 100); null: off.';

create table alert_message (
  id bigint generated always as identity primary key,
  guardian_id bigint not null references guardian (id) on delete cascade,
  outcome text not null default 'pending',
  attempts integer not null default 0,
  message_id text,
  last_error text,
  unsubscribe_token_hash bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  sent_at timestamptz,
  constraint alert_message_outcome
    check (outcome in ('pending', 'sending', 'sent', 'failed', 'ambiguous', 'gave_up')),
  constraint alert_message_attempts check (attempts >= 0),
  constraint alert_message_message_id check (outcome = 'pending' or message_id is not null),
  constraint alert_message_sent_at check ((outcome = 'sent') = (sent_at is not null)),
  constraint alert_message_error_length check (length(last_error) <= 1000)
);
-- At most one message a guardian's alerts wait in (claimed, or refused and to be tried again).
create unique index alert_message_one_open on alert_message (guardian_id) where outcome in ('pending', 'failed');
create unique index alert_message_unsubscribe on alert_message (unsubscribe_token_hash)
  where unsubscribe_token_hash is not null;
comment on table alert_message is
  'One row per alert email (weekly-trends alerts): its delivery, as digest_delivery''s (pending, sending, sent, failed, ambiguous, gave_up), and the sha256 of the one-click unsubscribe token it carries.';

create table alert_delivery (
  guardian_id bigint not null references guardian (id) on delete cascade,
  student_profile_id bigint not null references student_profile (id) on delete cascade,
  kind text not null,
  subject text not null,
  message bigint not null references alert_message (id) on delete cascade,
  detail jsonb not null default '{}',
  created_at timestamptz not null default now(),
  primary key (guardian_id, student_profile_id, kind, subject),
  constraint alert_delivery_kind
    check (kind in ('missing_work', 'course_average_below', 'score_below', 'sustained_decline')),
  constraint alert_delivery_subject check (subject ~ '^[0-9a-z_:-]{1,100}$')
);
create index alert_delivery_message on alert_delivery (message);
comment on table alert_delivery is
  'The alerts log: one row per guardian, child, kind and the thing alerted on (subject: the course_work id; quiz:<id> or assignment:<id>; <course id>:<Monday>; <Monday>:declining or back_on_track), in the message that carries it. Each alert is mailed at most once ever.';

-- Nothing here for the app's roles: the parents read and write their settings through
-- my_alert_settings() / set_my_alert_settings() and unsubscribe through unsubscribe_alerts().
revoke all on guardian_alert_setting, alert_message, alert_delivery from public;
