"""Small helpers that write rows the way any program would: plain SQL."""

from __future__ import annotations

from decimal import Decimal

import psycopg


def add_student(conn: psycopg.Connection, name: str = "Student", time_zone: str = "UTC") -> int:
    return conn.execute(
        "insert into student_profile (display_name, time_zone) values (%s, %s) returning id", (name, time_zone)
    ).fetchone()[0]


def add_course(conn: psycopg.Connection, name: str = "Course") -> int:
    return conn.execute("insert into course (name) values (%s) returning id", (name,)).fetchone()[0]


def add_guardian(conn: psycopg.Connection, email: str, *student_ids: int) -> int:
    guardian_id = conn.execute("insert into guardian (email) values (%s) returning id", (email,)).fetchone()[0]
    for sid in student_ids:
        conn.execute(
            "insert into guardian_student (guardian_id, student_profile_id) values (%s, %s)", (guardian_id, sid)
        )
    return guardian_id


def add_quiz(conn, student_id, score, completed_at, *, course_id=None, teacher_score=None) -> int:
    return conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, score, teacher_score, completed_at)"
        " values (%s, %s, %s, %s, %s) returning id",
        (student_id, course_id, score, teacher_score, completed_at),
    ).fetchone()[0]


def add_assignment(
    conn, student_id, percentage, *, graded_at=None, submitted_at=None, is_graded=True, course_id=None
) -> int:
    return conn.execute(
        "insert into assignment_submission (student_profile_id, course_id, percentage, is_graded, submitted_at, graded_at)"
        " values (%s, %s, %s, %s, %s, %s) returning id",
        (student_id, course_id, percentage, is_graded, submitted_at, graded_at),
    ).fetchone()[0]


def weekly_rows(conn: psycopg.Connection, student_id: int | None = None) -> list[dict]:
    """The stored weekly rows, as dicts, oldest first."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "select student_profile_id, year, week_number, week_start_date, quiz_average, quiz_count,"
            " assignment_average, assignment_count, overall_average"
            "  from student_weekly_performance where %(s)s::bigint is null or student_profile_id = %(s)s"
            " order by student_profile_id, week_start_date",
            {"s": student_id},
        )
        return cur.fetchall()


def week_of(conn, student_id: int, year: int, week: int) -> dict | None:
    rows = [r for r in weekly_rows(conn, student_id) if (r["year"], r["week_number"]) == (year, week)]
    return rows[0] if rows else None


def drift(conn: psycopg.Connection) -> list[tuple]:
    # What the triggers maintain. The class view is refreshed, not maintained: between refreshes
    # check_course_weekly_performance() reports its lag by design (tests/test_refresh_and_check.py).
    return conn.execute(
        "select 'weekly', student_profile_id, week_start_date from check_weekly_performance()"
    ).fetchall()


def assert_exact(conn: psycopg.Connection) -> None:
    """The engine's own check finds no drift, and the independent oracle (tests/reference.py) agrees
    with every stored weekly figure: the engine's check shares its rules, the oracle does not."""
    from reference import differences

    assert drift(conn) == []
    assert differences(conn) == {}


def D(value: str) -> Decimal:
    return Decimal(value)
