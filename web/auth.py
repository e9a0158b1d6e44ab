"""Bearer tokens issued by issue_guardian_token(): only their sha256 is stored."""

from __future__ import annotations

import hashlib
import re

import psycopg
from flask import request

from .problems import ProblemError

TOKEN_PATTERN = re.compile(r"wt_[0-9a-f]{64}")


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "Unauthorized", detail, {"WWW-Authenticate": 'Bearer realm="weekly-trends"'})


def bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Send a guardian token as 'Authorization: Bearer <token>'.")
    return token.strip()


def authenticate_guardian(conn: psycopg.Connection) -> int:
    """The guardian id behind the request's bearer token, or a 401 problem."""
    token = bearer_token()
    row = None
    if TOKEN_PATTERN.fullmatch(token):
        row = conn.execute(
            """
            select guardian_id
              from guardian_token
             where token_hash = %s and revoked_at is null and expires_at > now()
            """,
            (hashlib.sha256(token.encode()).digest(),),
        ).fetchone()
    if row is None:
        raise unauthorized("The token is unknown, expired or revoked.")
    return row["guardian_id"]
