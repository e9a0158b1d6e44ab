"""The parents' JSON and CSV API, and the health check."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import psycopg
from flask import Blueprint, Response, current_app, jsonify, request, send_file

from . import db
from .auth import GUARDIAN, authenticate
from .problems import ProblemError, problem
from .trends import weekly_stats

bp = Blueprint("api", __name__)

MAX_WEEKS = 52
DEFAULT_WEEKS = 6
BIGINT_MAX = 2**63 - 1
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
OPENAPI_PATH = Path(__file__).with_name("openapi.json")
NOT_FOUND_DETAIL = "No student with this id is linked to your account."
CSV_COLUMNS = [
    "scope", "course_id", "course_name", "week", "year", "week_number", "week_start",
    "overall_avg", "quiz_avg", "assignment_avg", "quiz_count", "assignment_count",
    "class_average", "class_average_suppressed", "alert",
]


TOP_LEVEL_KEYS = ("weeks_with_data", "last_updated", "trend", "courses")


def bad_request(detail: str) -> ProblemError:
    return ProblemError(400, "Bad Request", detail)


def parse_id(raw: str, what: str = "student id") -> int:
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= BIGINT_MAX:
        raise bad_request(f"The {what} must be a positive integer.")
    return int(raw)


def parse_bounded_int(raw: str, name: str, low: int, high: int) -> int:
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
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


def linked_student(conn: psycopg.Connection, guardian_id: int, student_id: int) -> dict:
    """The student if linked to the guardian; otherwise the same 404 as for an unknown id."""
    row = conn.execute(
        """
        select sp.id, sp.display_name, sp.time_zone, (now() at time zone sp.time_zone)::date as today
          from guardian_student gs
          join student_profile sp on sp.id = gs.student_profile_id
         where gs.guardian_id = %s and gs.student_profile_id = %s
        """,
        (guardian_id, student_id),
    ).fetchone()
    if row is None:
        raise ProblemError(404, "Not Found", NOT_FOUND_DETAIL)
    return row


def guardian_students(conn: psycopg.Connection, guardian_id: int) -> list[dict]:
    return conn.execute(
        """
        select sp.id, sp.display_name
          from guardian_student gs
          join student_profile sp on sp.id = gs.student_profile_id
         where gs.guardian_id = %s
         order by sp.display_name, sp.id
        """,
        (guardian_id,),
    ).fetchall()


def log_read(conn: psycopg.Connection, student_id: int) -> None:
    """One access-log entry for this request's read of a student's figures, in its transaction:
    no figures leave without their entry."""
    db.log_access(conn, student_id, f"{request.method} {request.url_rule.rule}")


def student_trend(conn: psycopg.Connection, guardian_id: int, raw_student_id: str, args) -> tuple[dict, dict]:
    """The linked student and their weekly_stats for the request's weeks and end (400/404 problems)."""
    sid = parse_id(raw_student_id)
    weeks = parse_weeks(args.get("weeks"))
    end = parse_end(args.get("end"))
    student = linked_student(conn, guardian_id, sid)
    log_read(conn, sid)
    stats = weekly_stats(conn, sid, end or student["today"], weeks, current_app.config["CLASS_AVERAGE_MIN_STUDENTS"])
    return student, stats


def private(response: Response) -> Response:
    # Student data: no shared cache (proxy, CDN) may keep it, nor the browser.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/api/v1/me/students")
def my_students():
    with db.reader() as conn:
        guardian_id = authenticate(conn, GUARDIAN)
        students = guardian_students(conn, guardian_id)
    return private(jsonify({"students": [{"id": s["id"], "display_name": s["display_name"]} for s in students]}))


@bp.get("/api/v1/students/<student_id>/weekly-trend")
def student_weekly_trend(student_id: str):
    with db.reader() as conn:
        guardian_id = authenticate(conn, GUARDIAN)
        student, stats = student_trend(conn, guardian_id, student_id, request.args)
    # The additions also at the top level: the issue names them as the
    # endpoint's, and a client should not have to guess which level holds them.
    top_level = {key: stats[key] for key in TOP_LEVEL_KEYS}
    return private(jsonify({"student_id": student["id"], "weekly_stats": stats, **top_level}))


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a spreadsheet would run it as a formula
    return str(value)


def csv_rows(stats: dict):
    """One row per week overall, then one per course and week; the figures of the JSON answer."""
    for week in stats["weekly_trend"]:
        yield {"scope": "overall"} | week
    for course in stats["courses"]:
        for week in course["weeks"]:
            yield {"scope": "course", "course_id": course["course_id"], "course_name": course["name"]} | week


@bp.get("/api/v1/students/<student_id>/weekly-trend.csv")
def student_weekly_trend_csv(student_id: str):
    with db.reader() as conn:
        guardian_id = authenticate(conn, GUARDIAN)
        student, stats = student_trend(conn, guardian_id, student_id, request.args)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(stats):
        writer.writerow([csv_cell(row.get(column)) for column in CSV_COLUMNS])
    last_week = stats["weekly_trend"][-1]["week_start"]
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="weekly-trend-{student["id"]}-{last_week}.csv"'
    return private(response)


@bp.get("/api/openapi.json")
def openapi_document():
    # Hand-written and served as is; tests check the app's answers against it.
    return send_file(OPENAPI_PATH, mimetype="application/json", max_age=0)


@bp.get("/healthz")
def healthz():
    try:
        with db.reader() as conn:
            conn.execute("select 1")
    except Exception:  # noqa: BLE001 - any failure to reach the database means unhealthy
        return problem(503, "Service Unavailable", "The database does not answer.")
    return jsonify({"status": "ok"})
