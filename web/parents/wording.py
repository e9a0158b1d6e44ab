"""What the parents' pages say, in the request's language: the trend sentence, error pages, CSV headings.

Strings are marked for extraction (`make catalogs`) with lazy_gettext where they live at import time.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web.i18n import number

TREND_WORDS = {
    "improving": ("↗", _l("Improving")),
    "declining": ("↘", _l("Declining")),
    "stable": ("→", _l("Steady")),
    "insufficient_data": ("·", _l("Not enough weeks with scores yet to show a trend")),
}


def trend_sentence(trend: dict) -> dict:
    """The trend line: arrow, word, and the slope as "+1.72 points a week" in the locale's numbers."""
    arrow, word = TREND_WORDS[trend["direction"]]
    slope = trend["slope_per_week"]
    detail = None if slope is None else _("%(slope)s points a week over the weeks with scores", slope=number(slope, signed=True))
    return {"arrow": arrow, "word": str(word), "detail": detail}


# The CSV's display headings (?labels=1); the column keys themselves never change.
CSV_LABELS = {
    "scope": _l("Scope"), "course_id": _l("Course id"), "course_name": _l("Course"), "week": _l("Week"),
    "year": _l("Year"), "week_number": _l("Week number"), "week_start": _l("Week starts"),
    "overall_avg": _l("Overall average"), "quiz_avg": _l("Quiz average"), "assignment_avg": _l("Assignment average"),
    "quiz_count": _l("Quizzes"), "assignment_count": _l("Assignments"), "class_average": _l("Class average"),
    "class_average_suppressed": _l("Class average hidden"), "alert": _l("Alert"),
}


def csv_header(columns: list[str]) -> list[str]:
    return [str(CSV_LABELS[column]) for column in columns]


# Error pages: a title and what happened, in words (never a protocol detail).
ERROR_WORDS = {
    400: (_l("That address is not quite right"),
          _l("Part of the web address could not be understood. Go back to your child's page and follow its links.")),
    401: (_l("Please sign in"),
          _l("To see your child's weekly scores, open the sign-in link the school sent you by email. "
             "It signs you in on this device.")),
    403: (_l("This request was refused"),
          _l("For your safety, the page only accepts requests made from its own pages. Go back and try again.")),
    404: (_l("We could not find that page"),
          _l("The page does not exist, or it is about a child who is not linked to your account.")),
    405: (_l("That action is not available here"), _l("Go back to your child's page and try again from there.")),
    429: (_l("Too many attempts"),
          _l("There were too many unsuccessful sign-in attempts from your connection. Please wait a few minutes and try again.")),
}
REASON_WORDS = {
    "bad_link": (_l("This sign-in link does not work"),
                 _l("The link is unknown, has expired, or was replaced by a newer one. "
                    "Use the latest link the school sent you, or ask for a new one.")),
}
UNEXPECTED = (_l("Something went wrong"), _l("Please try again in a moment."))


def error_words(status: int, reason: str | None = None) -> tuple[str, str]:
    title, text = REASON_WORDS.get(reason) or ERROR_WORDS.get(status, UNEXPECTED)
    return str(title), str(text)
