"""Settings read once, failing fast (the Settings object); the session cookie; the request log without tokens.

Every setting the app and the CLI read is a field of Settings, built and checked once at start by
create_app() and by the CLI's main() (Settings.load()), then passed down: app.config["SETTINGS"] (and
the app.config keys of old), or a parameter of the CLI's jobs. Nothing reads the environment later.
A bad value stops the start with a SettingError naming the variable and what it accepts.

A frozen dataclass, not pydantic-settings: some thirty fields, each with its own check and message, need
no new dependency; the checks below say in one place what each setting accepts (README's table).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import mailbox
import math
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

# Below this many students a class average could reveal a classmate's score.
CLASS_AVERAGE_FLOOR = 5
INT4_MAX = 2**31 - 1
# The most a OneRoster set may hold uncompressed, in MB (1 MB to 1 TB).
IMPORT_MAX_MB_RANGE = (1, 1024 * 1024)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where the embedded server's data (.pgdata) and the maildir go unless set: beside the source in a checkout
# (make run, make test); an installed package (site-packages is no place for data) uses the directory the
# command started in.
DEFAULT_HOME = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else Path.cwd()


# Said by the CLI (exit status 2) and by the app's first database use when neither is set.
NO_DATABASE_URL = (
    "DATABASE_URL is not set: set it to your PostgreSQL (postgresql://user@host:5432/dbname). For development"
    " only, WEEKLY_TRENDS_EMBEDDED_DB=1 starts the bundled PostgreSQL in WEEKLY_TRENDS_DATA_DIR instead"
    " (`make run` sets it)."
)


class SettingError(ValueError):
    """A setting with a value it does not accept: the message names it and says what it accepts."""


# ---- the checks: each takes the variable's name and the raw value (text from the environment, or a
# typed value from create_app(test_config)), and returns the value or raises SettingError.


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def integer(low: int, high: int) -> Callable[..., int]:
    def check(name: str, value: Any, from_text: bool = True) -> int:
        if from_text and isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,19}\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingError(f"{name} must be an integer from {low} to {high}, got {value!r}")
        return value

    return check


def number(low: float, high: float, *, zero_means: str | None = None) -> Callable[..., float]:
    """Seconds and the like: a finite number above `low` (exclusive) up to `high`; 0 too when it means
    something (`zero_means`, e.g. "none")."""

    def check(name: str, value: Any, from_text: bool = True) -> float:
        raw = value
        if from_text and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                value = raw
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not (low < value <= high or (zero_means is not None and value == 0))
        ):
            also = f" (or 0: {zero_means})" if zero_means is not None else ""
            raise SettingError(
                f"{name} must be a number of seconds above {low:g} and at most {high:g}{also}, got {raw!r}"
            )
        return float(value)

    return check


def one_of(*choices: str) -> Callable[..., str]:
    def check(name: str, value: Any, from_text: bool = True) -> str:
        text = _text(value)
        if text is None or text.strip().lower() not in choices:
            raise SettingError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return text.strip().lower()

    return check


PERIOD = re.compile(r"\s*(\d{1,4})\s*(year|month|week|day)s?\s*", re.IGNORECASE)


def period(optional: bool) -> Callable[..., str | None]:
    """A length of time as PostgreSQL reads an interval, e.g. "3 years", "18 months", "1 year 6 months"
    (years, months, weeks, days); empty: unset (only when optional)."""

    def check(name: str, value: Any, from_text: bool = True) -> str | None:
        text = _text(value)
        if optional and (text is None or text.strip() == ""):
            return None
        parts = [] if text is None else PERIOD.findall(text)
        if (
            text is None
            or not re.fullmatch(f"(?:{PERIOD.pattern})+", text, re.IGNORECASE)
            or not any(int(n) for n, _ in parts)
        ):
            raise SettingError(
                f"{name} must be a length of time such as '3 years', '18 months' or '90 days', got {value!r}"
            )
        return " ".join(f"{int(n)} {u.lower()}{'s' if int(n) != 1 else ''}" for n, u in parts)

    return check


def optional_text(name: str, value: Any, from_text: bool = True) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise SettingError(f"{name} must be text without control characters, got {value!r}")
    return value


def locale_tag(name: str, value: Any, from_text: bool = True) -> str:
    from web.i18n import LANGUAGES, parse_locale

    if not isinstance(value, str) or parse_locale(value) is None:
        raise SettingError(
            f"{name} must be one of the shipped languages {sorted(LANGUAGES)}"
            f" (a region may follow, e.g. en_GB), got {value!r}"
        )
    return value


def time_zone(name: str, value: Any, from_text: bool = True) -> str:
    try:
        if not isinstance(value, str) or not value or value != value.strip():
            raise ValueError
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"{name} must be an IANA time zone name (e.g. Europe/London), got {value!r}") from None
    return value


def database_uri(name: str, value: Any, from_text: bool = True) -> str | None:
    """A libpq connection string or URI (postgresql://…); empty: unset."""
    if value is None or value == "":
        return None
    from psycopg.conninfo import conninfo_to_dict

    try:
        if not isinstance(value, str):
            raise ValueError
        ports = conninfo_to_dict(value).get("port") or "5432"
        if not all(p.isdigit() and 0 < int(p) < 65536 for p in str(ports).split(",")):
            raise ValueError
    except Exception:  # psycopg.ProgrammingError for a malformed one
        raise SettingError(
            f"{name} must be a libpq connection URI (postgresql://user@host:5432/dbname)"
            f" or key=value string, got one it cannot parse"
        ) from None  # may hold a password
    return value


def http_url(name: str, value: Any, from_text: bool = True) -> str:
    text = _text(value)
    parts = urlsplit(text) if text else None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in text):
        raise SettingError(f"{name} must be an http(s) address (e.g. https://trends.school.example), got {value!r}")
    return text.rstrip("/")


FLAG_TRUE, FLAG_FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def flag(name: str, value: Any, from_text: bool = True) -> bool:
    """Yes or no: 1/true/yes/on, 0/false/no/off (any case)."""
    if isinstance(value, bool):
        return value
    text = _text(value)
    if text is not None and text.strip().lower() in FLAG_TRUE | FLAG_FALSE:
        return text.strip().lower() in FLAG_TRUE
    raise SettingError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {value!r}")


# What starttls= accepts as yes in SMTP_URL.
SMTP_TRUE = {"1", "true", "yes", "on", "required"}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # TLS from the first byte (smtps)
    starttls: bool
    user: str | None
    password: str | None
    timeout: float


def parse_smtp_url(url: str) -> SmtpServer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, got {parts.scheme or 'no scheme'}")
    if not parts.hostname:
        raise ValueError("SMTP_URL has no host")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls", "timeout"}
    if unknown:
        raise ValueError(f"SMTP_URL: unknown option(s) {', '.join(sorted(unknown))} (known: starttls, timeout)")
    tls = parts.scheme == "smtps"
    starttls = query.get("starttls", "false").lower() in SMTP_TRUE
    if tls and starttls:
        raise ValueError("SMTP_URL: smtps:// is TLS already; starttls applies to smtp:// only")
    try:
        port = parts.port or (465 if tls else 25)
        timeout = float(query.get("timeout", "30"))
    except ValueError as error:
        raise ValueError(f"SMTP_URL: {error}") from None
    return SmtpServer(
        host=parts.hostname,
        port=port,
        tls=tls,
        starttls=starttls,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )


def smtp_url(name: str, value: Any, from_text: bool = True) -> str | None:
    if value is None or value == "":
        return None
    try:
        parse_smtp_url(value)
    except (ValueError, TypeError, AttributeError) as error:
        raise SettingError(
            f"{name}: {error} (smtp://[user:password@]host[:port][?starttls=true&timeout=30] or smtps://…)"
        ) from None
    return value


def email_address(name: str, value: Any, from_text: bool = True) -> str:
    text = _text(value)
    if not text or "@" not in parseaddr(text)[1] or any(ord(c) < 32 for c in text):
        raise SettingError(
            f"{name} must be an email address (e.g. Weekly Trends <no-reply@school.example>), got {value!r}"
        )
    return text


def path(name: str, value: Any, from_text: bool = True) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value or "\x00" in value:
        raise SettingError(f"{name} must be a path, got {value!r}")
    return Path(value)


def issuer_url(name: str, value: Any, from_text: bool = True) -> str | None:
    """An OpenID provider's issuer, exactly as its ID tokens' iss claim says it (no slash added or taken)."""
    if value is None or value == "":
        return None
    text = _text(value)
    parts = urlsplit(text) if text else None
    if (
        not parts
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
        or any(c.isspace() or ord(c) < 32 for c in text)
    ):
        raise SettingError(
            f"{name} must be the OpenID provider's issuer URL (e.g. https://accounts.google.com), got {value!r}"
        )
    return text


DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


def domains(name: str, value: Any, from_text: bool = True) -> tuple[str, ...]:
    """Comma-separated mail domains (school.example, staff.school.example), lower-cased; empty: any."""
    parts = list(value) if isinstance(value, (list, tuple)) else value.split(",") if isinstance(value, str) else [None]
    if not all(isinstance(p, str) for p in parts):
        raise SettingError(f"{name} must be comma-separated mail domains (e.g. school.example), got {value!r}")
    cleaned = tuple(p.strip().lower() for p in parts if p.strip())
    bad = [d for d in cleaned if not DOMAIN.fullmatch(d)]
    if bad:
        raise SettingError(f"{name} must be comma-separated mail domains (e.g. school.example), not {bad[0]!r}")
    return cleaned


def networks(name: str, value: Any, from_text: bool = True) -> str:
    """Comma-separated addresses or CIDR networks (empty: none)."""
    text = "" if value is None else value
    if not isinstance(text, str):
        raise SettingError(f"{name} must be comma-separated addresses or networks, got {value!r}")
    try:
        [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise SettingError(
            f"{name} must be comma-separated addresses or networks (e.g. 10.0.0.0/8, ::1): {error}"
        ) from None
    return text


@dataclass(frozen=True)
class Spec:
    field: str
    env: tuple[str, ...]  # the variables, the first set wins
    config: str  # its app.config key (and create_app(test_config)'s)
    default: Any
    check: Callable[..., Any]  # (variable, raw value, from_text) -> the value, or SettingError


SPECS = (
    Spec("database_url", ("DATABASE_URL",), "DATABASE_URL", None, database_uri),
    Spec("database_read_url", ("DATABASE_READ_URL",), "DATABASE_READ_URL", None, database_uri),
    # Development only: without DATABASE_URL, start the bundled PostgreSQL (`make run` sets it); else exit 2.
    Spec("embedded_db", ("WEEKLY_TRENDS_EMBEDDED_DB",), "EMBEDDED_DB", False, flag),
    Spec("data_dir", ("WEEKLY_TRENDS_DATA_DIR",), "DATA_DIR", DEFAULT_HOME / ".pgdata", path),
    Spec("secret_key", ("WEEKLY_TRENDS_SECRET_KEY", "SECRET_KEY"), "SECRET_KEY", None, optional_text),
    Spec("log_format", ("WEEKLY_TRENDS_LOG_FORMAT",), "LOG_FORMAT", "json", one_of("json", "text")),
    Spec("pool_min_size", ("WEEKLY_TRENDS_POOL_MIN_SIZE",), "POOL_MIN_SIZE", 1, integer(0, 1000)),
    # None: 10, or under `weekly-trends serve` one per thread.
    Spec("pool_max_size", ("WEEKLY_TRENDS_POOL_MAX_SIZE",), "POOL_MAX_SIZE", None, integer(1, 1000)),
    Spec("pool_open_timeout", ("WEEKLY_TRENDS_POOL_OPEN_TIMEOUT",), "POOL_OPEN_TIMEOUT", 10.0, number(0, 3600)),
    Spec("pool_timeout", ("WEEKLY_TRENDS_POOL_TIMEOUT",), "POOL_TIMEOUT", 10.0, number(0, 3600)),
    # A request's statements (set local statement_timeout; a server that does not answer is given up 1 s
    # later, web/db.py): with POOL_TIMEOUT, the bound on a 503 when the database freezes.
    Spec("statement_timeout", ("WEEKLY_TRENDS_STATEMENT_TIMEOUT",), "STATEMENT_TIMEOUT", 5.0, number(0, 600)),
    # The CLI's statement_timeout in seconds (0: none), a startup option (web/connection.py).
    Spec(
        "cli_statement_timeout",
        ("WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT",),
        "CLI_STATEMENT_TIMEOUT",
        600.0,
        number(0, 86_400, zero_means="none"),
    ),
    # "transaction": behind a transaction-mode pooler (PgBouncer), which refuses startup options.
    Spec("db_pooler", ("WEEKLY_TRENDS_DB_POOLER",), "DB_POOLER", "none", one_of("none", "transaction")),
    Spec(
        "class_average_min_students",
        ("WEEKLY_TRENDS_CLASS_AVERAGE_MIN_STUDENTS",),
        "CLASS_AVERAGE_MIN_STUDENTS",
        10,
        integer(CLASS_AVERAGE_FLOOR, 100_000),
    ),
    Spec("auth_failure_limit", ("WEEKLY_TRENDS_AUTH_FAILURE_LIMIT",), "AUTH_FAILURE_LIMIT", 10, integer(1, INT4_MAX)),
    Spec(
        "auth_failure_window",
        ("WEEKLY_TRENDS_AUTH_FAILURE_WINDOW",),
        "AUTH_FAILURE_WINDOW",
        300,
        integer(1, 7 * 24 * 3600),
    ),
    Spec("trusted_proxies", ("WEEKLY_TRENDS_TRUSTED_PROXIES",), "TRUSTED_PROXIES", 0, integer(0, 10)),
    Spec("metrics_token", ("WEEKLY_TRENDS_METRICS_TOKEN",), "METRICS_TOKEN", None, optional_text),
    Spec("metrics_allow_from", ("WEEKLY_TRENDS_METRICS_ALLOW_FROM",), "METRICS_ALLOW_FROM", "", networks),
    Spec("default_locale", ("WEEKLY_TRENDS_DEFAULT_LOCALE",), "DEFAULT_LOCALE", "en", locale_tag),
    Spec("school_contact", ("WEEKLY_TRENDS_SCHOOL_CONTACT",), "SCHOOL_CONTACT", None, optional_text),
    Spec("school_time_zone", ("WEEKLY_TRENDS_SCHOOL_TIME_ZONE",), "SCHOOL_TIME_ZONE", "UTC", time_zone),
    Spec("import_time_zone", ("WEEKLY_TRENDS_IMPORT_TIME_ZONE",), "IMPORT_TIME_ZONE", "UTC", time_zone),
    Spec("import_max_mb", ("WEEKLY_TRENDS_IMPORT_MAX_MB",), "IMPORT_MAX_MB", 2048, integer(*IMPORT_MAX_MB_RANGE)),
    # Issue 25: how long scores, weekly rows, deliveries and record entries are kept (unset: forever), and
    # how long a student without scores stays before `weekly-trends purge` erases them.
    Spec("retention", ("WEEKLY_TRENDS_RETENTION",), "RETENTION", None, period(optional=True)),
    Spec("left_grace", ("WEEKLY_TRENDS_LEFT_GRACE",), "LEFT_GRACE", "90 days", period(optional=False)),
    Spec("alert_drop_points", ("WEEKLY_TRENDS_ALERT_DROP_POINTS",), "ALERT_DROP_POINTS", 10, integer(1, 100)),
    Spec("alert_min_scores", ("WEEKLY_TRENDS_ALERT_MIN_SCORES",), "ALERT_MIN_SCORES", 2, integer(1, 1000)),
    Spec("rights_age", ("WEEKLY_TRENDS_RIGHTS_AGE",), "RIGHTS_AGE", 18, integer(1, 150)),
    Spec(
        "student_access",
        ("WEEKLY_TRENDS_STUDENT_ACCESS",),
        "STUDENT_ACCESS",
        "eligible",
        one_of("eligible", "all", "off"),
    ),
    Spec("attention_below", ("WEEKLY_TRENDS_ATTENTION_BELOW",), "ATTENTION_BELOW", 60, integer(1, 100)),
    Spec("attention_missing_at", ("WEEKLY_TRENDS_ATTENTION_MISSING_AT",), "ATTENTION_MISSING_AT", 2, integer(1, 1000)),
    Spec("digest_max_attempts", ("WEEKLY_TRENDS_DIGEST_MAX_ATTEMPTS",), "DIGEST_MAX_ATTEMPTS", 3, integer(1, 100)),
    Spec("digest_link_days", ("WEEKLY_TRENDS_DIGEST_LINK_DAYS",), "DIGEST_LINK_DAYS", 14, integer(1, 30)),
    Spec(
        "mail_backend",
        ("WEEKLY_TRENDS_MAIL_BACKEND", "MAIL_BACKEND"),
        "MAIL_BACKEND",
        "smtp",
        one_of("smtp", "maildir"),
    ),
    Spec("smtp_url", ("WEEKLY_TRENDS_SMTP_URL", "SMTP_URL"), "SMTP_URL", None, smtp_url),
    Spec("maildir", ("WEEKLY_TRENDS_MAILDIR", "MAILDIR"), "MAILDIR", DEFAULT_HOME / "maildir", path),
    Spec(
        "mail_from",
        ("WEEKLY_TRENDS_MAIL_FROM", "MAIL_FROM"),
        "MAIL_FROM",
        "Weekly Trends <no-reply@localhost>",
        email_address,
    ),
    # None: http://127.0.0.1:5000 (the demo mail: its --port)
    Spec("public_base_url", ("WEEKLY_TRENDS_PUBLIC_BASE_URL", "PUBLIC_BASE_URL"), "PUBLIC_BASE_URL", None, http_url),
    # Staff sign-in with the school's accounts (OpenID Connect, web/staff/oidc.py); unset: printed tokens only.
    Spec("oidc_issuer", ("WEEKLY_TRENDS_OIDC_ISSUER",), "OIDC_ISSUER", None, issuer_url),
    Spec("oidc_client_id", ("WEEKLY_TRENDS_OIDC_CLIENT_ID",), "OIDC_CLIENT_ID", None, optional_text),
    Spec("oidc_client_secret", ("WEEKLY_TRENDS_OIDC_CLIENT_SECRET",), "OIDC_CLIENT_SECRET", None, optional_text),
    Spec("oidc_allowed_domains", ("WEEKLY_TRENDS_OIDC_ALLOWED_DOMAINS",), "OIDC_ALLOWED_DOMAINS", (), domains),
)


@dataclass(frozen=True)
class Settings:
    """Every setting, checked (SPECS says each one's variable, default and range)."""

    database_url: str | None
    database_read_url: str | None
    embedded_db: bool
    data_dir: Path
    secret_key: str | None
    log_format: str
    pool_min_size: int
    pool_max_size: int | None
    pool_open_timeout: float
    pool_timeout: float
    statement_timeout: float
    cli_statement_timeout: float
    db_pooler: str
    class_average_min_students: int
    auth_failure_limit: int
    auth_failure_window: int
    trusted_proxies: int
    metrics_token: str | None
    metrics_allow_from: str
    default_locale: str
    school_contact: str | None
    school_time_zone: str
    import_time_zone: str
    import_max_mb: int
    retention: str | None
    left_grace: str
    alert_drop_points: int
    alert_min_scores: int
    rights_age: int
    student_access: str
    attention_below: int
    attention_missing_at: int
    digest_max_attempts: int
    digest_link_days: int
    mail_backend: str
    smtp_url: str | None
    maildir: Path
    mail_from: str
    public_base_url: str | None
    oidc_issuer: str | None
    oidc_client_id: str | None
    oidc_client_secret: str | None
    oidc_allowed_domains: tuple[str, ...]

    @property
    def alert_thresholds(self) -> tuple[int, int]:
        """The sustained-decline alert's (N, M): WEEKLY_TRENDS_ALERT_DROP_POINTS and _MIN_SCORES (the rule
        itself: weekly_trend_alerts() in db/functions/600_weekly_trend_alerts.sql)."""
        return self.alert_drop_points, self.alert_min_scores

    @property
    def access_options(self) -> dict[str, str]:
        """The database settings every connection carries (guardian_link_state(), db/functions/
        140_guardian_access.sql, reads them): WEEKLY_TRENDS_RIGHTS_AGE and WEEKLY_TRENDS_STUDENT_ACCESS."""
        return {"weekly_trends.rights_age": str(self.rights_age), "weekly_trends.student_access": self.student_access}

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
        """From the environment (os.environ), each value checked; `overrides` (create_app's test_config, by
        app.config key) win over it. SettingError names the first bad one."""
        environ = os.environ if environ is None else environ
        overrides = overrides or {}
        values = {}
        for spec in SPECS:
            name = spec.env[0]
            from_text = spec.config not in overrides  # create_app(test_config) gives typed values
            if not from_text:
                raw = overrides[spec.config]
            else:
                raw = spec.default
                for variable in spec.env:
                    if environ.get(variable):  # set and not empty
                        name, raw = variable, environ[variable]
                        break
            values[spec.field] = None if raw is None and spec.default is None else spec.check(name, raw, from_text)
        settings = cls(**values)
        if settings.pool_max_size is not None and settings.pool_min_size > settings.pool_max_size:
            raise SettingError(
                f"WEEKLY_TRENDS_POOL_MIN_SIZE ({settings.pool_min_size}) must be at most"
                f" WEEKLY_TRENDS_POOL_MAX_SIZE ({settings.pool_max_size})"
            )
        if settings.oidc_issuer and not (settings.oidc_client_id and settings.oidc_client_secret):
            raise SettingError(
                "WEEKLY_TRENDS_OIDC_ISSUER is set: WEEKLY_TRENDS_OIDC_CLIENT_ID and WEEKLY_TRENDS_OIDC_CLIENT_SECRET"
                " must be set too (the app's registration at the provider)"
            )
        return settings

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def school_zone(self) -> ZoneInfo:
        return ZoneInfo(self.school_time_zone)

    def config(self) -> dict[str, Any]:
        """The app.config keys of old, from these settings."""
        values = {spec.config: getattr(self, spec.field) for spec in SPECS}
        values["POOL_MAX_SIZE"] = self.pool_max_size or 10
        return values


def ensure_maildir(directory: Path, name: str = "MAILDIR") -> None:
    """At the start of a command that writes mail to a maildir: it exists (made if need be) and takes a file."""
    try:
        mailbox.Maildir(directory, create=True)
        with tempfile.TemporaryFile(dir=directory / "tmp"):  # where the backend writes each message first
            pass
    except OSError as error:
        raise SettingError(
            f"{name} must be a maildir this user can write to: {directory}: {error.strerror or error}"
        ) from None


def cores() -> int:
    """The CPUs this process may run on (a container's cpuset), not the host's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def instance_secret_key(app: Flask) -> str:
    """The key kept in the instance folder, created on first start, so restarts keep sessions.

    `serve`'s workers each build the app after the fork, so on a first start several look for the key at
    once: the key is written whole under a name of its own, then linked into place (the first link wins,
    the others read it), so no worker ever reads a file created but not yet written."""
    path = Path(app.instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd, written = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            try:
                os.link(written, path)
            except FileExistsError:  # another worker's key is in place: it is the one
                pass
        finally:
            os.unlink(written)
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it or set WEEKLY_TRENDS_SECRET_KEY")
    return key


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


class RedactTokens(logging.Filter):
    """Werkzeug logs each request line: /login?token=… must not put the token in the log."""

    PATTERN = re.compile(r"(token=)[^&\s\"]+|wts?_[0-9a-f]{64}", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.PATTERN.sub(lambda m: (m.group(1) or "") + "[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def redact_tokens_in_request_log() -> None:
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
