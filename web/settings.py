"""Settings read once, failing fast; the session cookie; the request log without tokens."""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

# Below this many students a class average could reveal a classmate's score.
CLASS_AVERAGE_FLOOR = 5


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def cores() -> int:
    """The CPUs this process may run on (a container's cpuset), not the host's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_class_average_min(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < CLASS_AVERAGE_FLOOR:
        raise ValueError(f"CLASS_AVERAGE_MIN_STUDENTS must be an integer of at least {CLASS_AVERAGE_FLOOR}, got {value!r}")
    return value


def check_default_locale(value: object) -> str:
    from .i18n import LANGUAGES, parse_locale

    if not isinstance(value, str) or parse_locale(value) is None:
        raise ValueError(f"WEEKLY_TRENDS_DEFAULT_LOCALE must be one of the shipped languages {sorted(LANGUAGES)}"
                         f" (a region may follow, e.g. en_GB), got {value!r}")
    return value


def default_locale() -> str:
    """The school's language (WEEKLY_TRENDS_DEFAULT_LOCALE, default en), checked: the mails' fallback (the
    pages read the same setting into app.config["DEFAULT_LOCALE"], web/__init__.py)."""
    return check_default_locale(os.environ.get("WEEKLY_TRENDS_DEFAULT_LOCALE", "en"))


def instance_secret_key(app: Flask) -> str:
    """The key kept in the instance folder, created on first start, so restarts keep sessions."""
    path = Path(app.instance_path) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or by another worker just now
        key = path.read_text().strip()
        if not key:
            raise RuntimeError(f"{path} is empty: delete it or set WEEKLY_TRENDS_SECRET_KEY") from None
        return key
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
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
