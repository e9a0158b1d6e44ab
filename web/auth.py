"""Who is asking: a bearer token, or the session cookie set at sign-in.

Tokens come from issue_guardian_token() / issue_staff_token(); only their
sha256 is stored. The session holds only the token's row id, and every
request re-reads that row, so revoking or expiring a token ends every
session opened with it at once; signing out revokes the session's token.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import psycopg
from flask import Blueprint, request, session
from psycopg import sql

from web import ratelimit
from web.problems import ProblemError


@dataclass(frozen=True)
class TokenKind:
    # Finds a live token by %(hash)s (sha256) or %(id)s (a session's row id): columns id, owner.
    lookup: sql.SQL
    # The transaction-local setting the row-level security policies key on.
    setting: str
    pattern: re.Pattern
    session_key: str
    realm: str
    who: str
    # Revokes the session's token (%(id)s) for the owner the transaction acts for: sign-out.
    sign_out: sql.SQL


GUARDIAN = TokenKind(
    # A definer function: under row-level security the app's role sees only the tokens of the
    # guardian it already acts for, and before authentication that is none.
    sql.SQL("select token_id as id, guardian_id as owner from find_guardian_token(%(hash)s, %(id)s)"),
    "app.guardian_id",
    re.compile(r"wt_[0-9a-f]{64}"),
    "guardian_token_id",
    "weekly-trends",
    "guardian",
    sql.SQL("select sign_out_guardian_token(%(id)s)"),
)
# A student's own sign-in (issue 25): the parents' pages and API, for themselves only. The token is
# found only while the student may sign in (WEEKLY_TRENDS_STUDENT_ACCESS, find_student_token()).
STUDENT = TokenKind(
    sql.SQL("select token_id as id, student_profile_id as owner from find_student_token(%(hash)s, %(id)s)"),
    "app.student_id",
    re.compile(r"wtl_[0-9a-f]{64}"),
    "student_token_id",
    "weekly-trends",
    "student",
    sql.SQL("select sign_out_student_token(%(id)s)"),
)
STAFF = TokenKind(
    sql.SQL(
        "select id, staff_member_id as owner from staff_token"
        " where (token_hash = %(hash)s or id = %(id)s) and revoked_at is null and expires_at > now()"
    ),
    "app.staff_member_id",
    re.compile(r"wts_[0-9a-f]{64}"),
    "staff_token_id",
    "weekly-trends-staff",
    "staff",
    sql.SQL("select sign_out_staff_token(%(id)s)"),
)

# Sec-Fetch-Site values of a request another site made the browser send.
CROSS_ORIGIN_SITES = {"cross-site", "same-site"}


def unauthorized(kind: TokenKind, detail: str) -> ProblemError:
    return ProblemError(401, "Unauthorized", detail, {"WWW-Authenticate": f'Bearer realm="{kind.realm}"'})


def _valid_token(
    conn: psycopg.Connection, kind: TokenKind, *, token_hash: bytes | None = None, token_id: int | None = None
) -> dict | None:
    """The unexpired, unrevoked token row with this hash or row id, as {id, owner}."""
    return conn.execute(kind.lookup, {"hash": token_hash, "id": token_id}).fetchone()


def hash_token(token: str) -> bytes:
    """How every token is kept in the database: its sha256, never the token itself."""
    return hashlib.sha256(token.encode()).digest()


def token_by_value(conn: psycopg.Connection, kind: TokenKind, token: str) -> dict | None:
    if not kind.pattern.fullmatch(token):
        return None
    return _valid_token(conn, kind, token_hash=hash_token(token))


def require_same_origin(*, allow_navigation: bool = False) -> None:
    """Refuse a request another origin made the browser send with our cookie (CSRF, cross-site reads).

    allow_navigation: a top-level GET navigation to an HTML page (a link from
    a mail) may come from elsewhere; it changes nothing and the other site
    cannot read the answer.
    """
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != f"{request.scheme}://{request.host}".lower():
        raise ProblemError(403, "Forbidden", "A signed-in request must come from this site's own pages.")
    navigation = allow_navigation and request.method == "GET" and request.headers.get("Sec-Fetch-Mode") == "navigate"
    if request.headers.get("Sec-Fetch-Site") in CROSS_ORIGIN_SITES and not navigation:
        raise ProblemError(403, "Forbidden", "A signed-in request must come from this site's own pages.")


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def same_origin_for_unsafe_methods(bp: Blueprint, *, except_endpoints: frozenset[str] = frozenset()) -> None:
    """Every POST (PUT, PATCH, DELETE) to bp's routes must come from this site's own pages: the one place
    a state-changing request meets require_same_origin(), before its view runs, signed in or not, token
    or session. except_endpoints: those another site posts to by design (the mail's one-click
    unsubscribe, RFC 8058). Registered for the parents' pages, their mail routes and the staff pages;
    tests/test_response_guards.py checks every POST route of the app is covered."""

    @bp.before_request
    def refuse_other_origins() -> None:
        if request.method in UNSAFE_METHODS and request.endpoint not in except_endpoints:
            require_same_origin()


@dataclass(frozen=True)
class Credential:
    """What a request presents, before the database judges it: a token's sha256 or a session's token row id."""

    token_hash: bytes | None
    token_id: int | None

    @property
    def via_session(self) -> bool:
        return self.token_id is not None


def presented_credential(kind: TokenKind, *, allow_navigation: bool = False) -> Credential:
    """The credential of the request, read without the database; a 401 problem when there is none usable
    (a 403 for a cross-site session request, 429 while the client address is locked out).

    A request with an Authorization header is judged by it alone; otherwise by the session cookie.
    """
    ratelimit.refuse_if_locked_out()
    # Only a credential that was presented and failed counts: a signed-out visit is no attempt.
    presented = "Authorization" in request.headers or kind.session_key in session
    try:
        if "Authorization" in request.headers:
            scheme, _, token = request.headers["Authorization"].partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise unauthorized(kind, f"Send a {kind.who} token as 'Authorization: Bearer <token>'.")
            if not kind.pattern.fullmatch(token.strip()):
                raise unauthorized(kind, "The token is unknown, expired or revoked.")
            return Credential(hash_token(token.strip()), None)
        token_id = session.get(kind.session_key)
        if token_id is None:
            raise unauthorized(kind, f"Sign in, or send a {kind.who} token as 'Authorization: Bearer <token>'.")
        require_same_origin(allow_navigation=allow_navigation)
        return Credential(None, token_id)
    except ProblemError as error:
        if error.status == 401 and presented:
            ratelimit.record_failure()
        raise


def reader_kind() -> TokenKind:
    """Whose credential the parents' side was sent, judged without the database: a student's own token
    (wtl_…) or session, else a guardian's (whose 401 the request then gets when it has none)."""
    if "Authorization" in request.headers:
        token = request.headers["Authorization"].partition(" ")[2].strip()
        return STUDENT if STUDENT.pattern.fullmatch(token) else GUARDIAN
    if GUARDIAN.session_key not in session and STUDENT.session_key in session:
        return STUDENT
    return GUARDIAN


def refused(kind: TokenKind, credential: Credential) -> ProblemError:
    """The 401 for a presented credential the database found no live token for (the failure is counted)."""
    ratelimit.record_failure()
    if credential.via_session:
        session.pop(kind.session_key, None)
        return unauthorized(kind, "Your sign-in has expired or was revoked. Sign in again.")
    return unauthorized(kind, "The token is unknown, expired or revoked.")


def authenticate_credential(conn: psycopg.Connection, kind: TokenKind, credential: Credential) -> int:
    """The owner id behind a presented credential, or a 401 problem. The rest of conn's transaction acts
    for that owner: the row-level security policies read the setting made here."""
    row = _valid_token(conn, kind, token_hash=credential.token_hash, token_id=credential.token_id)
    if row is None:
        raise refused(kind, credential)
    conn.execute("select set_config(%s, %s, true)", (kind.setting, str(row["owner"])))
    return row["owner"]


def authenticate(conn: psycopg.Connection, kind: TokenKind, *, allow_navigation: bool = False) -> int:
    """The owner id (guardian or staff member) behind the request, or a 401 problem (429 while
    the client address is locked out after repeated failures)."""
    return authenticate_credential(conn, kind, presented_credential(kind, allow_navigation=allow_navigation))


def sign_in(conn: psycopg.Connection, kind: TokenKind, token: str) -> bool:
    """Open a session for a valid token: the cookie keeps the token's row id, never the token."""
    ratelimit.refuse_if_locked_out()
    row = token_by_value(conn, kind, token.strip())
    if row is None:
        ratelimit.record_failure()
        return False
    session[kind.session_key] = row["id"]
    return True


def sign_out(conn: psycopg.Connection, kind: TokenKind) -> None:
    """End the session server-side: its token is revoked (conn on the primary), so a replayed copy of
    the cookie opens nothing; then the cookie forgets it. The token goes with the session: a sign-in
    link used for it stops working too (a new digest or invitation brings a new one)."""
    token_id = session.pop(kind.session_key, None)
    if token_id is None:
        return
    row = _valid_token(conn, kind, token_id=token_id)
    if row is not None:  # already expired or revoked: nothing to end
        conn.execute("select set_config(%s, %s, true)", (kind.setting, str(row["owner"])))
        conn.execute(kind.sign_out, {"id": row["id"]})
