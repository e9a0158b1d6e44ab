"""The parents' JSON and CSV API."""

from __future__ import annotations

import csv
import io
import json

from flask import Blueprint, Response, jsonify, request

from web import db
from web.auth import STUDENT, authenticate, reader_kind, same_origin_for_unsafe_methods
from web.parents.alert_settings import alert_settings, from_json
from web.parents.trend import student_trend
from web.parents.week_scores import week_scores
from web.parents.wording import csv_header

bp = Blueprint("api", __name__)
same_origin_for_unsafe_methods(bp)  # PUT alert-settings: a signed-in browser's request from our pages only

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
    "missing_count",
    "class_average",
    "class_average_suppressed",
    "alert",
]


@bp.get("/api/v1/me/students")
def my_students():
    kind = reader_kind()  # a signed-in student: only themselves
    with db.reader() as conn:
        owner = authenticate(conn, kind)
        if kind is STUDENT:
            students = conn.execute("select id, display_name from student_profile where id = %s", (owner,)).fetchall()
        else:
            students = db.guardian_children(conn, owner)
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


@bp.get("/api/v1/students/<student_id>/weeks/<week>/scores")
def student_week_scores(student_id: str, week: str):
    """The scores behind one ISO week (YYYY-Www), as JSON."""
    answer = week_scores(student_id, week)
    answer.pop("display_name")
    return jsonify(answer)


@bp.get("/api/v1/students/<student_id>/access-record")
def student_access_record(student_id: str):
    """Who handled the child's record, newest first (web/parents/record.py); the read itself is logged."""
    from web.parents.record import access_record

    _, doc = access_record(student_id)
    return jsonify(doc)


@bp.get("/api/v1/students/<student_id>/export")
def student_export(student_id: str):
    """Everything held about the child, one JSON document (OpenAPI: StudentExport), as a download."""
    from web.parents.record import export_document

    student, doc = export_document(student_id)
    response = Response(doc, mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="weekly-trends-export-{student["id"]}.json"'
    return response


@bp.get("/api/v1/students/<student_id>/alert-settings")
def student_alert_settings(student_id: str):
    """The alerts the guardian chose for this child (web/parents/alert_settings.py)."""
    return jsonify(alert_settings(student_id))


@bp.put("/api/v1/students/<student_id>/alert-settings")
def save_student_alert_settings(student_id: str):
    """Replace the guardian's alert choices for this child: all four settings, as GET gives them."""
    return jsonify(alert_settings(student_id, lambda: from_json(request.get_json(silent=True))))
