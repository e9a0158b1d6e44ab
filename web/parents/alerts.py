"""The sustained-decline alert's thresholds N and M, from the settings (the rule itself:
weekly_trend_alerts() in db/functions/600_weekly_trend_alerts.sql)."""

from __future__ import annotations

from web.settings import Settings


def alert_thresholds(settings: Settings) -> tuple[int, int]:
    """(N, M): WEEKLY_TRENDS_ALERT_DROP_POINTS and WEEKLY_TRENDS_ALERT_MIN_SCORES, checked at start."""
    return settings.alert_drop_points, settings.alert_min_scores
