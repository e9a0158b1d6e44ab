"""The parents' page: sign in with the link's token, see a child's weeks as a chart and a table."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from . import db
from .auth import GUARDIAN
from .chart import line_chart
from .problems import html_errors
from .signin import add_sign_in_routes
from .students import student_trend

bp = Blueprint("pages", __name__)
html_errors(bp, "pages.login")
add_sign_in_routes(bp, GUARDIAN, db.reader, "pages.dashboard", "login.html")

DIRECTION_TEXT = {
    "improving": ("Improving", "↗"),
    "declining": ("Declining", "↘"),
    "stable": ("Steady", "→"),
    "insufficient_data": ("Not enough weeks with scores yet to show a trend", "·"),
}


def local_time(value: str | None, time_zone: str) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(ZoneInfo(time_zone))


@bp.get("/")
@bp.get("/students/<student_id>")
def dashboard(student_id: str | None = None):
    # One round trip: the guardian's children, the student and their figures (weekly_trend_json()).
    answer = student_trend(student_id, request.args, page=True, allow_navigation=True)
    children = answer.page["children"]
    if answer.body is None:
        return render_template("dashboard.html", children=children, student=None)
    student, stats = answer.page["student"], answer.stats
    return render_template(
        "dashboard.html",
        children=children,
        student=student,
        stats=stats,
        chart=line_chart(stats["weekly_trend"]),
        trend_text=DIRECTION_TEXT[stats["trend"]["direction"]],
        last_updated=local_time(stats["last_updated"], student["time_zone"]),
        csv_args={k: v for k, v in request.args.items() if k in ("weeks", "end")},
    )
