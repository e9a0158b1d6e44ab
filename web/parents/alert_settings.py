"""The alerts a family chooses, per guardian and child (issue 26 item 3): read and saved through
my_alert_settings() / set_my_alert_settings() (db/functions/630_alerts.sql), as the parents' role
acting for the request's guardian. GET/PUT /api/v1/students/<id>/alert-settings (web/parents/api.py)
and the form on the child's page (web/parents/page.py) share this.

401 first, then 400 (a problem naming what is wrong), then 404 (a child not linked to the guardian),
as everywhere on the parents' side. Mailed by `weekly-trends alerts` (web/mail/alerts.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from web import db
from web.auth import GUARDIAN, authenticate_credential, presented_credential
from web.params import bad_request, parse_id
from web.parents.trend import NOT_FOUND_DETAIL, bad_parameters_after_credential
from web.problems import ProblemError

SWITCHES = ("missing_work", "sustained_decline")  # on or off
LEVELS = ("course_average_below", "score_below")  # 1 to 100, or null: off
FIELDS = SWITCHES + LEVELS


def level_error(name: str) -> ProblemError:
    error = bad_request(f"{name} must be a whole number from 1 to 100, or null for no alert.")
    error.reason = "alert_level"
    return error


def from_json(body) -> dict:
    """The four settings of a PUT body, all required, nothing else; a 400 problem naming what is wrong."""
    if not isinstance(body, dict):
        raise bad_request(f"Send a JSON object with {', '.join(FIELDS)}.")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise bad_request(f"Unknown setting(s): {', '.join(unknown)}. The settings are {', '.join(FIELDS)}.")
    missing = [f for f in FIELDS if f not in body]
    if missing:
        raise bad_request(f"Missing setting(s): {', '.join(missing)} (send all four).")
    for name in SWITCHES:
        if not isinstance(body[name], bool):
            raise bad_request(f"{name} must be true or false.")
    for name in LEVELS:
        value = body[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100):
            raise level_error(name)
    return {name: body[name] for name in FIELDS}


def from_form(form: Mapping[str, str]) -> dict:
    """The page's form: a checkbox per switch (absent: off), a number per level (empty: off)."""
    values = {name: form.get(name) == "on" for name in SWITCHES}
    for name in LEVELS:
        raw = (form.get(name) or "").strip()
        if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= 100):
            raise level_error(name)
        values[name] = int(raw) if raw else None
    return values


def as_json(student_id: int, row: dict) -> dict:
    return {"student_id": student_id, **{name: row[name] for name in FIELDS}}


def alert_settings(raw_student_id: str, parse=None, *, allow_navigation: bool = False) -> dict:
    """The guardian's settings for the child (after saving parse()'s values, when given): the API's JSON."""
    credential = presented_credential(GUARDIAN, allow_navigation=allow_navigation)
    with bad_parameters_after_credential(credential, allow_navigation=allow_navigation):
        student_id = parse_id(raw_student_id)
        values = parse() if parse is not None else None
    with db.reader_primary() as conn:
        authenticate_credential(conn, GUARDIAN, credential)
        if values is not None:
            saved = conn.execute(
                "select set_my_alert_settings(%s, %s, %s, %s, %s) as saved",
                (student_id, *(values[name] for name in FIELDS)),
            ).fetchone()["saved"]
            if not saved:
                raise ProblemError(404, "Not Found", NOT_FOUND_DETAIL)
        row = conn.execute("select * from my_alert_settings(%s)", (student_id,)).fetchone()
    if row is None:
        raise ProblemError(404, "Not Found", NOT_FOUND_DETAIL)
    return as_json(student_id, row)


def my_alert_settings(conn, student_id: int) -> dict | None:
    """In a transaction acting for the guardian (the page's answer): their settings for the child."""
    return conn.execute("select * from my_alert_settings(%s)", (student_id,)).fetchone()
