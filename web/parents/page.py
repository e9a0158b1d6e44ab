"""The parents' page: sign in with the link's token, see a child's weeks as a chart and a table,
and the scores behind each week; in the family's language."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_time
from flask import Blueprint, current_app, render_template, request, session
from flask_babel import get_locale

from web import db, i18n
from web.auth import GUARDIAN, authenticate, same_origin_for_unsafe_methods
from web.params import bad_request, parse_end, parse_weeks, see_other
from web.parents.trend import bad_parameters_after_credential, student_trend
from web.parents.week_scores import week_scores
from web.problems import html_errors
from web.signin import add_sign_in_routes
from web.student_view import figures_context

bp = Blueprint("pages", __name__)
same_origin_for_unsafe_methods(bp)  # every POST: the language switch, sign-in and sign-out
html_errors(bp, "pages.login", "pages.dashboard", GUARDIAN.session_key)
add_sign_in_routes(bp, GUARDIAN, db.reader, "pages.dashboard", "login.html", connect_primary=db.reader_primary)


def weekly_digest_on(conn, row: dict) -> bool:
    """Whether the guardian gets the weekly digest."""
    return conn.execute("select my_weekly_digest() as on").fetchone()["on"]


def range_args() -> dict:
    """The dashboard's range (weeks, end), carried to the week pages and back."""
    return {k: v for k, v in request.args.items() if k in ("weeks", "end")}


@bp.get("/")
@bp.get("/students/<student_id>")
def dashboard(student_id: str | None = None):
    # One round trip: the guardian's children, the student and their figures (weekly_trend_json()); in
    # the same transaction, the guardian's saved language (the page then speaks it) and mail preference.
    answer = student_trend(
        student_id, request.args, page=True, allow_navigation=True, within=weekly_digest_on, in_guardians_language=True
    )
    children = answer.page["children"]
    if answer.body is None:
        return render_template("dashboard.html", children=children, student=None)
    student, stats = answer.page["student"], answer.stats
    return render_template(
        "dashboard.html",
        weekly_digest=answer.extra,
        children=children,
        family=True,
        week_args=range_args(),
        csv_args=range_args() | {"labels": "1"},
        **figures_context(stats, student, answer.page, current_app.config["SETTINGS"].alert_drop_points),
    )


@bp.get("/students/<student_id>/weeks/<week>")
def week(student_id: str, week: str):
    """The scores behind one week (the API's answer as a page): works without JavaScript."""
    with bad_parameters_after_credential(allow_navigation=True):  # 401 before 400, as everywhere
        parse_weeks(request.args.get("weeks")), parse_end(request.args.get("end"))  # the range to go back to
    answer = week_scores(student_id, week, allow_navigation=True)
    zone = ZoneInfo(answer["time_zone"])
    for score in answer["scores"]:
        at = datetime.fromisoformat(score["counted_at"]).astimezone(zone)
        score["day"] = format_datetime(at, "EEE d MMM", locale=get_locale())
        score["time"] = format_time(at, "short", locale=get_locale())
    monday = date.fromisoformat(answer["week_start"])
    # 9999-W52 ends in the year 10000, past date.max: that week is named by its Monday alone.
    sunday = monday + timedelta(days=6) if monday <= date.max - timedelta(days=6) else None
    return render_template(
        "week.html",
        answer=answer,
        student_id=answer["student_id"],
        week_from=i18n.long_date(monday),
        week_to=sunday and i18n.long_date(sunday),
        back_args=range_args(),
    )


@bp.post("/language")
def set_language():
    """Switch the pages' language; saved for the signed-in guardian (else for this browser's session)."""
    language = request.form.get("language", "")
    if language not in i18n.LANGUAGES:
        raise bad_request("language must be one of " + ", ".join(i18n.LANGUAGES) + ".")
    session[i18n.SESSION_KEY] = language
    if GUARDIAN.session_key in session or "Authorization" in request.headers:
        # On the primary (a replica cannot take the write), as the reader acting for the guardian.
        with db.reader_primary() as conn:
            authenticate(conn, GUARDIAN)
            i18n.save_guardian_language(conn, language)
    return see_other(request.form.get("next"))  # back to the page the form was on, if ours
