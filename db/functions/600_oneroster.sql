-- Checks the OneRoster importer (web/oneroster/) runs over its staging
-- tables: plain SQL over text, so a bad value is a row to report, never an
-- exception that aborts the import. Not STRICT, so the planner inlines them
-- (a STRICT SQL function whose body is not strict in its argument runs as a
-- separate call per row); a null argument gives null all the same.
-- Executable by PUBLIC (the default): they read nothing.

create or replace function oneroster_is_number(p_text text)
returns boolean
language sql
immutable
called on null input
parallel safe
as $$
  -- Decimal notation only: no exponent, NaN or Infinity; at most 15 digits before the point.
  select p_text ~ '^[+-]?([0-9]{1,15}([.][0-9]*)?|[.][0-9]+)$'
$$;
comment on function oneroster_is_number(text) is
  'True when the text is a decimal number numeric accepts (no exponent, NaN or infinity, at most 15 integer digits).';

create or replace function oneroster_is_datetime(p_text text)
returns boolean
language sql
immutable
called on null input
parallel safe
as $$
  -- YYYY-MM-DD, optionally Thh:mm[:ss[.ffffff]] (or a space for the T) and an offset (Z, +hh:mm, +hhmm);
  -- the day must exist.
  -- CASE, not AND: the day's check casts, and only CASE fixes the order of evaluation.
  select case when p_text ~ '^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?)?$'
              then substr(p_text, 9, 2)::integer <= extract(day from
                     make_date(substr(p_text, 1, 4)::integer, substr(p_text, 6, 2)::integer, 1) + interval '1 month - 1 day')
              else false end
$$;
comment on function oneroster_is_datetime(text) is
  'True when the text is an ISO 8601 date, or date and time (offset optional), of a day that exists.';

create or replace function oneroster_instant(p_text text, p_time_zone text)
returns timestamptz
language sql
stable
called on null input
parallel safe
as $$
  -- With an offset: that instant. A time without one: local time in p_time_zone. A date alone: noon there,
  -- so the day (and its ISO week) is the date's own in the student's time zone.
  select case
    when p_text ~ '[T ].*(Z|[+-][0-9]{2}:?[0-9]{2})$' then p_text::timestamptz
    when p_text ~ '[T ]' then p_text::timestamp at time zone p_time_zone
    else (p_text::date + time '12:00') at time zone p_time_zone
  end
$$;
comment on function oneroster_instant(text, text) is
  'The instant of a OneRoster date or date-time (validated by oneroster_is_datetime): offset as given, else local time in p_time_zone, a date alone at noon there.';
