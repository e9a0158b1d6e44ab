"""The family's record of a child (issue 25 items 4 and 5): who handled it (the record of access) and
everything held about the child (the export), for a guardian who may see the child.

Both answers come from one SQL call each (family_access_record_json(), family_export_json()), which
decides access by family_may_see(), logs the read in access_log and, for the export, adds it to the
guardian's own record. They write, so they run on the primary.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import current_app
from flask_babel import get_locale, lazy_gettext

from web import db, i18n
from web.auth import GUARDIAN, authenticate, reader_kind
from web.params import parse_id
from web.parents.trend import NOT_FOUND_DETAIL
from web.problems import ProblemError

RECORD_CALL = "select family_access_record_json(%s, %s) as doc"
EXPORT_CALL = "select family_export_json(%s, %s, %s, %s, %s)::text as doc"

# The words of each kind of entry on the page; the API gives the database's English `what` as well.
KIND_WORDS = {
    "staff_view": lazy_gettext("Opened the figures"),
    "export": lazy_gettext("Downloaded everything held about the child"),
    "erasure_request": lazy_gettext("Asked for the record to be erased"),
    "import": lazy_gettext("Scores changed by an import"),
    "restriction_set": lazy_gettext("A restriction was set on one guardian's access"),
    "restriction_lifted": lazy_gettext("A restriction on one guardian's access was lifted"),
    "sign_in": lazy_gettext("Signed in"),
    "digest": lazy_gettext("Weekly digest sent"),
}
ROLE_WORDS = {
    "staff": lazy_gettext("school staff"),
    "school": lazy_gettext("the school"),
    "guardian": lazy_gettext("guardian"),
    "mail": lazy_gettext("mail"),
    "import": lazy_gettext("import"),
    "student": lazy_gettext("the student"),
}


def _document(raw_student_id: str, call: str, params: tuple = (), *, allow_navigation: bool = False):
    """(student id, the call's answer) for the request's guardian, or the student reading their own: 401,
    then 400, then 404 problems. The page (allow_navigation) speaks the guardian's saved language."""
    with db.reader_primary() as conn:
        kind = reader_kind()  # a guardian, or a student reading their own
        reader_id = authenticate(conn, kind, allow_navigation=allow_navigation)
        if allow_navigation and kind is GUARDIAN:
            i18n.remember_guardian_language(conn, reader_id)
        student_id = parse_id(raw_student_id)
        doc = conn.execute(call, (student_id, db.endpoint_name(), *params)).fetchone()["doc"]
        if doc is None:
            raise ProblemError(404, "Not Found", NOT_FOUND_DETAIL)
        student = conn.execute(
            "select id, display_name, time_zone from student_profile where id = %s", (student_id,)
        ).fetchone()
    return student, doc


def access_record(raw_student_id: str, *, allow_navigation: bool = False) -> tuple[dict, dict]:
    """The child (id, display_name, time_zone) and {"entries": [...]}, newest first."""
    return _document(raw_student_id, RECORD_CALL, allow_navigation=allow_navigation)


def export_document(raw_student_id: str) -> tuple[dict, str]:
    """The child and the export as JSON text, exactly as the database wrote it."""
    settings = current_app.config["SETTINGS"]
    return _document(
        raw_student_id,
        EXPORT_CALL,
        (settings.class_average_min_students, settings.alert_drop_points, settings.alert_min_scores),
    )


def entries_for_page(entries: list[dict], time_zone: str) -> list[dict]:
    """Each entry with its time in the child's time zone and its words in the page's language."""
    zone = ZoneInfo(time_zone)
    shown = []
    for entry in entries:
        at = datetime.fromisoformat(entry["at"]).astimezone(zone)
        shown.append(
            entry
            | {
                "when": format_datetime(at, "medium", locale=get_locale()),
                "who_words": lazy_gettext("You") if entry["who"] == "You" else entry["who"],
                "role_words": ROLE_WORDS.get(entry["role"], entry["role"]),
                "what_words": KIND_WORDS.get(entry["kind"], entry["what"]),
            }
        )
    return shown
