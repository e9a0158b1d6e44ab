"""ISO weeks, the one home in Python: how a week is written (2024-W03), read back, and its Monday.

Every Python caller uses these three: the API and the week page (web/parents/week_scores.py,
web/parents/page.py), the digest (web/mail/digest.py), the CLI's backfill (web/ops/cli.py).

SQL keeps its own, in the database's terms: week_start() (db/functions/100_weeks.sql,
date_trunc('week', …) of a local time) and the weekly-trend's last Monday
(db/functions/430_weekly_trend_json.sql, extract(isodow …)). Both name the same Monday as monday_of().
"""

from __future__ import annotations

import re
from datetime import date, timedelta

# ASCII digits only ([0-9], not \d: no other script's digits), the week always two of them.
ISO_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
FORMAT_HINT = "YYYY-Www (e.g. 2024-W03)"


def parse_iso_week(raw: str) -> date:
    """The Monday of the ISO week written YYYY-Www (2024-W03).

    Strict: exactly that text (no white space, ASCII digits, the week zero-padded), and a week that
    year has (W01 to W52, or W53 in a year with 53). A ValueError saying why for anything else."""
    match = ISO_WEEK.fullmatch(raw)
    if match is None:
        raise ValueError(f"not an ISO week written {FORMAT_HINT}: {raw!r}")
    try:
        return date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise ValueError(f"{raw!r}: the year {match[1]} has no week {match[2]}") from None


def iso_week_name(day: date) -> str:
    """The ISO week of `day` as YYYY-Www, zero-padded (2024-W03): what parse_iso_week() reads back."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def monday_of(day: date) -> date:
    """The Monday of the ISO week of `day` (the day itself on a Monday)."""
    return day - timedelta(days=day.isoweekday() - 1)
