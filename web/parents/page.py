"""The parents' page: sign in with the link's token, see a child's weeks as a chart and a table,
and the scores behind each week; in the family's language."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_time
from flask import Blueprint, current_app, render_template, request, session, url_for
from flask_babel import get_locale

from web import db, i18n
from web.auth import GUARDIAN, STUDENT, authenticate, hash_token, reader_kind, same_origin_for_unsafe_methods
from web.params import bad_request, parse_end, parse_id, parse_weeks, see_other
from web.parents.alert_settings import alert_settings, from_form, my_alert_settings
from web.parents.trend import AccessEnded, bad_parameters_after_credential, student_trend
from web.parents.week_scores import week_scores
from web.problems import ProblemError, html_errors
from web.signin import add_sign_in_routes
from web.student_view import figures_context

bp = Blueprint("pages", __name__)


def record_sign_in(token: str) -> None:
    """The sign-in in each child's record of access, seen by this guardian alone (on the primary). Not a
    disclosure: a primary out of reach costs the entry (logged), not the sign-in a standby can serve."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        with db.reader_primary() as conn:
            conn.execute("select record_guardian_sign_in(%s)", (hash_token(token),))
    except (psycopg.OperationalError, PoolTimeout) as error:
        current_app.logger.warning("sign-in not recorded in the record of access: %s", type(error).__name__)


same_origin_for_unsafe_methods(bp)  # every POST: the language switch, sign-in and sign-out
html_errors(bp, "pages.login", "pages.dashboard", GUARDIAN.session_key)
# The same form takes a student's own link (wtl_…): they see their own page, and their guardians.
add_sign_in_routes(
    bp,
    GUARDIAN,
    db.reader,
    "pages.dashboard",
    "login.html",
    connect_primary=db.reader_primary,
    also=(STUDENT,),
    on_sign_in=record_sign_in,
)


def weekly_digest_on(conn, row: dict) -> bool:
    """Whether the guardian gets the weekly digest."""
    return conn.execute("select my_weekly_digest() as on").fetchone()["on"]


def my_guardians(conn, row: dict) -> list[dict]:
    """A student's own page: their guardians, whether each may read it and whether they share with them."""
    return conn.execute("select * from my_guardians()").fetchall()


@bp.errorhandler(AccessEnded)
def access_ended(error: AccessEnded):
    """The guardian whose access ended at the rights age: since when, and that the student can share it."""
    body = render_template(
        "access_ended.html", student=error.student, ended_on=i18n.long_date(date.fromisoformat(error.ended_on))
    )
    return body, 403


def mail_choices(conn, row: dict) -> tuple[bool, dict | None]:
    """In the answer's transaction: the weekly digest's switch, and the alerts chosen for this child."""
    if row["answer"] is None:  # a guardian with no child: no page of one
        return weekly_digest_on(conn, row), None
    return weekly_digest_on(conn, row), my_alert_settings(conn, json.loads(row["answer"])["student_id"])


def range_args() -> dict:
    """The dashboard's range (weeks, end), carried to the week pages and back."""
    return {k: v for k, v in request.args.items() if k in ("weeks", "end")}


@bp.get("/")
@bp.get("/students/<student_id>")
def dashboard(student_id: str | None = None):
    # One round trip: the guardian's children, the student and their figures (weekly_trend_json()); in
    # the same transaction, the guardian's saved language (the page then speaks it) and mail preference.
    within = my_guardians if reader_kind() is STUDENT else mail_choices
    answer = student_trend(
        student_id, request.args, page=True, allow_navigation=True, within=within, in_guardians_language=True
    )
    children = answer.page["children"]
    if answer.body is None:
        return render_template("dashboard.html", children=children, student=None)
    student, stats = answer.page["student"], answer.stats
    own = answer.kind is STUDENT  # a student's own page: their guardians and the sharing switch
    weekly_digest, alerts = (None, None) if own else answer.extra
    return render_template(
        "dashboard.html",
        weekly_digest=weekly_digest,
        own=own,
        guardians=answer.extra if own else None,
        alerts=alerts,
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
    for work in answer["missing_work"]:
        due = datetime.fromisoformat(work["due_at"]).astimezone(zone)
        work["day"] = format_datetime(due, "EEE d MMM", locale=get_locale())
        work["time"] = format_time(due, "short", locale=get_locale())
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


@bp.post("/sharing")
def sharing():
    """A student shares their record with one of their guardians, or stops: from that guardian's next request."""
    if reader_kind() is not STUDENT:
        raise ProblemError(403, "Forbidden", "Only a student shares their own record.")
    guardian_id = parse_id(request.form.get("guardian_id", ""), "guardian id")
    share = request.form.get("share")
    if share not in ("on", "off"):
        raise bad_request("share must be on or off.")
    with db.reader_primary() as conn:
        authenticate(conn, STUDENT)
        linked = conn.execute("select 1 from my_guardians() where guardian_id = %s", (guardian_id,)).fetchone()
        if linked is None:
            raise ProblemError(404, "Not Found", "No guardian with this id is linked to you.")
        conn.execute("select set_guardian_sharing(%s, %s)", (guardian_id, share == "on"))
    return see_other(url_for("pages.dashboard"))


@bp.post("/students/<student_id>/alert-settings")
def save_alert_settings(student_id: str):
    """The form on the child's page: the alerts this guardian wants about this child."""
    saved = alert_settings(student_id, lambda: from_form(request.form), allow_navigation=True)
    return see_other(url_for("pages.dashboard", student_id=saved["student_id"]) + "#alerts")


@bp.post("/language")
def set_language():
    """Switch the pages' language; saved for the signed-in guardian (else for this browser's session)."""
    language = request.form.get("language", "")
    if language not in i18n.LANGUAGES:
        raise bad_request("language must be one of " + ", ".join(i18n.LANGUAGES) + ".")
    session[i18n.SESSION_KEY] = language
    if reader_kind() is GUARDIAN and (GUARDIAN.session_key in session or "Authorization" in request.headers):
        # On the primary (a replica cannot take the write), as the reader acting for the guardian.
        with db.reader_primary() as conn:
            authenticate(conn, GUARDIAN)
            i18n.save_guardian_language(conn, language)
    return see_other(request.form.get("next"))  # back to the page the form was on, if ours


@bp.get("/students/<student_id>/access")
def access(student_id: str):
    """The child's record of access: who opened the figures, exports, imports, restrictions, your sign-ins."""
    from web.parents.record import access_record, entries_for_page

    student, doc = access_record(student_id, allow_navigation=True)
    return render_template(
        "access.html", student=student, entries=entries_for_page(doc["entries"], student["time_zone"])
    )
