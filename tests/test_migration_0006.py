"""Revision 0006 on a populated database: a database at 0005 holding scores is migrated to 0006, and the
weekly figures, the class view and the API's answers are what they were; downgrading rebuilds the
per-course rows and the class view over them.

The "before" answers are computed at 0005 by the weekly-trend code that shipped with it (web/trends.py's
weekly_stats before issue 11, copied below): the weekly rows, the per-course rows and the class view read
by Python, the trend in exact fractions (the rule now kept as the tests' oracle, tests/reference.py).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row

from web.ops.embedded import PROJECT_ROOT

from conftest import create_database, drop_database
from reference import trend_indicator

MIN_STUDENTS = 5
END = date(2024, 3, 20)
ZONES = ("UTC", "America/New_York", "Asia/Tokyo", "Pacific/Auckland", "Europe/London")


def alembic(url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )


# --- the answer as revision 0005's code computed it -------------------------------------------------------


def as_float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def week_label(monday: date) -> dict:
    iso_year, iso_week, _ = monday.isocalendar()
    return {"week": f"W{iso_week}", "year": iso_year, "week_number": iso_week, "week_start": monday.isoformat()}


def week_figures(row: dict) -> dict:
    return {
        "overall_avg": as_float(row.get("overall_average")),
        "quiz_avg": as_float(row.get("quiz_average")),
        "assignment_avg": as_float(row.get("assignment_average")),
        "quiz_count": row.get("quiz_count", 0),
        "assignment_count": row.get("assignment_count", 0),
    }


def answer_at_0005(conn: psycopg.Connection, student_id: int, end: date, weeks: int) -> dict:
    last = end - timedelta(days=end.isoweekday() - 1)
    mondays = [last - timedelta(weeks=n) for n in reversed(range(weeks))]
    rows = conn.execute(
        "select week_start_date, quiz_average, quiz_count, assignment_average, assignment_count, overall_average,"
        "       updated_at from student_weekly_performance"
        " where student_profile_id = %s and week_start_date between %s and %s",
        (student_id, mondays[0], mondays[-1]),
    ).fetchall()
    by_week = {r["week_start_date"]: r for r in rows}
    trend = [week_label(m) | week_figures(by_week.get(m, {})) for m in mondays]
    course_rows = conn.execute(
        "select c.id as course_id, c.name, s.week_start_date, s.quiz_count, s.assignment_count,"
        "       round(s.quiz_sum / nullif(s.quiz_count, 0), 2) as quiz_average,"
        "       round(s.assignment_sum / nullif(s.assignment_count, 0), 2) as assignment_average,"
        "       round((s.quiz_sum + s.assignment_sum) / nullif(s.quiz_count + s.assignment_count, 0), 2) as overall_average"
        "  from student_course_weekly_performance s join course c on c.id = s.course_id"
        " where s.student_profile_id = %s and s.week_start_date between %s and %s"
        "   and s.quiz_count + s.assignment_count > 0 order by c.name, c.id",
        (student_id, mondays[0], mondays[-1]),
    ).fetchall()
    courses: dict[int, dict] = {}
    for row in course_rows:
        courses.setdefault(row["course_id"], {"name": row["name"], "weeks": {}})["weeks"][row["week_start_date"]] = row
    classes = {
        (r["course_id"], r["week_start_date"]): r
        for r in conn.execute(
            "select course_id, week_start_date, class_average, student_count from course_weekly_performance"
            " where course_id = any(%s) and week_start_date between %s and %s",
            (list(courses), mondays[0], mondays[-1]),
        )
    }
    course_list = []
    for course_id, course in courses.items():
        cweeks = []
        for monday in mondays:
            cls = classes.get((course_id, monday))
            suppressed = cls is not None and cls["student_count"] < MIN_STUDENTS
            cweeks.append(
                week_label(monday)
                | week_figures(course["weeks"].get(monday, {}))
                | {
                    "class_average": None if cls is None or suppressed else as_float(cls["class_average"]),
                    "class_average_suppressed": suppressed,
                }
            )
        course_list.append({"course_id": course_id, "name": course["name"], "weeks": cweeks})
    last_updated = max((r["updated_at"] for r in rows), default=None)
    stats = {
        "weekly_trend": trend,
        "total_weeks": len(trend),
        "weeks_with_data": sum(1 for w in trend if w["quiz_count"] + w["assignment_count"] > 0),
        "last_updated": None if last_updated is None else last_updated.astimezone(UTC).isoformat(),
        "trend": trend_indicator([by_week[m]["overall_average"] if m in by_week else None for m in mondays]),
        "courses": course_list,
    }
    top = {key: stats[key] for key in ("weeks_with_data", "last_updated", "trend", "courses")}
    return {"student_id": student_id, "weekly_stats": stats, **top}


# --- a populated school at 0005 ------------------------------------------------------------------------------


def one(conn: psycopg.Connection, query: str, params=None):
    return next(iter(conn.execute(query, params).fetchone().values()))


def populate(conn: psycopg.Connection) -> dict:
    rng = random.Random(11)
    courses = [
        one(conn, "insert into course (name) values (%s) returning id", (name,))
        for name in ("Maths", "Art", "Biology", "Art")
    ]  # two courses named alike: ordered by id
    students = [
        one(
            conn,
            "insert into student_profile (display_name, time_zone) values (%s, %s) returning id",
            (f"S{n}", ZONES[n % len(ZONES)]),
        )
        for n in range(10)
    ]
    base = datetime(2024, 1, 29, tzinfo=UTC)
    for sid in students:
        for _ in range(40):
            at = base + timedelta(hours=rng.randrange(0, 8 * 7 * 24))
            course = rng.choice(courses + [None])
            if rng.random() < 0.6:
                conn.execute(
                    "insert into quiz_attempt (student_profile_id, course_id, score, teacher_score, completed_at)"
                    " values (%s, %s, %s, %s, %s)",
                    (
                        sid,
                        course,
                        Decimal(rng.randrange(0, 10001)) / 100,
                        Decimal(rng.randrange(0, 10001)) / 100 if rng.random() < 0.1 else None,
                        at,
                    ),
                )
            else:
                conn.execute(
                    "insert into assignment_submission (student_profile_id, course_id, percentage, is_graded,"
                    " submitted_at, graded_at) values (%s, %s, %s, %s, %s, %s)",
                    (
                        sid,
                        course,
                        Decimal(rng.randrange(0, 10001)) / 100,
                        rng.random() < 0.85,
                        at - timedelta(days=1),
                        at if rng.random() < 0.7 else None,
                    ),
                )
    # Some edits and deletes, as a school's history has.
    conn.execute("update quiz_attempt set teacher_score = 55 where id % 7 = 0")
    conn.execute("delete from assignment_submission where id % 11 = 0")
    conn.execute("update quiz_attempt set completed_at = completed_at - interval '5 days' where id % 13 = 0")
    guardian = one(conn, "insert into guardian (email) values ('parent@example.org') returning id")
    conn.execute(
        "insert into guardian_student (guardian_id, student_profile_id) select %s, unnest(%s::bigint[])",
        (guardian, students),
    )
    token = one(conn, "select issue_guardian_token(%s)", (guardian,))
    conn.execute("select refresh_course_weekly_performance()")
    return {"students": students, "token": token}


def weekly(conn) -> list:
    return conn.execute(
        "select student_profile_id, week_start_date, year, week_number, quiz_sum, quiz_count, assignment_sum,"
        " assignment_count, quiz_average, assignment_average, overall_average, created_at, updated_at"
        " from student_weekly_performance order by 1, 2"
    ).fetchall()


def class_view(conn) -> list:
    return conn.execute("select * from course_weekly_performance order by course_id, week_start_date").fetchall()


def course_rows(conn) -> list:
    return conn.execute(
        "select student_profile_id, course_id, week_start_date, quiz_sum, quiz_count, assignment_sum, assignment_count"
        " from student_course_weekly_performance order by 1, 2, 3"
    ).fetchall()


@pytest.fixture
def database_at_0005(server_url):
    name = f"wt_mig6_{os.getpid()}"
    url = create_database(server_url, name)
    alembic(url, "upgrade", "0005")
    yield url
    drop_database(server_url, name)


QUERIES = [{}, {"end": END.isoformat()}, {"end": END.isoformat(), "weeks": "8"}, {"end": "2024-02-07", "weeks": "3"}]


def test_0006_keeps_figures_class_view_and_answers_and_downgrade_restores_the_per_course_rows(database_at_0005):
    url = database_at_0005
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        school = populate(conn)
        weekly_before, view_before, courses_before = weekly(conn), class_view(conn), course_rows(conn)
        assert len(courses_before) > 50 and len(view_before) > 20
        assert any(r["student_count"] < MIN_STUDENTS for r in view_before)  # suppression is exercised
        assert any(r["student_count"] >= MIN_STUDENTS for r in view_before)
        answers_before = {
            (sid, i): answer_at_0005(conn, sid, date.fromisoformat(q.get("end", "2024-03-20")), int(q.get("weeks", 6)))
            for sid in school["students"]
            for i, q in enumerate(QUERIES)
        }
        # The answers exercise what could differ: courses, suppressed and shown class averages, trends.
        course_weeks = [w for a in answers_before.values() for c in a["courses"] for w in c["weeks"]]
        assert any(w["class_average_suppressed"] for w in course_weeks)
        assert any(w["class_average"] is not None for w in course_weeks)
        assert {a["trend"]["direction"] for a in answers_before.values()} >= {"insufficient_data", "stable"} or len(
            {a["trend"]["direction"] for a in answers_before.values()}
        ) >= 3

    alembic(url, "upgrade", "0006")
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        assert conn.execute("select to_regclass('student_course_weekly_performance') as t").fetchone()["t"] is None
        assert weekly(conn) == weekly_before  # not rewritten: the same rows, timestamps included
        assert class_view(conn) == view_before  # recomputed from the source rows at upgrade
        conn.execute("select refresh_course_weekly_performance()")
        assert class_view(conn) == view_before
        assert conn.execute("select count(*) as n from check_weekly_performance()").fetchone()["n"] == 0
        # The per-course weeks a parent is now served, from the source rows, are the rows 0005 stored.
        served = conn.execute(
            "select student_profile_id, course_id, week_start_date, quiz_sum, quiz_count, assignment_sum,"
            " assignment_count from expected_course_weeks() where course_id is not null order by 1, 2, 3"
        ).fetchall()
        assert served == courses_before

    # Today's app speaks to the newest schema: the rest of the chain on top of 0006 changes no figure.
    alembic(url, "upgrade", "head")
    from web import create_app
    from web.db import close_pool

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "SECRET_KEY": "k",
            "POOL_MAX_SIZE": 2,
            "CLASS_AVERAGE_MIN_STUDENTS": MIN_STUDENTS,
        }
    )
    try:
        client = app.test_client()
        auth = {"Authorization": f"Bearer {school['token']}"}
        for (sid, i), before in answers_before.items():
            query = dict(QUERIES[i]) or {"end": "2024-03-20"}
            response = client.get(f"/api/v1/students/{sid}/weekly-trend", headers=auth, query_string=query)
            assert response.status_code == 200
            answer = response.get_json()
            for week in answer["weekly_stats"]["weekly_trend"]:
                week.pop("alert")  # added by revision 0008, after 0006
                week.pop("missing_count")  # added by revision 0015 (missing work)
            for course in answer["weekly_stats"].get("courses", []) + answer.get("courses", []):
                for week in course["weeks"]:
                    week.pop("missing_count", None)
            assert answer == before, (sid, query)
    finally:
        close_pool(app)

    alembic(url, "downgrade", "0005")
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        assert course_rows(conn) == courses_before
        assert class_view(conn) == view_before
        assert weekly(conn) == weekly_before
        for check in ("check_weekly_performance", "check_course_weekly_performance"):
            assert conn.execute(f"select count(*) as n from {check}()").fetchone()["n"] == 0
        # The 0005 triggers keep both tables again.
        sid = school["students"][0]
        conn.execute(
            "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
            " select %s, min(id), 42, '2024-03-19 12:00Z' from course",
            (sid,),
        )
        assert len(course_rows(conn)) in (len(courses_before), len(courses_before) + 1)
        assert conn.execute("select count(*) as n from check_course_weekly_performance()").fetchone()["n"] == 0
        assert conn.execute("select count(*) as n from check_weekly_performance()").fetchone()["n"] == 0
        assert answer_at_0005(conn, sid, END, 6)["weekly_stats"]["courses"]
