"""Sign-in and sign-out routes, the same for parents and staff (each kind has its own session key)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, Response, render_template, request, session, url_for

from web.auth import TokenKind, sign_in, sign_out
from web.params import see_other
from web.problems import ProblemError

SIGN_IN_PATH = "/login"  # under each kind's blueprint: /login (parents), /staff/login (staff)


def sign_in_link(base_url: str, token: str, prefix: str = "") -> str:
    """The sign-in link that opens a session with `token`, the one place it is built: the mails' links
    (base_url: PUBLIC_BASE_URL) and the CLI's printed ones. prefix: the blueprint's ("/staff")."""
    return f"{base_url.rstrip('/')}{prefix}{SIGN_IN_PATH}?token={token}"


def token_from_link(text: str) -> str:
    """The token of a pasted sign-in link (…/login?token=…), or the text as given."""
    if "token=" in text:
        values = parse_qs(urlsplit(text.strip()).query).get("token")
        if values:
            return values[0]
    return text


def add_sign_in_routes(
    bp: Blueprint,
    kind: TokenKind,
    connect: Callable,
    done_endpoint: str,
    template: str,
    connect_primary: Callable | None = None,
    also: tuple[TokenKind, ...] = (),
    on_sign_in: Callable[[str], None] | None = None,
    after_sign_out: Callable[[], Callable[[], Response] | None] | None = None,
) -> None:
    """GET /login?token=… (the link) and POST /login (the form) open a session; POST /logout ends it,
    server-side (its token revoked through connect_primary, default connect: a write). bp checks the
    origin of every POST (web/auth.py same_origin_for_unsafe_methods()): no other site may sign a
    browser in to an account of its choosing, nor out. also: other kinds whose tokens this form takes
    (the parents' form takes a student's own, wtl_…); a session holds one kind at a time.
    on_sign_in(token): called after a sign-in (the parents' side records it in the children's record
    of access). after_sign_out: called before the session ends, it gives the answer to send
    once it has ended instead of the way to the sign-in page (the staff's OpenID provider's end of
    session), or None."""
    sign_in_endpoint = f"{bp.name}.login"

    @bp.route(SIGN_IN_PATH, methods=["GET", "POST"])
    def login():
        token = request.form.get("token") if request.method == "POST" else request.args.get("token")
        if token is not None and request.headers.get("Sec-Fetch-Dest", "document") != "document":
            # An <img>, <iframe> or fetch() of another site's page would sign this browser in to
            # the family whose token that site chose: only a page the user opens may sign in.
            raise ProblemError(403, "Forbidden", "A sign-in link works only when opened as a page.")
        if token is None:
            return render_template(template, sign_in_endpoint=sign_in_endpoint)
        token = token_from_link(token)
        chosen = next((k for k in also if k.pattern.fullmatch(token.strip())), kind)
        for other in (kind, *also):
            if other is not chosen:
                session.pop(other.session_key, None)
        with connect() as conn:
            valid = sign_in(conn, chosen, token)
        if not valid:
            raise ProblemError(
                401, "Unauthorized", "This sign-in link or token is unknown, expired or revoked.", reason="bad_link"
            )
        if on_sign_in is not None:
            on_sign_in(token.strip())
        # 303 to a clean URL: the token leaves the address bar (and the history entry the page gets).
        return see_other(url_for(done_endpoint))

    @bp.post("/logout")
    def logout():
        answer = after_sign_out() if after_sign_out is not None else None
        with (connect_primary or connect)() as conn:
            for each in (kind, *also):
                sign_out(conn, each)
        return answer() if answer is not None else see_other(url_for(sign_in_endpoint))
