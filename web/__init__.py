"""Weekly Trends web app: the parents' page and JSON, and the staff pages (`flask --app web run`)."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from web import settings

# The answers that never name a student or a family: the only ones a cache may keep (/metrics sets its
# own no-store). Every other answer, errors and unmatched addresses included, is private: see below.
PUBLIC_ENDPOINTS = frozenset({"static", "operators.openapi_document", "operators.healthz", "operators.metrics"})


def private_unless_public(response: Response) -> Response:
    """Cache-Control: private, no-store on every answer but PUBLIC_ENDPOINTS': the one place it is set.

    Student data (the API, the CSV, the scores, the parents' and staff pages) and every error (an error
    on a student's URL is about that student) go to no shared cache (proxy, CDN), nor the browser's. A
    new route is covered without a word: only listing it above makes it public."""
    if request.endpoint not in PUBLIC_ENDPOINTS:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def create_app(test_config: dict | None = None, config: settings.Settings | None = None) -> Flask:
    """The app, with its settings checked once here (settings.Settings: a bad one is a SettingError naming
    it); `config` as the CLI built them (`weekly-trends serve`), else from the environment, with
    test_config's keys (app.config names) over them."""
    config = config or settings.Settings.load(overrides=test_config)
    app = Flask(__name__)
    # The app.config keys of old (web/settings.py SPECS says each one's variable, default and range):
    # DATABASE_URL None: the embedded server with EMBEDDED_DB, else none; DATABASE_READ_URL: a read replica for the parents' reads;
    # LOG_FORMAT json (one JSON object per log line) or text; POOL_TIMEOUT: seconds a request waits for a
    # pooled connection before a 503; AUTH_FAILURE_LIMIT/_WINDOW: 429 after that many failed
    # authentications from one address within the window (seconds); TRUSTED_PROXIES: proxies in front
    # that set X-Forwarded-*; METRICS_TOKEN/_ALLOW_FROM: who may read /metrics; DEFAULT_LOCALE and
    # SCHOOL_CONTACT: the parents' pages' fallback language and who to ask for a new link.
    app.config.from_mapping(
        config.config(),
        SETTINGS=config,
        READER_ROLE="weekly_trends_reader",
        STAFF_ROLE="weekly_trends_staff",
        SESSION_COOKIE_NAME="weekly_trends_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    if test_config is not None:
        app.config.update(test_config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = settings.instance_secret_key(app)
    if app.config["TRUSTED_PROXIES"]:
        # The client's address (the 429 lockout) and scheme (the Secure cookie), as the proxies saw them.
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.session_interface = settings.SessionInterface()
    settings.redact_tokens_in_request_log()

    # Imported here, not at the top: the blueprints' modules import web.* foundations, and `web` itself
    # must import without them (the CLI, the jobs).
    from web import db, i18n, observability, operators, problems, ratelimit
    from web.ops.embedded import database_url as embedded_database_url
    from web.parents import api, page, unsubscribe
    from web.staff import attention as staff_attention
    from web.staff import oidc as staff_oidc
    from web.staff import pages as staff_pages

    if app.config["LOG_FORMAT"] == "json":
        observability.configure_logging()
    observability.init_app(app)
    # Without DATABASE_URL the embedded server only where asked (WEEKLY_TRENDS_EMBEDDED_DB=1: `make run`);
    # else the first database use fails saying DATABASE_URL is not set (/healthz reports the primary down).
    db.init_app(app, default_url=(lambda: embedded_database_url(config)) if config.embedded_db else None)
    if config.database_url is None and not config.embedded_db:
        app.logger.warning(
            "DATABASE_URL is not set: every database use will fail (WEEKLY_TRENDS_EMBEDDED_DB=1: development)"
        )
    i18n.init_app(app)
    ratelimit.init_app(app)
    problems.init_app(app)
    app.register_blueprint(operators.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(page.bp)
    app.register_blueprint(staff_pages.bp)
    app.register_blueprint(staff_oidc.bp)
    staff_oidc.init_app(app)
    app.register_blueprint(staff_attention.api_bp)
    app.register_blueprint(unsubscribe.bp)

    app.after_request(private_unless_public)

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
