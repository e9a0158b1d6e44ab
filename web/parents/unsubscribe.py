"""Unsubscribing from the weekly digest: the link in each digest, its one-click POST (RFC 8058),
and the parents' own on/off switch.

GET /unsubscribe?token=… only shows a page with a button: mail scanners follow links, and a GET
must change nothing. POST /unsubscribe?token=… (the List-Unsubscribe-Post target, which mailbox
providers call from their servers, without cookies or Origin) turns the digest off; the token, an
unguessable value stored only as a sha256 in digest_delivery, is the only authority needed.
"""

from __future__ import annotations

import re

from flask import Blueprint, render_template, request, url_for

from web import db
from web.auth import GUARDIAN, authenticate, hash_token, same_origin_for_unsafe_methods
from web.params import see_other
from web.problems import ProblemError, html_errors

bp = Blueprint("mail", __name__)
# The preference switch is the parent's own form; the one-click unsubscribe is posted by the mail
# provider (RFC 8058), from another site by design: its token is the credential.
same_origin_for_unsafe_methods(bp, except_endpoints=frozenset({"mail.unsubscribe", "mail.unsubscribe_alerts"}))
html_errors(bp, "pages.login", "pages.dashboard", GUARDIAN.session_key)

TOKEN = re.compile(r"wtu_[0-9a-f]{64}")
UNKNOWN = "This unsubscribe link is not valid. If you copied it, check that it is complete."


def token_hash() -> bytes:
    token = request.args.get("token", "")
    if not TOKEN.fullmatch(token):
        raise ProblemError(404, "Not Found", UNKNOWN)
    return hash_token(token)


@bp.get("/unsubscribe")
def unsubscribe_page():
    token_hash()  # a malformed link says so at once
    return render_template("unsubscribe.html", done=False, token=request.args["token"])


@bp.post("/unsubscribe")
def unsubscribe():
    digest = token_hash()
    with db.reader_primary() as conn:
        guardian = conn.execute("select unsubscribe_weekly_digest(%s) as id", (digest,)).fetchone()["id"]
    if guardian is None:
        raise ProblemError(404, "Not Found", UNKNOWN)
    return render_template("unsubscribe.html", done=True)


ALERT_KINDS = ("missing_work", "course_average_below", "score_below", "sustained_decline")


def alert_kinds() -> list[str]:
    """The alert kinds an alert email's unsubscribe link names (kind=…, one or more)."""
    kinds = request.args.getlist("kind")
    if not kinds or any(k not in ALERT_KINDS for k in kinds):
        raise ProblemError(404, "Not Found", UNKNOWN)
    return list(dict.fromkeys(kinds))


@bp.get("/unsubscribe/alerts")
def unsubscribe_alerts_page():
    """An alert email's link: a page with a button (a GET changes nothing), as the digest's."""
    token_hash(), alert_kinds()
    return render_template(
        "unsubscribe.html", done=False, token=request.args["token"], kinds=alert_kinds(), alerts=True
    )


@bp.post("/unsubscribe/alerts")
def unsubscribe_alerts():
    """One-click (RFC 8058): turns the named alert kinds off, for every child of the guardian."""
    digest, kinds = token_hash(), alert_kinds()
    with db.reader_primary() as conn:
        guardian = conn.execute("select unsubscribe_alerts(%s, %s) as id", (digest, kinds)).fetchone()["id"]
    if guardian is None:
        raise ProblemError(404, "Not Found", UNKNOWN)
    return render_template("unsubscribe.html", done=True, kinds=kinds, alerts=True)


@bp.post("/preferences/weekly-digest")
def weekly_digest_preference():
    """The signed-in parent's switch: form field weekly_digest = on | off."""
    value = request.form.get("weekly_digest")
    if value not in ("on", "off"):
        raise ProblemError(400, "Bad Request", "Choose on or off for the weekly email.")
    with db.reader_primary() as conn:
        authenticate(conn, GUARDIAN)
        conn.execute("select set_weekly_digest(%s)", (value == "on",))
    return see_other(url_for("pages.dashboard"))
