"""Request parameters every surface parses the same way: ids, bounded integers, the weeks and end of a range.

Each parser returns the value or raises a 400 problem that names the parameter.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta

from flask import Response
from flask import redirect as _flask_redirect

from web.problems import ProblemError

MAX_WEEKS = 52
DEFAULT_WEEKS = 6
BIGINT_MAX = 2**63 - 1
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def bad_request(detail: str) -> ProblemError:
    return ProblemError(400, "Bad Request", detail)


def is_small_decimal(raw: str, max_digits: int) -> bool:
    """ASCII digits only, and few enough for int() (which refuses over 4,300 digits)."""
    return raw.isascii() and raw.isdigit() and len(raw) <= max_digits


def parse_id(raw: str, what: str = "student id") -> int:
    if not is_small_decimal(raw, len(str(BIGINT_MAX))) or not 0 < int(raw) <= BIGINT_MAX:
        raise bad_request(f"The {what} must be a positive integer.")
    return int(raw)


def parse_bounded_int(raw: str, name: str, low: int, high: int) -> int:
    if not (is_small_decimal(raw, len(str(high))) and low <= int(raw) <= high):
        raise bad_request(f"{name} must be an integer from {low} to {high}.")
    return int(raw)


def parse_weeks(raw: str | None) -> int:
    return DEFAULT_WEEKS if raw is None else parse_bounded_int(raw, "weeks", 1, MAX_WEEKS)


def parse_end(raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        if not ISO_DATE.fullmatch(raw):
            raise ValueError
        end = date.fromisoformat(raw)
        # The oldest Monday of the range must exist as a date too.
        end - timedelta(days=7 * MAX_WEEKS + 7)
    except (ValueError, OverflowError):
        raise bad_request("end must be a date as YYYY-MM-DD.") from None
    return end


def same_site_path(target: str | None, default: str = "/") -> str:
    r"""`target` when it is a path of this site, else `default` ("/").

    Browsers drop tab, CR and LF anywhere in a URL and read a backslash as a slash, so `/\t/evil`
    and `/\evil` are `//evil`, another site: a target is refused when it holds any control or
    invisible formatting character at all (tab, CR and LF included; they would also break the header),
    when it does not start with one "/", when it starts with "//", or when it holds a backslash.
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp") for c in target):
        return default
    return target


def see_other(target: str | None, default: str = "/") -> Response:
    """303 to a path of this site: the one way the app redirects (every target passes same_site_path())."""
    return _flask_redirect(same_site_path(target, default), code=303)
