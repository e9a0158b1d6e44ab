"""The trend rule in Python (the tests' oracle checks the SQL trend_json() against it), the alert
thresholds, and the weekly digest's figures for one child (read as the owner, from the weekly rows
and weekly_trend_alerts(); the parents' answers come from weekly_trend_json() instead)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from math import floor

import psycopg
from psycopg.rows import tuple_row

MIN_TREND_WEEKS = 3
STABLE_BELOW = 1  # points a week
# The sustained-decline alert's thresholds (the rule: weekly_trend_alerts() in db/functions/600_weekly_trend_alerts.sql).
ALERT_DROP_POINTS = 10
ALERT_MIN_SCORES = 2


def alert_thresholds() -> tuple[int, int]:
    """(N, M): WEEKLY_TRENDS_ALERT_DROP_POINTS and WEEKLY_TRENDS_ALERT_MIN_SCORES, checked."""
    from .settings import env_int

    drop = env_int("WEEKLY_TRENDS_ALERT_DROP_POINTS", ALERT_DROP_POINTS)
    min_scores = env_int("WEEKLY_TRENDS_ALERT_MIN_SCORES", ALERT_MIN_SCORES)
    if drop < 1 or min_scores < 1:
        raise ValueError("WEEKLY_TRENDS_ALERT_DROP_POINTS and WEEKLY_TRENDS_ALERT_MIN_SCORES must be at least 1")
    return drop, min_scores


def week_alerts(conn: psycopg.Connection, student_id: int, mondays: list[date],
                thresholds: tuple[int, int] | None = None) -> dict[date, str | None]:
    """The alert of each week ('declining', 'back_on_track' or None), by Monday."""
    drop, min_scores = thresholds or alert_thresholds()
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            "select week_start_date, alert from weekly_trend_alerts(%s, %s, %s, %s, %s)",
            (student_id, mondays[0], mondays[-1], drop, min_scores),
        )
        return dict(cur.fetchall())


def as_float(value: Decimal | None) -> float | None:
    # 0.00 is a score, not "no data": test for None, never for truthiness.
    return None if value is None else float(value)


def round_half_away(value: Fraction, places: int = 2) -> float:
    """value rounded half away from zero, as the database's round(numeric) does."""
    scale = 10**places
    magnitude = floor(abs(value) * scale + Fraction(1, 2))
    return float(Fraction(magnitude if value >= 0 else -magnitude, scale))


def least_squares_slope(points: list[tuple[int, Decimal | float]]) -> Fraction:
    """Slope of the least-squares line through (x, y), exactly (needs two distinct x)."""
    xs = [Fraction(x) for x, _ in points]
    ys = [Fraction(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)


def trend_indicator(overall: list[Decimal | float | None]) -> dict:
    """Direction and slope of overall averages, one per week in order, None for a week without data.

    x is the week's index in the range, so a gap keeps its width.
    """
    points = [(index, value) for index, value in enumerate(overall) if value is not None]
    if len(points) < MIN_TREND_WEEKS:
        return {"direction": "insufficient_data", "slope_per_week": None}
    slope = least_squares_slope(points)
    if abs(slope) < STABLE_BELOW:
        direction = "stable"
    else:
        direction = "improving" if slope > 0 else "declining"
    return {"direction": direction, "slope_per_week": round_half_away(slope)}


def week_range(end: date, weeks: int) -> list[date]:
    """The Mondays of the `weeks` ISO weeks ending with the one holding `end`, oldest first."""
    last_monday = end - timedelta(days=end.isoweekday() - 1)
    return [last_monday - timedelta(weeks=n) for n in reversed(range(weeks))]


def week_label(monday: date) -> dict:
    iso_year, iso_week, _ = monday.isocalendar()
    return {"week": f"W{iso_week}", "year": iso_year, "week_number": iso_week, "week_start": monday.isoformat()}


def week_figures(row: dict) -> dict:
    """Averages and counts of one aggregate row ({} for a week without data)."""
    return {
        "overall_avg": as_float(row.get("overall_average")),
        "quiz_avg": as_float(row.get("quiz_average")),
        "assignment_avg": as_float(row.get("assignment_average")),
        "quiz_count": row.get("quiz_count", 0),
        "assignment_count": row.get("assignment_count", 0),
    }


def iso_timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat()



def weekly_stats(conn: psycopg.Connection, student_id: int, end: date, weeks: int,
                 thresholds: tuple[int, int] | None = None) -> dict:
    """The digest's view of a child: the weekly-trend answer's weekly_trend, weeks_with_data,
    last_updated and trend (no courses), read as the owner, without a parent's token."""
    mondays = week_range(end, weeks)
    rows = conn.execute(
        """
        select week_start_date, quiz_average, quiz_count, assignment_average, assignment_count,
               overall_average, updated_at
          from student_weekly_performance
         where student_profile_id = %s and week_start_date between %s and %s
        """,
        (student_id, mondays[0], mondays[-1]),
    ).fetchall()
    by_week = {r["week_start_date"]: r for r in rows}
    alerts = week_alerts(conn, student_id, mondays, thresholds)
    trend = [
        week_label(monday) | week_figures(by_week.get(monday, {})) | {"alert": alerts.get(monday)} for monday in mondays
    ]
    return {
        "weekly_trend": trend,
        "total_weeks": len(trend),
        "weeks_with_data": sum(1 for w in trend if w["quiz_count"] + w["assignment_count"] > 0),
        "last_updated": iso_timestamp(max((r["updated_at"] for r in rows), default=None)),
        "trend": trend_indicator([by_week[m]["overall_average"] if m in by_week else None for m in mondays]),
    }
