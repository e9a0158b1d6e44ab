"""The parents' page: sign in with the link's token, see a child's weeks as a chart and a table."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from . import db
from .api import guardian_students, student_trend
from .auth import GUARDIAN, authenticate
from .chart import line_chart
from .problems import html_errors
from .signin import add_sign_in_routes
from .trends import alert_thresholds

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
    with db.reader() as conn:
        guardian_id = authenticate(conn, GUARDIAN, allow_navigation=True)
        children = guardian_students(conn, guardian_id)
        if student_id is None and not children:
            return render_template("dashboard.html", children=[], student=None)
        student, stats = student_trend(conn, guardian_id, student_id or str(children[0]["id"]), request.args)
        weekly_digest = conn.execute("select my_weekly_digest() as on").fetchone()["on"]
    flagged = [w for w in stats["weekly_trend"] if w.get("alert")]
    return render_template(
        "dashboard.html",
        weekly_digest=weekly_digest,
        latest_alert=flagged[-1] if flagged else None,
        alert_drop=alert_thresholds()[0],
        children=children,
        student=student,
        stats=stats,
        chart=line_chart(stats["weekly_trend"]),
        trend_text=DIRECTION_TEXT[stats["trend"]["direction"]],
        last_updated=local_time(stats["last_updated"], student["time_zone"]),
        csv_args={k: v for k, v in request.args.items() if k in ("weeks", "end")},
    )
