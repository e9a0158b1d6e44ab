"""The scores behind one week, for the API (web/parents/api.py) and the week page (web/parents/page.py).

Every counted score of a linked student in one ISO week (in the student's time
zone), read through week_scores() under row-level security, the work missing
that week (linked_missing_work(): due that week, by due date), with the week's
figures exactly as the weekly-trend answer gives them for that week.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from web.isoweek import iso_week_name, parse_iso_week
from web.params import bad_request, parse_id
from web.parents.trend import bad_parameters_after_credential, student_trend


def parse_week(raw: str) -> date:
    """The Monday of the week the request names (web/isoweek.py reads it); a 400 problem for anything else."""
    try:
        return parse_iso_week(raw)
    except ValueError:
        raise bad_request("The week must be an ISO week of a year, written YYYY-Www (e.g. 2024-W03).") from None


def week_scores(raw_student_id: str, raw_week: str, *, allow_navigation: bool = False) -> dict:
    """The answer for the request's guardian (401, then 400, then 404, as the weekly-trend; the read is logged).

    The week's figures are weekly_trend_json()'s own for that one week, so they equal the
    weekly-trend's; the scores come from week_scores() in the same transaction, for the same guardian.
    """
    with bad_parameters_after_credential(allow_navigation=allow_navigation):
        parse_id(raw_student_id)
        monday = parse_week(raw_week)
    answer = student_trend(
        raw_student_id,
        {},
        one_week=monday,
        page=True,
        allow_navigation=allow_navigation,
        within=lambda conn, row: scores_of_week(conn, row, monday),
        in_guardians_language=allow_navigation,  # the page; the JSON has no words to translate
    )
    student = answer.page["student"]
    zone = ZoneInfo(student["time_zone"])
    return {
        "student_id": student["id"],
        "display_name": student["display_name"],
        "week": iso_week_name(monday),
        "week_start": monday.isoformat(),
        "time_zone": student["time_zone"],
        "figures": answer.stats["weekly_trend"][0],
        "scores": [score_item(row, zone) for row in answer.extra["scores"]],
        "missing_work": [missing_item(row, zone) for row in answer.extra["missing_work"]],
    }


def scores_of_week(conn, row: dict, monday: date) -> dict[str, list[dict]]:
    """In the answer's transaction: the week's scores and the work missing that week."""
    student_id = json.loads(row["answer"])["student_id"]
    return {
        "scores": conn.execute("select * from week_scores(%s, %s)", (student_id, monday)).fetchall(),
        "missing_work": conn.execute(
            "select course_work_id, title, course_id, course_name, kind, due_at from linked_missing_work(%s, %s, %s)",
            (student_id, monday, monday),
        ).fetchall(),
    }


def as_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def score_item(row: dict, zone: ZoneInfo) -> dict:
    counted_at: datetime = row["counted_at"]
    return {
        "kind": row["kind"],
        "course_id": row["course_id"],
        "course_name": row["course_name"],
        "counted_at": counted_at.astimezone(zone).isoformat(),
        "score": as_float(row["score"]),
        "teacher_override": row["teacher_override"],
        "automatic_score": as_float(row["automatic_score"]),
    }


def missing_item(row: dict, zone: ZoneInfo) -> dict:
    """A piece of missing work; due_at in the student's time zone, as the scores' instants."""
    return {
        "course_work_id": row["course_work_id"],
        "title": row["title"],
        "course_id": row["course_id"],
        "course_name": row["course_name"],
        "kind": row["kind"],
        "due_at": row["due_at"].astimezone(zone).isoformat(),
    }
