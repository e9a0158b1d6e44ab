"""The sustained-decline alert's thresholds N and M, from the settings (the rule itself:
weekly_trend_alerts() in db/functions/600_weekly_trend_alerts.sql)."""

from __future__ import annotations

from .settings import env_int

ALERT_DROP_POINTS = 10
ALERT_MIN_SCORES = 2


def alert_thresholds() -> tuple[int, int]:
    """(N, M): WEEKLY_TRENDS_ALERT_DROP_POINTS and WEEKLY_TRENDS_ALERT_MIN_SCORES, checked."""
    drop = env_int("WEEKLY_TRENDS_ALERT_DROP_POINTS", ALERT_DROP_POINTS)
    min_scores = env_int("WEEKLY_TRENDS_ALERT_MIN_SCORES", ALERT_MIN_SCORES)
    if drop < 1 or min_scores < 1:
        raise ValueError("WEEKLY_TRENDS_ALERT_DROP_POINTS and WEEKLY_TRENDS_ALERT_MIN_SCORES must be at least 1")
    return drop, min_scores
