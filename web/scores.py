"""The scores behind one week: GET /api/v1/students/<id>/weeks/<YYYY>-W<ww>/scores.

Every counted score of a linked student in one ISO week (in the student's time
zone), read through week_scores() under row-level security, with the week's
figures exactly as the weekly-trend answer gives them for that week.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import psycopg
from flask import Blueprint, current_app, jsonify

from . import db
from .api import bad_request, linked_student, log_read, parse_id, private
from .auth import GUARDIAN, authenticate
from .trends import as_float, weekly_stats

bp = Blueprint("scores", __name__)

ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")


def parse_iso_week(raw: str) -> date:
    """The Monday of an ISO week written YYYY-Www (2024-W03); a 400 problem for anything else,
    W00, W54, or W53 of a year with 52 weeks included."""
    match = ISO_WEEK.fullmatch(raw) if raw.isascii() else None
    try:
        if match is None:
            raise ValueError
        return date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise bad_request("The week must be an ISO week of a year, written YYYY-Www (e.g. 2024-W03).") from None


def iso_week_name(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year:04d}-W{week:02d}"


def week_scores(conn: psycopg.Connection, guardian_id: int, raw_student_id: str, raw_week: str) -> dict:
    """The answer for a guardian's request (400 before 404, as the weekly-trend; the read is logged)."""
    sid = parse_id(raw_student_id)
    monday = parse_iso_week(raw_week)
    student = linked_student(conn, guardian_id, sid)
    log_read(conn, sid)
    zone = ZoneInfo(student["time_zone"])
    # The weekly-trend's own figures for that one week: equal by construction.
    stats = weekly_stats(conn, sid, monday, 1, current_app.config["CLASS_AVERAGE_MIN_STUDENTS"])
    rows = conn.execute("select * from week_scores(%s, %s)", (sid, monday)).fetchall()
    return {
        "student_id": student["id"],
        "display_name": student["display_name"],
        "week": iso_week_name(monday),
        "week_start": monday.isoformat(),
        "time_zone": student["time_zone"],
        "figures": stats["weekly_trend"][0],
        "scores": [score_item(row, zone) for row in rows],
    }


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


@bp.get("/api/v1/students/<student_id>/weeks/<week>/scores")
def student_week_scores(student_id: str, week: str):
    with db.reader() as conn:
        guardian_id = authenticate(conn, GUARDIAN)
        answer = week_scores(conn, guardian_id, student_id, week)
    answer.pop("display_name")
    return private(jsonify(answer))
