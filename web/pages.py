"""The parents' page: sign in with the link's token, see a child's weeks as a chart and a table."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, redirect, render_template, request, url_for

from . import db
from .api import guardian_students, student_trend
from .auth import GUARDIAN, authenticate, require_same_origin, sign_in, sign_out
from .chart import line_chart
from .problems import ProblemError, html_errors

bp = Blueprint("pages", __name__)
html_errors(bp, "pages.login")

DIRECTION_TEXT = {
    "improving": ("Improving", "↗"),
    "declining": ("Declining", "↘"),
    "stable": ("Steady", "→"),
    "insufficient_data": ("Not enough weeks with scores yet to show a trend", "·"),
}


def sign_in_response(kind, connect, sign_in_endpoint: str, done_endpoint: str, token: str | None, template: str):
    """The shared sign-in step: a valid token opens a session and sends the browser on with 303,
    so the token leaves the address bar; otherwise the form again."""
    if token is None:
        return render_template(template, sign_in_endpoint=sign_in_endpoint)
    if request.method == "POST":
        require_same_origin()  # no other site may sign a browser in to an account of its choosing
    with connect() as conn:
        valid = sign_in(conn, kind, token)
    if not valid:
        raise ProblemError(401, "Unauthorized", "This sign-in link or token is unknown, expired or revoked.")
    return redirect(url_for(done_endpoint), code=303)


def sign_out_response(kind, sign_in_endpoint: str):
    require_same_origin()
    sign_out(kind)
    return redirect(url_for(sign_in_endpoint), code=303)


@bp.route("/login", methods=["GET", "POST"])
def login():
    token = request.form.get("token") if request.method == "POST" else request.args.get("token")
    return sign_in_response(GUARDIAN, db.reader, "pages.login", "pages.dashboard", token, "login.html")


@bp.post("/logout")
def logout():
    return sign_out_response(GUARDIAN, "pages.login")


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
