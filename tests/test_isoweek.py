"""web/isoweek.py: the one parser, name and Monday of an ISO week in Python (no database)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from web.isoweek import iso_week_name, monday_of, parse_iso_week


@pytest.mark.parametrize(
    ("text", "monday"),
    [
        ("2024-W03", date(2024, 1, 15)),
        ("2024-W01", date(2024, 1, 1)),
        ("2020-W53", date(2020, 12, 28)),  # 2020 has 53 weeks
        ("2025-W01", date(2024, 12, 30)),  # an ISO year starting in the calendar year before
    ],
)
def test_parse_reads_a_week_as_its_monday(text, monday):
    assert parse_iso_week(text) == monday
    assert iso_week_name(monday) == text


@pytest.mark.parametrize(
    "text",
    [
        " 2024-W03",  # white space: the API refused it, the digest's CLI took it; now neither does
        "2024-W03\n",
        "2024-W3",  # the week is zero-padded
        "2024-w03",
        "２０２４-W03",  # digits of another script (the digest's \d took them)
        "2024-W٠٣",
        "2024-W00",
        "2024-W54",
        "2024-W53",  # 2024 has 52 weeks
        "24-W03",
        "",
    ],
)
def test_parse_refuses_anything_else(text):
    with pytest.raises(ValueError):
        parse_iso_week(text)


def test_name_is_zero_padded_and_read_back():
    assert iso_week_name(date(2026, 3, 4)) == "2026-W10"
    assert iso_week_name(date(2027, 1, 1)) == "2026-W53"  # the ISO year, not the calendar year
    assert iso_week_name(date(10, 1, 8)) == "0010-W01"
    for day in (date(2024, 1, 1) + timedelta(days=n) for n in range(0, 800, 3)):
        assert parse_iso_week(iso_week_name(day)) == monday_of(day)


def test_monday_of_every_day_of_a_week():
    for n in range(7):
        assert monday_of(date(2024, 1, 15) + timedelta(days=n)) == date(2024, 1, 15)
    assert monday_of(date(2024, 1, 14)) == date(2024, 1, 8)
