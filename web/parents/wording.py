"""What the parents' pages say, in the request's language: the trend sentence and the CSV headings
(the error pages' words: web/error_words.py).

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
    detail = (
        None
        if slope is None
        else _("%(slope)s points a week over the weeks with scores", slope=number(slope, signed=True))
    )
    return {"arrow": arrow, "word": str(word), "detail": detail}


# The CSV's display headings (?labels=1); the column keys themselves never change.
CSV_LABELS = {
    "scope": _l("Scope"),
    "course_id": _l("Course id"),
    "course_name": _l("Course"),
    "week": _l("Week"),
    "year": _l("Year"),
    "week_number": _l("Week number"),
    "week_start": _l("Week starts"),
    "overall_avg": _l("Overall average"),
    "quiz_avg": _l("Quiz average"),
    "assignment_avg": _l("Assignment average"),
    "quiz_count": _l("Quizzes"),
    "assignment_count": _l("Assignments"),
    "missing_count": _l("Missing work"),
    "class_average": _l("Class average"),
    "class_average_suppressed": _l("Class average hidden"),
    "alert": _l("Alert"),
}


def csv_header(columns: list[str]) -> list[str]:
    return [str(CSV_LABELS[column]) for column in columns]
