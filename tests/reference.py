"""An independent recomputation of every figure, in Python, from the issue's rules.

Only zoneinfo, datetime.isocalendar and Decimal: none of the engine's SQL functions (no
local_iso_week_start, quiz_attempt_score_change, weekly_average, check_*). It reads the source rows
as plain columns and derives

* the weekly rows of student_weekly_performance, every column (year and week_number included);
* the per-course weeks a student sees (the weekly-trend answer's `courses`), class averages included;
* the class view course_weekly_performance (class_average, student_count, item_count);
* the trend line of the answer (least squares in exact fractions; the product's is trend_json() in SQL).

Compare with what the product shows: the table, the view and the HTTP answer. The one comparison
with the internal table student_course_weekly_performance is course_table_differences(), kept apart
so it can go when that table does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from math import floor
from zoneinfo import ZoneInfo

import psycopg

CENT = Decimal("0.01")


def iso_week_start(instant: datetime, time_zone: str) -> date:
    local = instant.astimezone(ZoneInfo(time_zone)).date()
    return local - timedelta(days=local.isoweekday() - 1)


def rounded(total: Decimal, count: int) -> Decimal | None:
    # Scores are never negative, so ROUND_HALF_UP is "half away from zero".
    return None if count == 0 else (total / count).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Score:
    """One counted score: whose, which course (None: none), which local ISO week, quiz or not, its value."""

    student: int
    course: int | None
    week: date
    is_quiz: bool
    value: Decimal


def counted_scores(conn: psycopg.Connection) -> list[Score]:
    """Every score that counts, with its week, by the rules: a quiz counts when completed and its final
    score (the teacher's when set) is not null; an assignment when graded with a percentage and an
    instant (graded_at, else submitted_at)."""
    zones = dict(conn.execute("select id, time_zone from student_profile").fetchall())
    scores = []
    for student, course, score, teacher, completed in conn.execute(
        "select student_profile_id, course_id, score, teacher_score, completed_at from quiz_attempt"
    ):
        final = teacher if teacher is not None else score
        if completed is not None and final is not None:
            scores.append(Score(student, course, iso_week_start(completed, zones[student]), True, final))
    for student, course, pct, graded, submitted_at, graded_at in conn.execute(
        "select student_profile_id, course_id, percentage, is_graded, submitted_at, graded_at from assignment_submission"
    ):
        at = graded_at if graded_at is not None else submitted_at
        if graded and pct is not None and at is not None:
            scores.append(Score(student, course, iso_week_start(at, zones[student]), False, pct))
    return scores


def figures(scores: list[Score]) -> dict:
    """Counts and averages of a group of scores, with the names the weekly table uses."""
    quiz = [s.value for s in scores if s.is_quiz]
    assignment = [s.value for s in scores if not s.is_quiz]
    return {
        "quiz_count": len(quiz),
        "quiz_average": rounded(sum(quiz, Decimal(0)), len(quiz)),
        "assignment_count": len(assignment),
        "assignment_average": rounded(sum(assignment, Decimal(0)), len(assignment)),
        "overall_average": rounded(sum(quiz + assignment, Decimal(0)), len(quiz) + len(assignment)),
    }


def grouped(scores: list[Score], key) -> dict:
    groups: dict = defaultdict(list)
    for s in scores:
        groups[key(s)].append(s)
    return groups


def label(monday: date) -> dict:
    iso_year, iso_week, weekday = monday.isocalendar()
    assert weekday == 1
    return {"year": iso_year, "week_number": iso_week}


# ---- student_weekly_performance ----

WEEK_COLUMNS = (
    "year",
    "week_number",
    "quiz_count",
    "quiz_average",
    "assignment_count",
    "assignment_average",
    "overall_average",
)


def expected_weeks(conn: psycopg.Connection) -> dict[tuple[int, date], tuple]:
    """{(student, week_start): (year, week_number, quiz_count, quiz_avg, assignment_count, assignment_avg, overall_avg)}."""
    return {
        key: tuple((label(key[1]) | figures(group))[c] for c in WEEK_COLUMNS)
        for key, group in grouped(counted_scores(conn), lambda s: (s.student, s.week)).items()
    }


def stored_weeks(conn: psycopg.Connection) -> dict[tuple[int, date], tuple]:
    """The weekly table's rows with any score, every column the oracle knows, in WEEK_COLUMNS order."""
    return {
        (r[0], r[1]): tuple(r[2:])
        for r in conn.execute(
            "select student_profile_id, week_start_date, "
            + ", ".join(WEEK_COLUMNS)
            + " from student_weekly_performance where quiz_count + assignment_count > 0"
        )
    }


def empty_weekly_rows(conn: psycopg.Connection) -> list[tuple]:
    """Rows without a score, which no reader should find: the table keeps only weeks with data."""
    return conn.execute(
        "select student_profile_id, week_start_date from student_weekly_performance"
        " where quiz_count + assignment_count <= 0 or quiz_count < 0 or assignment_count < 0"
    ).fetchall()


# ---- the class view ----


def expected_class_view(conn: psycopg.Connection) -> dict[tuple[int, date], tuple]:
    """{(course, week_start): (year, week_number, class_average, student_count, item_count)}: every counted
    score of the course that week weighs the same."""
    out = {}
    for (course, week), group in grouped(
        [s for s in counted_scores(conn) if s.course is not None], lambda s: (s.course, s.week)
    ).items():
        total = sum((s.value for s in group), Decimal(0))
        out[(course, week)] = (
            *label(week).values(),
            rounded(total, len(group)),
            len({s.student for s in group}),
            len(group),
        )
    return out


def stored_class_view(conn: psycopg.Connection) -> dict[tuple[int, date], tuple]:
    return {
        (r[0], r[1]): tuple(r[2:])
        for r in conn.execute(
            "select course_id, week_start_date, year, week_number, class_average, student_count, item_count"
            " from course_weekly_performance"
        )
    }


# ---- the trend line ----

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


# ---- the weekly-trend answer ----


def as_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def json_figures(group: list[Score]) -> dict:
    f = figures(group)
    return {
        "overall_avg": as_float(f["overall_average"]),
        "quiz_avg": as_float(f["quiz_average"]),
        "assignment_avg": as_float(f["assignment_average"]),
        "quiz_count": f["quiz_count"],
        "assignment_count": f["assignment_count"],
    }


def mondays_ending(end: date, weeks: int) -> list[date]:
    last = end - timedelta(days=end.weekday())
    return [last - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def week_json(monday: date) -> dict:
    iso = label(monday)
    return {"week": f"W{iso['week_number']}", **iso, "week_start": monday.isoformat()}


def expected_trend(conn: psycopg.Connection, student: int, end: date, weeks: int, min_students: int) -> dict:
    """The figures of GET /api/v1/students/<student>/weekly-trend?end=&weeks= : weekly_trend, weeks_with_data,
    total_weeks, trend and courses (every figure but last_updated)."""
    mondays = mondays_ending(end, weeks)
    scores = counted_scores(conn)
    mine = grouped([s for s in scores if s.student == student], lambda s: s.week)
    classes = grouped([s for s in scores if s.course is not None], lambda s: (s.course, s.week))
    # Missing work (issue 26): per week and per course and week, by missing_work()'s rule, now.
    course_of = dict(conn.execute("select id, course_id from course_work").fetchall())
    missing = [
        (course_of[w], week)
        for w, week in missing_work(conn, datetime.now(UTC)).get(student, set())
        if week in set(mondays)
    ]
    trend = [
        week_json(m) | json_figures(mine.get(m, [])) | {"missing_count": sum(1 for _, w in missing if w == m)}
        for m in mondays
    ]
    names = dict(conn.execute("select id, name from course").fetchall())
    in_range = grouped(
        [s for s in scores if s.student == student and s.course is not None and s.week in set(mondays)],
        lambda s: s.course,
    )
    # A class average only for a course the student has counted scores in these weeks (the answer asks
    # linked_course_class_weeks() for those courses): a course listed for its missing work alone shows none.
    has_rows = set(in_range)
    courses = []
    for course in sorted(set(in_range) | {c for c, _ in missing}, key=lambda c: (names[c], c)):
        own = grouped(in_range.get(course, []), lambda s: s.week)
        course_weeks = []
        for m in mondays:
            cls = classes.get((course, m), []) if course in has_rows else []
            suppressed = bool(cls) and len({s.student for s in cls}) < min_students
            average = rounded(sum((s.value for s in cls), Decimal(0)), len(cls)) if cls and not suppressed else None
            course_weeks.append(
                week_json(m)
                | json_figures(own.get(m, []))
                | {"missing_count": missing.count((course, m))}
                | {"class_average": as_float(average), "class_average_suppressed": suppressed}
            )
        courses.append({"course_id": course, "name": names[course], "weeks": course_weeks})
    return {
        "weekly_trend": trend,
        "total_weeks": weeks,
        "weeks_with_data": sum(1 for m in mondays if m in mine),
        "trend": trend_indicator([figures(mine[m])["overall_average"] if m in mine else None for m in mondays]),
        "courses": courses,
    }


def shown_trend(answer: dict) -> dict:
    """The part of a weekly-trend answer expected_trend() recomputes."""
    stats = answer["weekly_stats"]
    assert answer["courses"] == stats["courses"] and answer["weeks_with_data"] == stats["weeks_with_data"]
    shown = {key: stats[key] for key in ("weekly_trend", "total_weeks", "weeks_with_data", "trend", "courses")}
    # The sustained-decline alert has an oracle of its own (tests/test_alerts.py): not recomputed here.
    shown["weekly_trend"] = [{k: v for k, v in week.items() if k != "alert"} for week in shown["weekly_trend"]]
    return shown


def windows(conn: psycopg.Connection, student: int, weeks: int = 52) -> list[date]:
    """Ends of `weeks`-long ranges that together hold every week the student has a score in."""
    data = sorted({s.week for s in counted_scores(conn) if s.student == student}, reverse=True)
    ends = []
    while data:
        ends.append(data[0])
        start = data[0] - timedelta(weeks=weeks - 1)
        data = [d for d in data if d < start]
    return ends


# ---- all at once ----


def differences(conn: psycopg.Connection, *, class_view: bool = False) -> dict[str, dict]:
    """Where the stored figures differ from the oracle ({} when exact). The class view only when asked:
    it is as fresh as its last refresh."""
    out = {}
    pairs = [("weekly", stored_weeks(conn), expected_weeks(conn)), ("per_course", *course_table_differences(conn))]
    if class_view:
        pairs.append(("class_view", stored_class_view(conn), expected_class_view(conn)))
    for name, stored, expected in pairs:
        wrong = {
            k: (stored.get(k), expected.get(k)) for k in set(stored) | set(expected) if stored.get(k) != expected.get(k)
        }
        if wrong:
            out[name] = dict(sorted(wrong.items(), key=str)[:20])
    if empty := empty_weekly_rows(conn):
        out["empty_weekly_rows"] = empty
    return out


# ---- the internal per-course table (drop with it) ----


def course_table_differences(conn: psycopg.Connection) -> tuple[dict, dict]:
    """(stored, expected) per (student, course, week) for student_course_weekly_performance, which the
    class view and the answer's `courses` are made from today. Returns ({}, {}) once the table is gone."""
    if conn.execute("select to_regclass('student_course_weekly_performance') is null").fetchone()[0]:
        return {}, {}
    stored = {
        (r[0], r[1], r[2]): tuple(r[3:])
        for r in conn.execute(
            "select student_profile_id, course_id, week_start_date, quiz_sum, quiz_count, assignment_sum, assignment_count"
            " from student_course_weekly_performance where quiz_count + assignment_count <> 0 or quiz_sum <> 0"
            " or assignment_sum <> 0"
        )
    }
    expected = {}
    for key, group in grouped(
        [s for s in counted_scores(conn) if s.course is not None], lambda s: (s.student, s.course, s.week)
    ).items():
        quiz = [s.value for s in group if s.is_quiz]
        assignment = [s.value for s in group if not s.is_quiz]
        expected[key] = (sum(quiz, Decimal(0)), len(quiz), sum(assignment, Decimal(0)), len(assignment))
    return stored, expected


def missing_work(conn: psycopg.Connection, now: datetime) -> dict[int, set[tuple[int, date]]]:
    """Per student, the (course_work id, local ISO week) of every piece of work missing at the instant now,
    by the issue's rule: due before now, the student enrolled in its course on the local day it was due
    (start_on and end_on included, None open), no counted score of theirs linked to it (the rules of
    counted_scores() above, whenever scored), not excused."""
    zones = dict(conn.execute("select id, time_zone from student_profile").fetchall())
    work = conn.execute("select id, course_id, due_at from course_work where due_at is not null").fetchall()
    enrolled = defaultdict(list)
    for student, course, start, end in conn.execute(
        "select student_profile_id, course_id, start_on, end_on from enrollment"
    ):
        enrolled[course].append((student, start, end))
    done = set(conn.execute("select course_work_id, student_profile_id from course_work_excusal").fetchall())
    for work_id, student, score, teacher, completed in conn.execute(
        "select course_work_id, student_profile_id, score, teacher_score, completed_at from quiz_attempt"
        " where course_work_id is not null"
    ):
        if completed is not None and (teacher if teacher is not None else score) is not None:
            done.add((work_id, student))
    for work_id, student, pct, graded, submitted_at, graded_at in conn.execute(
        "select course_work_id, student_profile_id, percentage, is_graded, submitted_at, graded_at"
        "  from assignment_submission where course_work_id is not null"
    ):
        if graded and pct is not None and (graded_at or submitted_at) is not None:
            done.add((work_id, student))
    result: dict[int, set[tuple[int, date]]] = defaultdict(set)
    for work_id, course, due in work:
        if due >= now:
            continue
        for student, start, end in enrolled[course]:
            day = due.astimezone(ZoneInfo(zones[student])).date()
            if (start is None or start <= day) and (end is None or day <= end) and (work_id, student) not in done:
                result[student].add((work_id, iso_week_start(due, zones[student])))
    return dict(result)
