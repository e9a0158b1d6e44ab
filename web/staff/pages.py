"""Staff pages (/staff): the teacher's list, find a student, a student's page (the family's figures, then
the staff tools: guardians with their link state, restrict or lift a link, record a dependant, send a
student their own sign-in link, follow-up notes, erase, the raw weekly rows and Recalculate).

Staff sign in with the school's accounts (OpenID Connect: web/staff/oidc.py) or a token from
issue_staff_token(); parents' tokens and
sessions open nothing here (and staff ones nothing on the parents' side).
Every query runs as the role weekly_trends_staff. A teacher (a staff member with a course_teacher row)
finds and opens only the students of their courses; staff who teach no course, every student
(staff_may_see_student()). Every view of a student is recorded in the access log.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import psycopg
from flask import Blueprint, current_app, flash, render_template, request, url_for

from web import db
from web.auth import STAFF, authenticate, presented_credential, refused, same_origin_for_unsafe_methods
from web.params import bad_request, parse_bounded_int, parse_end, parse_id, parse_weeks, see_other
from web.problems import ProblemError, html_errors
from web.signin import add_sign_in_routes
from web.staff import oidc
from web.staff.attention import REASON_WORDS, attention_list, course_argument
from web.student_view import TREND_WORDS, figures_context

bp = Blueprint("staff", __name__, url_prefix="/staff")
same_origin_for_unsafe_methods(bp)  # every POST: the buttons, sign-in and sign-out
html_errors(bp, "staff.login", "staff.search", STAFF.session_key, staff=True)
# Sign-out from a session the school's OpenID provider opened goes on to end the provider's too.
add_sign_in_routes(bp, STAFF, db.staff, "staff.search", "staff_login.html", after_sign_out=oidc.end_session)


@bp.app_context_processor
def sign_in_choices() -> dict:
    return {"oidc_enabled": oidc.enabled}


MAX_QUERY = 200
MAX_RESULTS = 100


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@bp.get("/")
def search():
    """The teacher's list of students needing attention (or, for staff who teach no course, a course's),
    and the search: one transaction, the list's call authenticating."""
    query = request.args.get("q", "").strip()
    if len(query) > MAX_QUERY:
        raise bad_request(f"The search text must be at most {MAX_QUERY} characters.")
    course_id = course_argument()
    credential = presented_credential(STAFF, allow_navigation=True)
    settings = current_app.config["SETTINGS"]
    with db.staff() as conn:
        _, attention = attention_list(conn, credential, course_id)
        students = []
        if query:
            students = conn.execute(
                """
                select sp.id, sp.display_name, sp.time_zone,
                       array(select g.email from guardian_student gs join guardian g on g.id = gs.guardian_id
                              where gs.student_profile_id = sp.id order by g.email) as guardian_emails,
                       lw.week_start_date as last_week, lw.overall_average as last_average,
                       st.trend ->> 'direction' as direction
                  from student_profile sp
                  left join lateral (select w.week_start_date, w.overall_average from student_weekly_performance w
                                      where w.student_profile_id = sp.id and w.quiz_count + w.assignment_count > 0
                                      order by w.week_start_date desc limit 1) lw on true
                  left join lateral student_weekly_stats(
                         sp.id,
                         ((now() at time zone sp.time_zone)::date - extract(isodow from now() at time zone sp.time_zone)::integer + 1) - 35,
                         6, %(drop)s, %(min_scores)s) st on true
                 where (sp.display_name ilike %(pattern)s
                        or sp.id in (select gs2.student_profile_id
                                       from guardian_student gs2
                                       join guardian g2 on g2.id = gs2.guardian_id
                                      where g2.email ilike %(pattern)s))
                   and staff_may_see_student(app_staff_member_id(), sp.id)
                 order by sp.display_name, sp.id
                 limit %(limit)s
                """,
                {
                    "pattern": like_pattern(query),
                    "limit": MAX_RESULTS,
                    "drop": settings.alert_drop_points,
                    "min_scores": settings.alert_min_scores,
                },
            ).fetchall()
            # Each student whose figures the results show: an access-log entry.
            conn.execute(
                "select log_access(s, %s) from unnest(%s::bigint[]) s",
                (db.endpoint_name(), [student["id"] for student in students]),
            )
    for student in students:
        student["trend_word"] = str(TREND_WORDS[student["direction"] or "insufficient_data"][1])
    return render_template(
        "staff_search.html",
        query=query,
        students=students,
        max_results=MAX_RESULTS,
        attention=attention,
        course_id=course_id,
        reason_words=REASON_WORDS,
    )


def staff_student(conn, student_id: int) -> dict:
    """The student, when the staff member conn's transaction acts for may see them; else a 404 (unknown
    and not theirs are one answer)."""
    row = conn.execute(
        "select id, display_name, time_zone, email, birth_date, dependant_until, student_may_sign_in(id) as may_sign_in"
        "  from student_profile where id = %s and staff_may_see_student(app_staff_member_id(), id)",
        (student_id,),
    ).fetchone()
    if row is None:
        raise ProblemError(404, "Not Found", "No student with this id.")
    return row


# Where a link to a student's page came from, recorded with the view (?from=).
PAGES_FROM = ("attention", "search")
STUDENT_CALL = (
    "select status, staff_member_id, answer, page from staff_student_page(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


@bp.get("/students/<student_id>")
def student(student_id: str):
    """The family's figures (the same one call's answer and the same template), then the staff tools."""
    sid = parse_id(student_id)  # bad parameters are a 400 even before sign-in, as before
    weeks, end = parse_weeks(request.args.get("weeks")), parse_end(request.args.get("end"))
    year = request.args.get("year") or None
    week = request.args.get("week") or None
    year = None if year is None else parse_bounded_int(year, "year", 1, 9999)
    week = None if week is None else parse_bounded_int(week, "week", 1, 53)
    credential = presented_credential(STAFF, allow_navigation=True)
    came_from = request.args.get("from")
    endpoint = db.endpoint_name() + (f" from {came_from}" if came_from in PAGES_FROM else "")
    settings = current_app.config["SETTINGS"]
    with db.staff() as conn:
        row = conn.execute(
            STUDENT_CALL,
            (
                credential.token_hash,
                credential.token_id,
                sid,
                weeks,
                end,
                current_app.config["CLASS_AVERAGE_MIN_STUDENTS"],
                endpoint,
                *settings.alert_thresholds,
            ),
        ).fetchone()
        if row["status"] == 200:
            # The staff tools beside the family's figures: the student's own access, the restrictions' history.
            profile = conn.execute(
                "select email, birth_date, dependant_until, student_may_sign_in(id) as may_sign_in"
                "  from student_profile where id = %s",
                (sid,),
            ).fetchone()
            restrictions = conn.execute(
                "select e.at, e.guardian_id, e.action, e.reason, e.until, e.by_role, s.display_name as staff_name"
                "  from guardian_link_restriction_event e left join staff_member s on s.id = e.staff_member_id"
                " where e.student_profile_id = %s order by e.at desc, e.id desc",
                (sid,),
            ).fetchall()
    if row["status"] == 401:
        raise refused(STAFF, credential)
    if row["status"] == 404:
        raise ProblemError(404, "Not Found", "No student with this id.")
    page = row["page"]
    rows = [
        r
        | {"created_at": datetime.fromisoformat(r["created_at"]), "updated_at": datetime.fromisoformat(r["updated_at"])}
        for r in page["rows"]
        if (year is None or r["year"] == year) and (week is None or r["week_number"] == week)
    ]
    stats = json.loads(row["answer"])["weekly_stats"]
    return render_template(
        "staff_student.html",
        rows=rows,
        year=year,
        week=week,
        guardians=page["guardians"],
        restrictions=restrictions,
        notes=page["notes"],
        note_kinds=NOTE_KINDS,
        today=date.today().isoformat(),
        family=False,
        **figures_context(stats, page["student"] | profile, page, settings.alert_drop_points),
    )


NOTE_KINDS = {"family_contacted": "Family contacted", "met_student": "Met student", "other": "Other"}
MAX_NOTE = 2000
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@bp.post("/students/<student_id>/notes")
def add_note(student_id: str):
    """A follow-up note (kind, day, text) by the signed-in staff member: staff only, newest first."""
    sid = parse_id(student_id)
    with db.staff() as conn:
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        kind = request.form.get("kind", "")
        if kind not in NOTE_KINDS:
            raise bad_request("kind must be one of " + ", ".join(NOTE_KINDS) + ".")
        try:
            noted_on = date.fromisoformat(request.form.get("noted_on", ""))
        except ValueError:
            raise bad_request("noted_on must be a day, as YYYY-MM-DD.") from None
        if not date(2000, 1, 1) <= noted_on <= date(2199, 12, 31):
            raise bad_request("noted_on must be a day from 2000 to 2199.")
        note = request.form.get("note", "").strip()
        if not 1 <= len(note) <= MAX_NOTE or CONTROL.search(note):
            raise bad_request(f"The note must be 1 to {MAX_NOTE} characters, without control characters.")
        db.log_read(conn, sid)
        conn.execute("select add_follow_up_note(%s, %s, %s, %s)", (sid, kind, noted_on, note))
    flash("The note was added.")
    return see_other(url_for("staff.student", student_id=sid))


def linked_guardian(conn, student_id: int, raw_guardian_id: str) -> dict:
    gid = parse_id(raw_guardian_id, "guardian id")
    guardian = next((g for g in db.student_guardians(conn, student_id) if g["id"] == gid), None)
    if guardian is None:
        raise ProblemError(404, "Not Found", "No guardian with this id is linked to this student.")
    return guardian


@bp.post("/students/<student_id>/guardians/<guardian_id>/send-sign-in-link")
def send_sign_in_link(student_id: str, guardian_id: str):
    """Mail the guardian a fresh sign-in link by mail_sign_in_link() (web/mail/invites.py): claim,
    commit, send, record, as the digest does. No pooled connection or transaction is held across the
    SMTP conversation (which may take SMTP_URL's timeout, 30 s by default, against the pool's 10 s wait).
    """
    from web.mail.invites import DEFAULT_DAYS, mail_sign_in_link
    from web.mail.transport import MailError, MailSettings, mask_email

    sid = parse_id(student_id)
    with db.staff() as conn:
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        guardian = linked_guardian(conn, sid, guardian_id)
        db.log_read(conn, sid)  # a staff action on this student's family, in the access log

    def claim() -> str:  # committed when the block ends, the connection given back before the send
        with db.staff() as conn:
            authenticate(conn, STAFF)
            return conn.execute(
                "select staff_issue_guardian_token(%s, %s, make_interval(days => %s)) as token",
                (sid, guardian["id"], DEFAULT_DAYS),
            ).fetchone()["token"]

    def unclaim(token_hash: bytes) -> None:
        with db.staff() as conn:
            authenticate(conn, STAFF)
            conn.execute("select staff_revoke_unsent_guardian_token(%s, %s, %s)", (sid, guardian["id"], token_hash))

    if not guardian["gives_access"]:  # guardian_link_state(): access ended, or restricted
        flash(f"No sign-in link was sent to {guardian['email']}: their link gives no access ({guardian['state']}).")
        return see_other(url_for("staff.student", student_id=sid))
    try:
        settings = MailSettings.from_settings(current_app.config["SETTINGS"])
        mail_sign_in_link(settings, guardian, DEFAULT_DAYS, claim=claim, unclaim=unclaim)
    except (MailError, ValueError) as error:
        problem = error
    else:
        problem = None
    if problem is not None:
        current_app.logger.warning("staff sign-in link to %s failed: %s", mask_email(guardian["email"]), problem)
        flash(f"The sign-in link to {guardian['email']} could not be sent: {problem}")
    else:
        flash(f"A sign-in link (valid {DEFAULT_DAYS} days) was sent to {guardian['email']}.")
    return see_other(url_for("staff.student", student_id=sid))


@bp.post("/students/<student_id>/guardians/<guardian_id>/revoke-links")
def revoke_links(student_id: str, guardian_id: str):
    """Revoke every live token of the guardian: their links and sessions stop working at once."""
    sid = parse_id(student_id)
    with db.staff() as conn:
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        guardian = linked_guardian(conn, sid, guardian_id)
        db.log_read(conn, sid)
        revoked = conn.execute("select staff_revoke_guardian_tokens(%s, %s) as n", (sid, guardian["id"])).fetchone()[
            "n"
        ]
    flash(f"Revoked {revoked} sign-in link(s) of {guardian['email']}: they and their sessions no longer work.")
    return see_other(url_for("staff.student", student_id=sid))


@bp.post("/students/<student_id>/recalculate")
def recalculate(student_id: str):
    sid = parse_id(student_id)
    with db.staff() as conn:
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        db.log_read(conn, sid)
        written = conn.execute("select refresh_weekly_performance(p_student_profile_id => %s)", (sid,)).fetchone()
    flash(f"Recalculated: {written['refresh_weekly_performance']} weekly row(s) written (0: they were already exact).")
    return see_other(url_for("staff.student", student_id=sid))


def optional_date(raw: str | None, what: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"The {what} must be a date written YYYY-MM-DD.") from None


@bp.post("/students/<student_id>/guardians/<guardian_id>/restrict")
def restrict(student_id: str, guardian_id: str):
    """Restrict one guardian's link (restrict_guardian_link()): from their next request they get what an
    unlinked guardian gets. Who, when and why are kept."""
    sid = parse_id(student_id)
    with db.staff() as conn:
        # 401, then 404 (not theirs, as unknown), then 400 for the form: a teacher of another course
        # learns nothing about this student from the form's errors.
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        guardian = linked_guardian(conn, sid, guardian_id)
        reason = request.form.get("reason", "").strip()
        if not 1 <= len(reason) <= 2000:
            raise bad_request("A restriction needs a reason (1 to 2000 characters).")
        until = optional_date(request.form.get("until"), "end of the restriction")
        try:
            with conn.transaction():
                conn.execute("select restrict_guardian_link(%s, %s, %s, %s)", (guardian["id"], sid, reason, until))
        except psycopg.errors.InvalidParameterValue as error:
            raise bad_request(error.diag.message_primary or "The restriction was refused.") from None
    flash(f"The link of {guardian['email']} is restricted{f' through {until}' if until else ''}.")
    return see_other(url_for("staff.student", student_id=sid))


@bp.post("/students/<student_id>/guardians/<guardian_id>/lift-restriction")
def lift_restriction(student_id: str, guardian_id: str):
    sid = parse_id(student_id)
    with db.staff() as conn:
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        guardian = linked_guardian(conn, sid, guardian_id)
        lifted = conn.execute("select lift_guardian_link_restriction(%s, %s) as l", (guardian["id"], sid)).fetchone()
    flash(f"The restriction on {guardian['email']} was lifted." if lifted["l"] else "That link was not restricted.")
    return see_other(url_for("staff.student", student_id=sid))


@bp.post("/students/<student_id>/dependant")
def dependant(student_id: str):
    """Record the student as a dependant until a date (empty: clear it): their guardians keep access past
    the rights age until then."""
    sid = parse_id(student_id)
    with db.staff() as conn:
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        until = optional_date(request.form.get("until"), "dependant-until date")
        conn.execute("select set_student_dependant(%s, %s)", (sid, until))
    flash(f"Recorded as a dependant until {until}." if until else "The dependant record was cleared.")
    return see_other(url_for("staff.student", student_id=sid))


@bp.post("/students/<student_id>/send-student-link")
def send_student_link(student_id: str):
    """Mail the student their own sign-in link (claim, commit, send, record, as a guardian's)."""
    from web.mail.invites import DEFAULT_DAYS, mail_sign_in_link
    from web.mail.transport import MailError, MailSettings, mask_email

    sid = parse_id(student_id)
    with db.staff() as conn:
        authenticate(conn, STAFF)
        profile = staff_student(conn, sid)
    if profile["email"] is None or not profile["may_sign_in"]:
        flash("This student has no email address, or may not sign in (WEEKLY_TRENDS_STUDENT_ACCESS): nothing was sent.")
        return see_other(url_for("staff.student", student_id=sid))
    recipient = {"email": profile["email"], "display_name": profile["display_name"], "to_student": True}

    def claim() -> str:
        with db.staff() as conn:
            authenticate(conn, STAFF)
            return conn.execute(
                "select staff_issue_student_token(%s, make_interval(days => %s)) as token", (sid, DEFAULT_DAYS)
            ).fetchone()["token"]

    def unclaim(token_hash: bytes) -> None:
        with db.staff() as conn:
            authenticate(conn, STAFF)
            conn.execute("select revoke_unsent_student_token(%s, %s)", (sid, token_hash))

    try:
        settings = MailSettings.from_settings(current_app.config["SETTINGS"])
        mail_sign_in_link(settings, recipient, DEFAULT_DAYS, claim=claim, unclaim=unclaim)
    except (MailError, ValueError) as error:
        current_app.logger.warning("student sign-in link to %s failed: %s", mask_email(profile["email"]), error)
        flash(f"The student's sign-in link could not be sent: {error}")
    else:
        flash(f"The student's own sign-in link (valid {DEFAULT_DAYS} days) was sent to {profile['email']}.")
    return see_other(url_for("staff.student", student_id=sid))


@bp.post("/students/<student_id>/erase")
def erase(student_id: str):
    """Erase the student (staff_erase_student(): erase_student() in one transaction), confirmed by their
    id typed again and a reason; the certificate is kept in the database and shown once here."""
    import json

    sid = parse_id(student_id)
    reason = request.form.get("reason", "").strip()
    confirmation = request.form.get("confirm", "").strip()
    with db.staff() as conn:
        authenticate(conn, STAFF)
        staff_student(conn, sid)
        if not reason or len(reason) > 1000:
            raise bad_request("Give the reason for the erasure (1 to 1000 characters), e.g. the request's reference.")
        if confirmation != str(sid):
            raise bad_request(f"Type the student's id ({sid}) in the confirmation box to erase them.")
        certificate = conn.execute(
            "select staff_erase_student(%s, %s, %s) as c", (sid, reason, confirmation)
        ).fetchone()["c"]
    flash(
        f"Student {sid} was erased with every row about them (certificate {certificate['certificate']}): "
        + json.dumps(certificate["rows_deleted"], sort_keys=True)
    )
    return see_other(url_for("staff.search"))
