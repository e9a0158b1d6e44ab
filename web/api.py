"""The parents' JSON API and the health check."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import psycopg
from flask import Blueprint, jsonify, request

from . import db
from .auth import authenticate_guardian
from .problems import ProblemError, problem

bp = Blueprint("api", __name__)

MAX_WEEKS = 52
DEFAULT_WEEKS = 6
BIGINT_MAX = 2**63 - 1
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
NOT_FOUND_DETAIL = "No student with this id is linked to your account."


def bad_request(detail: str) -> ProblemError:
    return ProblemError(400, "Bad Request", detail)


def parse_student_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= BIGINT_MAX:
        raise bad_request("The student id must be a positive integer.")
    return int(raw)


def parse_weeks(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_WEEKS
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_WEEKS):
        raise bad_request(f"weeks must be an integer from 1 to {MAX_WEEKS}.")
    return int(raw)


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


def linked_student(conn: psycopg.Connection, guardian_id: int, student_id: int) -> dict:
    """The student if linked to the guardian; otherwise the same 404 as for an unknown id."""
    row = conn.execute(
        """
        select sp.id, sp.display_name, (now() at time zone sp.time_zone)::date as today
          from guardian_student gs
          join student_profile sp on sp.id = gs.student_profile_id
         where gs.guardian_id = %s and gs.student_profile_id = %s
        """,
        (guardian_id, student_id),
    ).fetchone()
    if row is None:
        raise ProblemError(404, "Not Found", NOT_FOUND_DETAIL)
    return row


def as_float(value: Decimal | None) -> float | None:
    # 0.00 is a score, not "no data": test for None, never for truthiness.
    return None if value is None else float(value)


def weekly_trend(conn: psycopg.Connection, student_id: int, end: date, weeks: int) -> list[dict]:
    """The `weeks` ISO weeks ending with the one holding `end`, oldest first, every week present."""
    last_monday = end - timedelta(days=end.isoweekday() - 1)
    mondays = [last_monday - timedelta(weeks=n) for n in reversed(range(weeks))]
    rows = conn.execute(
        """
        select week_start_date, quiz_average, quiz_count, assignment_average, assignment_count, overall_average
          from student_weekly_performance
         where student_profile_id = %s and week_start_date between %s and %s
        """,
        (student_id, mondays[0], mondays[-1]),
    ).fetchall()
    by_week = {r["week_start_date"]: r for r in rows}
    trend = []
    for monday in mondays:
        row = by_week.get(monday, {})
        iso_year, iso_week, _ = monday.isocalendar()
        trend.append(
            {
                "week": f"W{iso_week}",
                "year": iso_year,
                "week_number": iso_week,
                "week_start": monday.isoformat(),
                "overall_avg": as_float(row.get("overall_average")),
                "quiz_avg": as_float(row.get("quiz_average")),
                "assignment_avg": as_float(row.get("assignment_average")),
                "quiz_count": row.get("quiz_count", 0),
                "assignment_count": row.get("assignment_count", 0),
            }
        )
    return trend


def private_json(payload: dict):
    response = jsonify(payload)
    # Student data: no shared cache (proxy, CDN) may keep it, nor the browser.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/api/v1/students/<student_id>/weekly-trend")
def student_weekly_trend(student_id: str):
    with db.reader() as conn:
        guardian_id = authenticate_guardian(conn)
        sid = parse_student_id(student_id)
        weeks = parse_weeks(request.args.get("weeks"))
        end = parse_end(request.args.get("end"))
        student = linked_student(conn, guardian_id, sid)
        trend = weekly_trend(conn, sid, end or student["today"], weeks)
    return private_json({"student_id": sid, "weekly_stats": {"weekly_trend": trend, "total_weeks": len(trend)}})


@bp.get("/healthz")
def healthz():
    try:
        with db.reader() as conn:
            conn.execute("select 1")
    except Exception:  # noqa: BLE001 - any failure to reach the database means unhealthy
        return problem(503, "Service Unavailable", "The database does not answer.")
    return jsonify({"status": "ok"})
