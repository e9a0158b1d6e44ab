"""Languages of the parents' pages: Flask-Babel, the locale choice, and Babel's number and date formats.

The locale is, in order: the signed-in guardian's saved choice (guardian.preferred_language), or
when signed out the choice made on the page (kept in the session), then the browser's
Accept-Language matched against the languages shipped (its region kept for number formats), else
the school default (WEEKLY_TRENDS_DEFAULT_LOCALE).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal
from flask import Flask, current_app, g, request, session
from flask_babel import Babel, get_locale, gettext, refresh

TRANSLATIONS = Path(__file__).with_name("translations")
# The languages shipped, complete (tests/test_i18n.py): code -> name in that language.
LANGUAGES = {"en": "English", "es": "Español", "ar": "العربية"}
SESSION_KEY = "language"


def parse_locale(tag: str | None) -> Locale | None:
    """A locale of a shipped language from a tag like "es", "en-GB" or "ar_EG"; None otherwise."""
    if not tag or len(tag) > 35:
        return None
    try:
        locale = Locale.parse(tag.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return locale if locale.language in LANGUAGES else None


def select_locale() -> Locale:
    # Signed in: the guardian's own choice only (another guardian's, made earlier in this browser, is not theirs).
    chosen = g.guardian_language if "guardian_language" in g else session.get(SESSION_KEY)
    if (locale := parse_locale(chosen)) is not None:
        return locale
    for tag, _quality in request.accept_languages:  # best first
        if (locale := parse_locale(tag)) is not None:
            return locale
    return parse_locale(current_app.config["DEFAULT_LOCALE"]) or Locale("en")


def remember_guardian_language(conn: psycopg.Connection, guardian_id: int) -> None:
    """The guardian's saved language decides this request's locale (call once authenticated)."""
    row = conn.execute("select preferred_language from guardian where id = %s", (guardian_id,)).fetchone()
    g.guardian_language = row["preferred_language"] if row else None
    refresh()


def save_guardian_language(conn: psycopg.Connection, language: str) -> None:
    """Save the authenticated guardian's choice (conn on the primary, acting for that guardian)."""
    conn.execute("select set_guardian_language(%s)", (language,))
    g.guardian_language = language
    refresh()


def text_direction() -> str:
    return get_locale().text_direction


# The formats, for any locale: the pages pass the request's (get_locale()), the mails the guardian's.


def format_number(value: float | None, locale: Locale, signed: bool = False) -> str:
    """A score or slope with two decimals in the locale's digits and separators."""
    pattern = "+#,##0.00;-#,##0.00" if signed else "#,##0.00"
    return format_decimal(value, pattern, locale=locale)


def format_short_date(day: date, locale: Locale) -> str:
    """A week's Monday as a parent reads it, day first in every language we ship: "26 Oct", "26 oct",
    "26 أكتوبر" (the issue's own example; the locale gives the month's name and the digits)."""
    return format_date(day, "d MMM", locale=locale)


def format_long_date(day: date, locale: Locale) -> str:
    """The same with the year: "26 Oct 2026"."""
    return format_date(day, "d MMM y", locale=locale)


def format_day(day: date, locale: Locale) -> str:
    """A day of the week with its date, as a due date reads: "Tue 3 Nov", "mar 3 nov"."""
    return format_date(day, "EEE d MMM", locale=locale)


def number(value: float | None, signed: bool = False) -> str:
    return format_number(value, get_locale(), signed)


def number_or_none(value: float | None) -> str:
    return gettext("no scores") if value is None else number(value)


def integer(value: int) -> str:
    return format_decimal(value, "#,##0", locale=get_locale())


def short_date(day: date) -> str:
    return format_short_date(day, get_locale())


def long_date(day: date) -> str:
    return format_long_date(day, get_locale())


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)

    @app.context_processor
    def language_context():
        return {
            "LANGUAGES": LANGUAGES,
            "current_locale": get_locale,
            "text_direction": text_direction,
            "num": number,
            "integer": integer,
            "num_or_none": number_or_none,
            "short_date": short_date,
            "long_date": long_date,
        }
