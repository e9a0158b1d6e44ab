"""A student's figures as the family's page shows them, for the parents' page and the staff's student page
alike (the shared template student_figures.html): the trend sentence, each week's names, the chart, the
alert and the last update, from the weekly-trend answer (weekly_trend_json() / staff_student_page())."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web import i18n
from web.chart import line_chart
from web.i18n import number
from web.isoweek import iso_week_name

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


def local_time(value: str | None, time_zone: str) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(ZoneInfo(time_zone))


def week_names(weeks: list[dict]) -> None:
    """Each week's ISO name (2024-W03) and its Monday as the reader reads it, added in place."""
    for week in weeks:
        monday = date.fromisoformat(week["week_start"])
        week["iso"] = iso_week_name(monday)
        week["date_label"] = i18n.short_date(monday)


def figures_context(stats: dict, student: dict, page: dict, alert_drop_points: int) -> dict:
    """What student_figures.html needs, from the answer's weekly_stats, the student and the page's extras."""
    week_names(stats["weekly_trend"])
    for course in stats["courses"]:
        week_names(course["weeks"])
    updated = local_time(stats["last_updated"], student["time_zone"])
    flagged = [w for w in stats["weekly_trend"] if w.get("alert")]
    return {
        "student": student,
        "stats": stats,
        "latest_alert": flagged[-1] if flagged else None,
        "alert_drop": alert_drop_points,
        "chart": line_chart(stats["weekly_trend"], [w["date_label"] for w in stats["weekly_trend"]], stats["courses"]),
        "trend": trend_sentence(stats["trend"]),
        "last_updated": updated and format_datetime(updated, "medium", locale=get_locale()),
        "any_suppressed": any(w["class_average_suppressed"] for c in stats["courses"] for w in c["weeks"]),
        # False while the class view is unpopulated (after a restore, until its refresh): no class averages yet.
        "class_averages_available": page.get("class_averages_available", True),
    }
