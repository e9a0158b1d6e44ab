"""What the parents' side reads about students: a guardian's children, and one child's weekly-trend answer.

The answer comes from weekly_trend_json() (db/functions/430_weekly_trend_json.sql) in one round trip:
it authenticates the request's credential, checks the link, writes the access-log entry and returns the
JSON body, as the reader role under row-level security. The API, the CSV and the page share it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from flask import current_app

from web import db, i18n
from web.auth import GUARDIAN, authenticate_credential, presented_credential, reader_kind, refused
from web.params import parse_end, parse_id, parse_weeks
from web.problems import ProblemError

NOT_FOUND_DETAIL = "No student with this id is linked to your account."
TREND_CALL = (
    "select status, reader_id, answer, page from weekly_trend_json(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# The problem type of a guardian whose access ended at the rights age (the API's 403).
ACCESS_ENDED_TYPE = "/problems/access-ended"


class AccessEnded(ProblemError):
    """The guardian's link no longer gives access: the student came of age (guardian_link_state()
    'access_ended'). The API answers 403 /access-ended; the pages say since when, and that the student
    can share it."""

    def __init__(self, ended_on: str, student: dict):
        super().__init__(
            403,
            "Access ended",
            f"Access to this student's record ended on {ended_on}, when they came of age;"
            " the student can share it with you.",
            type_=ACCESS_ENDED_TYPE,
        )
        self.ended_on, self.student = ended_on, student


@dataclass(frozen=True)
class TrendAnswer:
    body: str | None  # the JSON the endpoint sends; None: the guardian has no child (page only)
    page: dict | None  # with page=True: {"children": [...], "student": {...}}
    reader_id: int | None = None  # the guardian (or the student, kind STUDENT) the request acts for
    extra: Any = None  # what `within` returned
    kind: Any = GUARDIAN  # whose credential: GUARDIAN, or STUDENT reading their own figures

    @property
    def stats(self) -> dict:
        return json.loads(self.body)["weekly_stats"]


@contextmanager
def bad_parameters_after_credential(credential=None, *, allow_navigation: bool = False) -> Iterator[None]:
    """A bad parameter raised in the block is answered after the credential is judged (401 first), as
    every other error is; nothing is read or logged for it."""
    try:
        yield
    except ProblemError:
        kind = reader_kind()
        credential = credential or presented_credential(kind, allow_navigation=allow_navigation)
        with db.reader() as conn:
            authenticate_credential(conn, kind, credential)
        raise


def student_trend(
    raw_student_id: str | None,
    args,
    *,
    page: bool = False,
    allow_navigation: bool = False,
    within: Callable[[psycopg.Connection, dict], Any] | None = None,
    one_week: date | None = None,
    in_guardians_language: bool = False,
) -> TrendAnswer:
    """The weekly-trend answer for the request's guardian and student (401, then 400, then 404 problems).

    raw_student_id None (the page only): the guardian's first child. one_week: just the week of that Monday
    (already checked by the caller; args are not read). within(conn, row), when given, runs
    in the same transaction once the answer is there, acting for the guardian (app.guardian_id is set).
    in_guardians_language (words for people: a page, the CSV's headings): the guardian's saved language
    decides this request's, for the answer and for a 404 alike.
    """
    kind = reader_kind()  # a guardian, or a student reading their own figures
    credential = presented_credential(kind, allow_navigation=allow_navigation)
    with bad_parameters_after_credential(credential):
        student_id = None if raw_student_id is None else parse_id(raw_student_id)
        weeks, end = (1, one_week) if one_week else (parse_weeks(args.get("weeks")), parse_end(args.get("end")))
    on_replica = db.reads_on_replica()
    endpoint = db.endpoint_name()
    with db.reader() as conn:
        row = conn.execute(
            TREND_CALL,
            (
                credential.token_hash,
                credential.token_id,
                student_id,
                weeks,
                end,
                current_app.config["CLASS_AVERAGE_MIN_STUDENTS"],
                endpoint,
                not on_replica,
                page,
                *current_app.config["SETTINGS"].alert_thresholds,
                kind.who,
            ),
        ).fetchone()
        if in_guardians_language and kind is GUARDIAN and row["status"] in (200, 403, 404):
            i18n.remember_guardian_language(conn, row["reader_id"])
        extra = within(conn, row) if within is not None and row["status"] == 200 else None
    if row["status"] == 401:
        raise refused(kind, credential)
    if row["status"] == 404:
        raise ProblemError(404, "Not Found", NOT_FOUND_DETAIL)
    if row["status"] == 403:
        raise AccessEnded(row["page"]["access_ended_on"], row["page"]["student"])
    if on_replica and row["answer"] is not None:
        # A replica takes no writes: the entry goes to the primary before the figures leave.
        db.log_access_on_primary(kind.setting, row["reader_id"], json.loads(row["answer"])["student_id"], endpoint)
    return TrendAnswer(row["answer"], row["page"], row["reader_id"], extra, kind)
