"""Weekly Trends web app: the parents' page and JSON, and the staff pages (`flask --app web run`)."""

from __future__ import annotations

import os

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import connection, settings


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        # None: resolved on first use (DATABASE_URL, else the embedded server).
        DATABASE_URL=os.environ.get("DATABASE_URL"),
        # Optional read replica for the parents' reads (the access log still goes to the primary).
        DATABASE_READ_URL=os.environ.get("DATABASE_READ_URL") or None,
        # "json": one JSON object per log line, with the request id; "text": leave logging as it is.
        LOG_FORMAT=os.environ.get("WEEKLY_TRENDS_LOG_FORMAT", "json"),
        POOL_MIN_SIZE=settings.env_int("WEEKLY_TRENDS_POOL_MIN_SIZE", 1),
        POOL_MAX_SIZE=settings.env_int("WEEKLY_TRENDS_POOL_MAX_SIZE", 10),
        POOL_OPEN_TIMEOUT=float(os.environ.get("WEEKLY_TRENDS_POOL_OPEN_TIMEOUT", "10")),
        READER_ROLE="weekly_trends_reader",
        STAFF_ROLE="weekly_trends_staff",
        CLASS_AVERAGE_MIN_STUDENTS=settings.env_int("WEEKLY_TRENDS_CLASS_AVERAGE_MIN_STUDENTS", 10),
        # None: kept in the instance folder (see below).
        SECRET_KEY=os.environ.get("WEEKLY_TRENDS_SECRET_KEY") or os.environ.get("SECRET_KEY"),
        SESSION_COOKIE_NAME="weekly_trends_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # 429 after this many failed authentications from one address within the window (seconds).
        AUTH_FAILURE_LIMIT=settings.env_int("WEEKLY_TRENDS_AUTH_FAILURE_LIMIT", 10),
        AUTH_FAILURE_WINDOW=settings.env_int("WEEKLY_TRENDS_AUTH_FAILURE_WINDOW", 300),
        # Proxies in front that set X-Forwarded-For/-Proto/-Host (0: none; then those headers are ignored).
        TRUSTED_PROXIES=settings.env_int("WEEKLY_TRENDS_TRUSTED_PROXIES", 0),
        # /metrics answers only this bearer token or these networks (comma-separated); neither set: 404.
        METRICS_TOKEN=os.environ.get("WEEKLY_TRENDS_METRICS_TOKEN") or None,
        METRICS_ALLOW_FROM=os.environ.get("WEEKLY_TRENDS_METRICS_ALLOW_FROM", ""),
        # Seconds a request waits for a pooled connection before answering 503.
        POOL_TIMEOUT=float(os.environ.get("WEEKLY_TRENDS_POOL_TIMEOUT", "10")),
        # Seconds a request's statement may run (statement_timeout; a server that does not answer is
        # given up 1 s later, web/db.py): with POOL_TIMEOUT, the bound on a 503 when the database freezes.
        STATEMENT_TIMEOUT=connection.seconds_setting("WEEKLY_TRENDS_STATEMENT_TIMEOUT", 5.0, most=600),
        # The parents' pages: the language when neither the guardian nor the browser names one we ship,
        # and who to ask for a new sign-in link ("the school office" when unset).
        DEFAULT_LOCALE=os.environ.get("WEEKLY_TRENDS_DEFAULT_LOCALE", "en"),
        SCHOOL_CONTACT=os.environ.get("WEEKLY_TRENDS_SCHOOL_CONTACT") or None,
    )
    if test_config is not None:
        app.config.update(test_config)
    settings.check_class_average_min(app.config["CLASS_AVERAGE_MIN_STUDENTS"])
    settings.check_default_locale(app.config["DEFAULT_LOCALE"])
    connection.check_seconds("STATEMENT_TIMEOUT", app.config["STATEMENT_TIMEOUT"], most=600)
    connection.pooler()  # a bad WEEKLY_TRENDS_DB_POOLER stops the app at start, not at the first CLI run
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = settings.instance_secret_key(app)
    if app.config["TRUSTED_PROXIES"]:
        # The client's address (the 429 lockout) and scheme (the Secure cookie), as the proxies saw them.
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.session_interface = settings.SessionInterface()
    settings.redact_tokens_in_request_log()

    from . import api, db, i18n, observability, pages, problems, ratelimit, scores, staff, unsubscribe

    if app.config["LOG_FORMAT"] == "json":
        observability.configure_logging()
    observability.init_app(app)
    db.init_app(app)
    i18n.init_app(app)
    ratelimit.init_app(app)
    problems.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(scores.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(unsubscribe.bp)

    @app.after_request
    def security_headers(response):
        # Inline SVG and a same-origin stylesheet only: no script, no frames, no third party.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # No URL of ours travels to another site as a Referer. (Not no-referrer: under it
        # Chrome sends "Origin: null" with same-origin POSTs, which the origin check refuses.)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            # Served over HTTPS: browsers keep to HTTPS for a year (not includeSubDomains: a
            # school's other hosts are not ours to commit).
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return app
