"""The parents' JSON and CSV API, and the health check."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_file

from web import db
from web.auth import GUARDIAN, authenticate
from web.parents.trend import student_trend
from web.parents.wording import csv_header
from web.problems import UNAVAILABLE, problem

bp = Blueprint("api", __name__)

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi.json"
CSV_COLUMNS = [
    "scope",
    "course_id",
    "course_name",
    "week",
    "year",
    "week_number",
    "week_start",
    "overall_avg",
    "quiz_avg",
    "assignment_avg",
    "quiz_count",
    "assignment_count",
    "class_average",
    "class_average_suppressed",
    "alert",
]


@bp.get("/api/v1/me/students")
def my_students():
    with db.reader() as conn:
        guardian_id = authenticate(conn, GUARDIAN)
        students = db.guardian_children(conn, guardian_id)
    return jsonify({"students": [{"id": s["id"], "display_name": s["display_name"]} for s in students]})


@bp.get("/api/v1/students/<student_id>/weekly-trend")
def student_weekly_trend(student_id: str):
    # The body exactly as weekly_trend_json() wrote it: the stats, and beside them at the top level
    # weeks_with_data, last_updated, trend and courses (the issue names them as the endpoint's).
    answer = student_trend(student_id, request.args)
    return Response(answer.body, mimetype="application/json")


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
    labels = request.args.get("labels") == "1"  # headings for people, in the guardian's saved language
    answer = json.loads(student_trend(student_id, request.args, in_guardians_language=labels).body)
    stats = answer["weekly_stats"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    # ?labels=1 (the page's link): headings in the reader's language; the columns and their order never change.
    writer.writerow(csv_header(CSV_COLUMNS) if labels else CSV_COLUMNS)
    for row in csv_rows(stats):
        writer.writerow([csv_cell(row.get(column)) for column in CSV_COLUMNS])
    last_week = stats["weekly_trend"][-1]["week_start"]
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="weekly-trend-{answer["student_id"]}-{last_week}.csv"'
    )
    return response


@bp.get("/api/openapi.json")
def openapi_document():
    # Hand-written and served as is; tests check the app's answers against it.
    return send_file(OPENAPI_PATH, mimetype="application/json", max_age=0)


@bp.get("/healthz")
def healthz():
    """Each database the app serves from, by name (primary; standby when DATABASE_READ_URL is set), with its
    state. 503 with Retry-After when one is down: the primary serves sign-in, the staff pages and every
    write; the standby serves the parents' reads, which do not fall back to the primary. The body says which."""
    databases = {}
    for name, which in db.serving_databases():
        try:
            db.check_database(which)
            databases[name] = {"state": "up"}
        except Exception as error:  # noqa: BLE001 - any failure to reach a database means it is down
            databases[name] = {"state": "down", "error": type(error).__name__}
    down = [name for name, state in databases.items() if state["state"] == "down"]
    if down:
        response = problem(
            503,
            "Service Unavailable",
            f"The database does not answer: {', '.join(down)}.",
            UNAVAILABLE.headers,
        )
        response.set_data(json.dumps(json.loads(response.get_data()) | {"databases": databases}))
        return response
    response = jsonify({"status": "ok", "databases": databases})
    response.headers["Cache-Control"] = "no-store"
    return response
