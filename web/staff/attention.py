"""The teacher's list: for each of the teacher's courses, the students who need attention this ISO week
(in the school's time zone), each with every reason and its figure (staff_attention(), one database call:
the credential, the list and the access-log entries). On /staff/ (pages.py) and as JSON at
GET /api/v1/staff/attention. Staff who teach no course choose a course (?course=<id>)."""

from __future__ import annotations

import psycopg
from flask import Blueprint, current_app, jsonify, request

from web import db
from web.auth import STAFF, Credential, presented_credential, refused
from web.params import parse_id
from web.problems import ProblemError

api_bp = Blueprint("staff_api", __name__, url_prefix="/api/v1/staff")

ATTENTION_CALL = "select status, staff_member_id, body from staff_attention(%s, %s, %s, %s, %s, %s, %s, %s, null, %s)"
REASON_WORDS = {
    "declining": "Declining",
    "below": "Below",
    "missing_work": "Missing work",
    "no_scores": "No scores for two weeks",
}


def course_argument() -> int | None:
    """?course=<id>: one course of the list (staff who teach none must choose one); None when absent."""
    raw = request.args.get("course", "")
    return None if raw == "" else parse_id(raw, "course")


def attention_list(
    conn: psycopg.Connection, credential: Credential, course_id: int | None, *, log: bool = True
) -> tuple[int, dict]:
    """(staff member, the list) in conn's transaction, which then acts for the staff member; 401 or 404
    problems. Each student listed gets an access-log entry for this request's endpoint."""
    settings = current_app.config["SETTINGS"]
    row = conn.execute(
        ATTENTION_CALL,
        (
            credential.token_hash,
            credential.token_id,
            course_id,
            settings.school_time_zone,
            settings.attention_below,
            settings.attention_missing_at,
            *settings.alert_thresholds,
            db.endpoint_name() if log else None,
        ),
    ).fetchone()
    if row["status"] == 401:
        raise refused(STAFF, credential)
    if row["status"] == 404:
        raise ProblemError(404, "Not Found", "No course with this id among yours.")
    return row["staff_member_id"], row["body"]


@api_bp.get("/attention")
def attention():
    credential = presented_credential(STAFF)
    course_id = course_argument()
    with db.staff() as conn:
        _, body = attention_list(conn, credential, course_id)
    return jsonify(body)
