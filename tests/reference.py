"""An independent recomputation of the weekly figures, in Python, from the issue's rules."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import psycopg

CENT = Decimal("0.01")


def iso_week_start(instant: datetime, time_zone: str) -> date:
    local = instant.astimezone(ZoneInfo(time_zone)).date()
    return local - timedelta(days=local.isoweekday() - 1)


def rounded(total: Decimal, count: int) -> Decimal | None:
    # Scores are never negative, so ROUND_HALF_UP is "half away from zero".
    return None if count == 0 else (total / count).quantize(CENT, rounding=ROUND_HALF_UP)


def expected_weeks(conn: psycopg.Connection) -> dict[tuple[int, date], tuple]:
    """{(student, week_start): (quiz_count, quiz_avg, assignment_count, assignment_avg, overall_avg)}."""
    zones = dict(conn.execute("select id, time_zone from student_profile").fetchall())
    sums: dict[tuple[int, date], list] = defaultdict(lambda: [Decimal(0), 0, Decimal(0), 0])
    for student, score, teacher, completed in conn.execute(
        "select student_profile_id, score, teacher_score, completed_at from quiz_attempt"
    ):
        final = teacher if teacher is not None else score
        if completed is None or final is None:
            continue
        s = sums[(student, iso_week_start(completed, zones[student]))]
        s[0] += final
        s[1] += 1
    for student, pct, graded, submitted_at, graded_at in conn.execute(
        "select student_profile_id, percentage, is_graded, submitted_at, graded_at from assignment_submission"
    ):
        at = graded_at or submitted_at
        if not graded or pct is None or at is None:
            continue
        s = sums[(student, iso_week_start(at, zones[student]))]
        s[2] += pct
        s[3] += 1
    return {
        key: (qc, rounded(qs, qc), ac, rounded(as_, ac), rounded(qs + as_, qc + ac))
        for key, (qs, qc, as_, ac) in sums.items()
        if qc + ac > 0
    }


def stored_weeks(conn: psycopg.Connection) -> dict[tuple[int, date], tuple]:
    return {
        (r[0], r[1]): tuple(r[2:])
        for r in conn.execute(
            "select student_profile_id, week_start_date, quiz_count, quiz_average, assignment_count,"
            " assignment_average, overall_average from student_weekly_performance"
            " where quiz_count + assignment_count > 0"
        )
    }
