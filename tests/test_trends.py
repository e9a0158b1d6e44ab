"""The richer weekly-trend answer: trend maths, weeks_with_data, last_updated, courses with class
averages (suppressed below the threshold), and the CSV export of the same figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from factories import add_assignment, add_course, add_guardian, add_quiz, add_student
from reference import least_squares_slope, round_half_away, trend_indicator

UTC = UTC
# 2024 W1..W6: Mondays 1, 8, 15, 22, 29 January and 5 February.
END = "2024-02-05"


def D(*values):
    return [None if v is None else Decimal(v) for v in values]


# ---- the least-squares trend, by hand ----


def test_slope_of_a_straight_line():
    assert least_squares_slope([(0, Decimal(80)), (1, Decimal(82)), (2, Decimal(84))]) == 2


def test_slope_by_hand_with_a_gap():
    # x̄ = 4/3, ȳ = 221/3; Sxy = 129/9, Sxx = 42/9: slope 129/42
    assert least_squares_slope([(0, Decimal(70)), (1, Decimal(72)), (3, Decimal(79))]) == Fraction(129, 42)


TREND_CASES = [
    (D("80", "82", "84"), "improving", 2.0),
    (D("90", "85", "80"), "declining", -5.0),
    (D("80", "80.5", "81"), "stable", 0.5),
    (D("81", "80.5", "80"), "stable", -0.5),
    # a gap keeps its width: x = 0, 2, 4 gives exactly 1.0 (not stable), not 2.0
    (D("80", None, "82", None, "84"), "improving", 1.0),
    (D("84", None, "82", None, "80"), "declining", -1.0),
    (D("70", "72", None, "79"), "improving", 3.07),  # 129/42 = 3.0714…
    # 1.005 exactly: rounded half away from zero
    (D("0.00", "1.00", "2.01"), "improving", 1.01),
    (D("2.01", "1.00", "0.00"), "declining", -1.01),
    (D("0", "0", "0"), "stable", 0.0),
    (D(None, "88.6", None, None, "0", None), "insufficient_data", None),
    (D("88.6", None), "insufficient_data", None),
    (D(None, None, None), "insufficient_data", None),
    # The 1-point-a-week boundary: exactly 1 is a direction, just under it is stable (even when
    # rounded to 1.0), just over it a direction; both signs.
    (D("80", "81", "82"), "improving", 1.0),
    (D("82", "81", "80"), "declining", -1.0),
    (D("0", "1", "1.99"), "stable", 1.0),  # 0.995: stable, rounded half away to 1.00
    (D("1.99", "1", "0"), "stable", -1.0),
    (D("80", "80.99", "81.98"), "stable", 0.99),
    (D("81.98", "80.99", "80"), "stable", -0.99),
    (D("0", "1", "2.01"), "improving", 1.01),  # 1.005
    (D("80", "81.01", "82.02"), "improving", 1.01),
    (D("82.02", "81.01", "80"), "declining", -1.01),
    (D("50", "51", "52", "53", "54", "55"), "improving", 1.0),  # six weeks, exactly 1
]


@pytest.mark.parametrize(("overall", "direction", "slope"), TREND_CASES)
def test_trend_indicator(overall, direction, slope):
    assert trend_indicator(overall) == {"direction": direction, "slope_per_week": slope}


@pytest.mark.parametrize(("overall", "direction", "slope"), TREND_CASES)
def test_the_sql_trend_agrees_on_every_case(conn, overall, direction, slope):
    """The same cases through trend_json() as the app computes it (student_weekly_stats()), not only
    through the Python reference: each week's overall is one quiz of that score."""
    sid = add_student(conn, "Trend")
    for n, value in enumerate(overall):  # week n of 2024: Monday 1 January + 7n days, at 10:00 UTC
        if value is not None:
            add_quiz(conn, sid, value, datetime(2024, 1, 1, 10, tzinfo=UTC) + timedelta(weeks=n))
    trend = conn.execute(
        "select trend from student_weekly_stats(%s, '2024-01-01', %s)", (sid, len(overall))
    ).fetchone()[0]
    assert trend == {"direction": direction, "slope_per_week": slope}


def test_round_half_away_from_zero():
    assert round_half_away(Fraction(1, 200)) == 0.01
    assert round_half_away(Fraction(-1, 200)) == -0.01
    assert round_half_away(Fraction(1, 300)) == 0.0
    assert round_half_away(Fraction(-1, 300)) == 0.0 and str(round_half_away(Fraction(-1, 300))) == "0.0"
    assert round_half_away(Fraction(12345, 1000)) == 12.35


# ---- over HTTP ----


@pytest.fixture
def school(conn):
    """Child a (guardian A): W1 quiz 70; W3 quiz 80; W6 quiz 76 + assignment 90 (overall 83), in
    Maths (W1, W3) and Art (W6). Maths W3 has 10 students, Art W6 has 9."""
    maths, art = add_course(conn, "Maths"), add_course(conn, "Art")
    a = add_student(conn, "Ann")
    guardian = add_guardian(conn, "a@example.org", a)
    add_guardian(conn, "b@example.org", add_student(conn, "Ben"))
    add_quiz(conn, a, 70, datetime(2024, 1, 2, 9, tzinfo=UTC), course_id=maths)
    add_quiz(conn, a, 80, datetime(2024, 1, 16, 9, tzinfo=UTC), course_id=maths)
    add_quiz(conn, a, 76, datetime(2024, 2, 6, 9, tzinfo=UTC), course_id=art)
    add_assignment(conn, a, 90, graded_at=datetime(2024, 2, 7, 9, tzinfo=UTC), course_id=art)
    for n in range(9):  # 9 classmates in Maths W3: 10 students
        add_quiz(conn, add_student(conn, f"M{n}"), 60, datetime(2024, 1, 17, 9, tzinfo=UTC), course_id=maths)
    for n in range(8):  # 8 classmates in Art W6: 9 students
        add_quiz(conn, add_student(conn, f"A{n}"), 60, datetime(2024, 2, 8, 9, tzinfo=UTC), course_id=art)
    conn.execute("select refresh_course_weekly_performance()")
    token = conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0]
    return {"a": a, "maths": maths, "art": art, "token": token, "conn": conn}


def fetch(client, school, suffix="", **params):
    return client.get(
        f"/api/v1/students/{school['a']}/weekly-trend{suffix}",
        headers={"Authorization": f"Bearer {school['token']}"},
        query_string={"end": END, **params},
    )


def test_trend_weeks_with_data_and_last_updated(client, school):
    stats = fetch(client, school).get_json()["weekly_stats"]
    assert stats["total_weeks"] == 6 and stats["weeks_with_data"] == 3
    assert [w["overall_avg"] for w in stats["weekly_trend"]] == [70.0, None, 80.0, None, None, 83.0]
    # points (0, 70), (2, 80), (5, 83): Sxy = 282/9, Sxx = 114/9, slope 2.4737
    assert stats["trend"] == {"direction": "improving", "slope_per_week": 2.47}
    stored = (
        school["conn"]
        .execute("select max(updated_at) from student_weekly_performance where student_profile_id = %s", (school["a"],))
        .fetchone()[0]
    )
    assert datetime.fromisoformat(stats["last_updated"]) == stored


def test_the_additions_are_also_at_the_top_level(client, school):
    body = fetch(client, school).get_json()
    for key in ("weeks_with_data", "last_updated", "trend", "courses"):
        assert body[key] == body["weekly_stats"][key]
    assert body["weeks_with_data"] == 3


def test_last_updated_is_null_and_trend_insufficient_without_data(client, school):
    stats = fetch(client, school, end="2023-06-01").get_json()["weekly_stats"]
    assert stats["weeks_with_data"] == 0 and stats["last_updated"] is None
    assert stats["trend"] == {"direction": "insufficient_data", "slope_per_week": None}
    assert stats["courses"] == []


def test_last_updated_covers_only_the_weeks_in_range(client, school):
    conn = school["conn"]
    conn.execute(
        "update student_weekly_performance set updated_at = '2024-03-01T12:00:00Z' where week_start_date = '2024-01-01'"
    )
    conn.execute(
        "update student_weekly_performance set updated_at = '2024-02-01T12:00:00Z' where week_start_date = '2024-01-15'"
    )
    conn.execute(
        "update student_weekly_performance set updated_at = '2030-01-01T00:00:00Z' where week_start_date = '2024-02-05'"
    )
    stats = fetch(client, school, end="2024-01-21", weeks=3).get_json()["weekly_stats"]
    assert stats["last_updated"] == "2024-03-01T12:00:00+00:00"


def test_courses_with_class_averages_and_suppression_at_9_students(client, school):
    courses = fetch(client, school).get_json()["weekly_stats"]["courses"]
    assert [(c["course_id"], c["name"]) for c in courses] == [(school["art"], "Art"), (school["maths"], "Maths")]
    art, maths = courses
    assert [w["week_start"] for w in maths["weeks"]] == [
        "2024-01-01",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
        "2024-01-29",
        "2024-02-05",
    ]
    assert maths["weeks"][2] == {
        "week": "W3",
        "year": 2024,
        "week_number": 3,
        "week_start": "2024-01-15",
        "overall_avg": 80.0,
        "quiz_avg": 80.0,
        "assignment_avg": None,
        "quiz_count": 1,
        "assignment_count": 0,
        "missing_count": 0,
        "class_average": 62.0,
        "class_average_suppressed": False,  # (80 + 9 × 60) / 10
    }
    # W1: Ann alone in Maths: 1 student, suppressed
    assert (
        maths["weeks"][0]["overall_avg"],
        maths["weeks"][0]["class_average"],
        maths["weeks"][0]["class_average_suppressed"],
    ) == (70.0, None, True)
    # W2: no one has Maths scores: nothing to show, nothing suppressed
    assert maths["weeks"][1] == {
        "week": "W2",
        "year": 2024,
        "week_number": 2,
        "week_start": "2024-01-08",
        "overall_avg": None,
        "quiz_avg": None,
        "assignment_avg": None,
        "quiz_count": 0,
        "assignment_count": 0,
        "class_average": None,
        "class_average_suppressed": False,
    }
    # Art W6: 9 students, below the default 10
    assert art["weeks"][5] == {
        "week": "W6",
        "year": 2024,
        "week_number": 6,
        "week_start": "2024-02-05",
        "overall_avg": 83.0,
        "quiz_avg": 76.0,
        "assignment_avg": 90.0,
        "quiz_count": 1,
        "assignment_count": 1,
        "class_average": None,
        "class_average_suppressed": True,
    }


def test_the_threshold_is_configurable(db_url, school):
    from web import create_app
    from web.db import close_pool

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "x", "CLASS_AVERAGE_MIN_STUDENTS": 9})
    try:
        art = fetch(app.test_client(), school).get_json()["weekly_stats"]["courses"][0]
        # (76 + 90 + 8 × 60) / 10 scores = 64.6
        assert (art["weeks"][5]["class_average"], art["weeks"][5]["class_average_suppressed"]) == (64.6, False)
    finally:
        close_pool(app)


@pytest.mark.parametrize("value", [4, 0, -10, "10", 9.5, True, None])
def test_create_app_refuses_a_threshold_below_5(value):
    from web import create_app

    with pytest.raises(ValueError, match="CLASS_AVERAGE_MIN_STUDENTS"):
        create_app({"SECRET_KEY": "x", "CLASS_AVERAGE_MIN_STUDENTS": value})
    assert create_app({"SECRET_KEY": "x", "CLASS_AVERAGE_MIN_STUDENTS": 5}).config["CLASS_AVERAGE_MIN_STUDENTS"] == 5


def test_threshold_from_the_environment(monkeypatch):
    from web import create_app

    monkeypatch.setenv("WEEKLY_TRENDS_CLASS_AVERAGE_MIN_STUDENTS", "12")
    assert create_app({"SECRET_KEY": "x"}).config["CLASS_AVERAGE_MIN_STUDENTS"] == 12
    monkeypatch.setenv("WEEKLY_TRENDS_CLASS_AVERAGE_MIN_STUDENTS", "3")
    with pytest.raises(ValueError):
        create_app({"SECRET_KEY": "x"})


def test_course_figures_follow_writes_at_once(client, school):
    """Maintained by the triggers: a new score shows in the next answer, no refresh needed."""
    add_quiz(school["conn"], school["a"], 100, datetime(2024, 2, 6, 10, tzinfo=UTC), course_id=school["art"])
    art = fetch(client, school).get_json()["weekly_stats"]["courses"][0]
    assert (art["weeks"][5]["quiz_avg"], art["weeks"][5]["quiz_count"], art["weeks"][5]["overall_avg"]) == (
        88.0,
        2,
        88.67,
    )


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_csv_matches_json(client, school):
    body = fetch(client, school).get_json()
    r = fetch(client, school, ".csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Cache-Control"] == "private, no-store"
    assert r.headers["Content-Disposition"] == f'attachment; filename="weekly-trend-{school["a"]}-2024-02-05.csv"'
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    stats = body["weekly_stats"]
    expected = [
        {"scope": "overall", "course_id": "", "course_name": "", "class_average": "", "class_average_suppressed": ""}
        | {k: cell(v) for k, v in w.items()}
        for w in stats["weekly_trend"]
    ]
    for course in stats["courses"]:
        expected += [
            {"scope": "course", "course_id": str(course["course_id"]), "course_name": course["name"], "alert": ""}
            | {k: cell(v) for k, v in w.items()}
            for w in course["weeks"]
        ]
    assert rows == expected
    assert len(rows) == 6 * 3


def test_csv_takes_the_same_parameters(client, school):
    r = fetch(client, school, ".csv", weeks=2)
    assert len(list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))) == 2 + 2 * 1  # Art only in W6
    assert fetch(client, school, ".csv", weeks=0).status_code == 400
    assert fetch(client, school, ".csv", end="yesterday").mimetype == "application/problem+json"


def test_csv_cells_cannot_start_a_formula(client, school):
    school["conn"].execute("update course set name = '=HYPERLINK(\"http://x\")' where id = %s", (school["art"],))
    text = fetch(client, school, ".csv").get_data(as_text=True)
    assert ",'=HYPERLINK" in text.replace('"', "")
