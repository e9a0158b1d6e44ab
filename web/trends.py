"""The trend rule in exact fractions: the reference for trend_json() (db/functions/430_weekly_trend_json.sql).

The answer itself is built by the database (weekly_trend_json()); this module states the same rule in
Python, exactly, so that the tests can hold the SQL to it.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import floor

MIN_TREND_WEEKS = 3
STABLE_BELOW = 1  # points a week


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
