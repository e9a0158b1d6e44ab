"""What the parents' pages say, in the request's language: the trend sentence and the CSV headings
(the error pages' words: web/error_words.py).

Strings are marked for extraction (`make catalogs`) with lazy_gettext where they live at import time.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from web.student_view import TREND_WORDS, trend_sentence  # noqa: E402,F401 - their home: shared with staff

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
