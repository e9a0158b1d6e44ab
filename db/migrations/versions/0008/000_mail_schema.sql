-- Mail: the guardians' mail preferences and the weekly digest's delivery log.

create table guardian_mail_preference (
  guardian_id bigint primary key references guardian on delete cascade,
  weekly_digest boolean not null default true,
  updated_at timestamptz not null default now()
);
comment on table guardian_mail_preference is
  'A guardian''s mail choices. No row: the defaults (weekly digest on). Written by unsubscribe_weekly_digest() and set_weekly_digest().';

create table digest_delivery (
  guardian_id bigint not null references guardian on delete cascade,
  iso_year integer not null,
  iso_week integer not null,
  -- pending: to send; sending: claimed by a run, the SMTP transaction under
  -- way (a row left so by a crashed run becomes ambiguous); sent; failed
  -- (retried by the next run while attempts < the limit); ambiguous: a run
  -- died between claiming and recording, the server may have accepted it,
  -- not resent (docs/mail.md); skipped: the guardian unsubscribed before it went.
  outcome text not null default 'pending',
  attempts integer not null default 0,
  message_id text,
  last_error text,
  -- sha256 of the one-click unsubscribe token the message carries
  unsubscribe_token_hash bytea unique,
  -- sha256 of the sign-in token the message carries (revoked when it was not sent)
  sign_in_token_hash bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  sent_at timestamptz,
  primary key (guardian_id, iso_year, iso_week),
  constraint digest_delivery_outcome check (outcome in ('pending', 'sending', 'sent', 'failed', 'ambiguous', 'skipped')),
  constraint digest_delivery_iso_week check (iso_week between 1 and 53),
  constraint digest_delivery_attempts check (attempts >= 0),
  constraint digest_delivery_sent_at check ((outcome = 'sent') = (sent_at is not null)),
  constraint digest_delivery_message_id check (outcome in ('pending', 'skipped') or message_id is not null),
  constraint digest_delivery_error_length check (length(last_error) <= 1000)
);
create index digest_delivery_week_outcome_idx on digest_delivery (iso_year, iso_week, outcome);
comment on table digest_delivery is
  'One row per guardian and ISO week: the weekly digest''s delivery, at most one message a week (weekly-trends digest).';

-- Only the owner (the CLI) reads and writes these; the app's roles go through
-- the definer functions of db/functions/610_mail.sql.
revoke all on guardian_mail_preference, digest_delivery from public;
