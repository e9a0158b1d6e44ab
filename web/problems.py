"""Every error as application/problem+json (RFC 9457)."""

from __future__ import annotations

import psycopg
from flask import Blueprint, Flask, Response, current_app, json, render_template, request, session
from psycopg_pool import PoolTimeout
from werkzeug.exceptions import HTTPException

from web.error_words import error_words

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, title: str, detail: str | None = None, headers: dict | None = None, type_: str = "about:blank"
) -> Response:
    body = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    # (never cached: web/__init__.py private_unless_public() says so for every answer but the public ones)
    response.headers.update(headers or {})
    return response


def extra_headers(error: HTTPException) -> dict:
    """An HTTP error's own headers (Allow, WWW-Authenticate…), without those of its default body."""
    return {k: v for k, v in error.get_headers() if k.lower() not in ("content-type", "content-length")}


class ProblemError(Exception):
    """Raised by views to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        headers: dict | None = None,
        reason: str | None = None,
        type_: str = "about:blank",
    ):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.headers, self.type = status, title, detail, headers, type_
        # What a parents' page says instead of the detail (web/error_words.py), when not the status's default.
        self.reason = reason


UNAVAILABLE = ProblemError(
    503,
    "Service Unavailable",
    "The school's database cannot be reached just now. Try again in a minute.",
    {"Retry-After": "30"},
)


def refuse_nul_bytes() -> None:
    """No text column takes a NUL byte: a query or form value with one is bad input, not a server error."""
    values = list(request.args.values()) + (list(request.form.values()) if request.method == "POST" else [])
    if any("\x00" in value for value in values) or "\x00" in request.path:
        raise ProblemError(400, "Bad Request", "The request contains a NUL character.")


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_bytes)

    @app.errorhandler(psycopg.OperationalError)
    @app.errorhandler(PoolTimeout)
    def handle_unavailable(error: Exception):
        app.logger.warning("database unavailable: %s", type(error).__name__)
        return problem(UNAVAILABLE.status, UNAVAILABLE.title, UNAVAILABLE.detail, UNAVAILABLE.headers)

    @app.errorhandler(ProblemError)
    def handle_problem(error: ProblemError):
        return problem(error.status, error.title, error.detail, error.headers, error.type)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        if request.blueprint is None and wants_a_parents_page() and "parents" in _error_pages:
            # A mistyped or stale address a parent opened: words and a way back, not a problem document.
            return _error_pages["parents"](error.code or 500, error.name, error.description, extra_headers(error))
        return problem(error.code or 500, error.name, error.description, extra_headers(error))

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        app.logger.exception("unhandled error")
        return problem(500, "Internal Server Error")


# The parents' error page (set by html_errors() for their blueprints), for addresses that match no route.
_error_pages: dict = {}
NOT_A_PARENTS_PAGE = ("/api/", "/staff", "/static/", "/metrics", "/healthz")


def wants_a_parents_page() -> bool:
    """A browser (it prefers HTML) asking for an address outside the API and the staff pages."""
    return not request.path.startswith(NOT_A_PARENTS_PAGE) and prefers_html()


def prefers_html() -> bool:
    """The client prefers an HTML page to a problem document (a browser says so in Accept)."""
    return request.accept_mimetypes.best_match([PROBLEM_JSON, "application/json", "text/html"]) == "text/html"


def html_errors(
    bp: Blueprint, sign_in_endpoint: str, home_endpoint: str, session_key: str, staff: bool = False
) -> None:
    """Errors raised by bp's views answer as a plain-language HTML page (same status and headers): what
    happened in words, a link back, sign-out when signed in; a 401 offers the sign-in form. The staff
    pages answer a program (no HTML in its Accept) with the problem document itself."""

    def page(status: int, title: str, detail: str | None, headers, reason: str | None = None) -> Response:
        if staff and not prefers_html():
            return problem(status, title, detail, headers)

        # Staff read the problem's own title and detail; parents get words, never a protocol detail.
        words = (title, detail or "") if staff else error_words(status, reason)
        body = render_template(
            "error.html",
            status=status,
            title=words[0],
            text=words[1],
            sign_in_endpoint=sign_in_endpoint,
            home_endpoint=home_endpoint,
            language_next="/",
            signed_in=session_key in session,
            staff=staff,
        )
        response = Response(body, status=status, mimetype="text/html")
        response.headers.update(headers or {})
        return response

    if not staff:
        _error_pages["parents"] = page

    @bp.errorhandler(ProblemError)
    def handle_problem(error: ProblemError):
        return page(error.status, error.title, error.detail, error.headers, error.reason)

    @bp.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        return page(error.code or 500, error.name, error.description, extra_headers(error))

    @bp.errorhandler(psycopg.OperationalError)
    @bp.errorhandler(PoolTimeout)
    def handle_unavailable(error: Exception):
        current_app.logger.warning("database unavailable: %s", type(error).__name__)
        return page(UNAVAILABLE.status, UNAVAILABLE.title, UNAVAILABLE.detail, UNAVAILABLE.headers)

    @bp.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        # A page, like every other answer of these pages; the details go to the log only.
        current_app.logger.exception("unhandled error")
        return page(500, "Something went wrong", "This page could not be shown. Try again later.", None)
