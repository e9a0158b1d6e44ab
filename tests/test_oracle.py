"""The reference oracle is independent of the engine: a wrong rule that the engine's own check
(drift(): check_weekly_performance() and check_course_weekly_performance()) agrees with is still seen.

Each test plants one wrong rule in a transaction that rolls back, writes through it, and asserts that
drift() finds nothing while the oracle does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timezone
from decimal import Decimal

import pytest

from factories import add_assignment, add_course, add_guardian, add_quiz, add_student, drift
from reference import differences, expected_class_view, expected_trend, shown_trend, stored_class_view

UTC = UTC


# A wrong class view, from the source rows (UTC weeks suffice here): the mean of each student's mean.
AVERAGE_OF_AVERAGES = """
    with scores as (
      select student_profile_id, course_id, date_trunc('week', completed_at at time zone 'UTC')::date as w,
             coalesce(teacher_score, score) as v
        from quiz_attempt where completed_at is not null and coalesce(teacher_score, score) is not null
      union all
      select student_profile_id, course_id, date_trunc('week', coalesce(graded_at, submitted_at) at time zone 'UTC')::date,
             percentage
        from assignment_submission where is_graded and percentage is not null and coalesce(graded_at, submitted_at) is not null
    ), per_student as (
      select student_profile_id, course_id, w, avg(v) as mean, count(*) as n
        from scores where course_id is not null group by 1, 2, 3
    )
    select course_id, extract(isoyear from w)::integer as year, extract(week from w)::integer as week_number,
           w as week_start_date, round(avg(mean), 2)::numeric(5,2) as class_average,
           count(*)::integer as student_count, sum(n)::integer as item_count
      from per_student group by course_id, w"""


def plant(conn, sql: str) -> None:
    conn.execute(sql)


def test_a_week_rule_that_ignores_the_time_zone(conn):
    with conn.transaction(force_rollback=True):
        plant(
            conn,
            """
            create or replace function local_iso_week_start(p_instant timestamptz, p_time_zone text)
            returns date language sql immutable strict parallel safe
            as $$ select date_trunc('week', p_instant at time zone 'UTC')::date $$""",
        )
        sid = add_student(conn, "Lord Howe", "Australia/Lord_Howe")
        # Monday 00:10 local (+11), Sunday 13:10 UTC: the week after in the student's zone.
        add_quiz(conn, sid, 80, datetime(2024, 3, 10, 13, 10, tzinfo=UTC))
        assert drift(conn) == []
        assert "weekly" in differences(conn)


def test_a_rounding_rule_that_truncates(conn):
    with conn.transaction(force_rollback=True):
        plant(
            conn,
            """
            create or replace function weekly_average(p_sum numeric, p_count integer)
            returns numeric language sql immutable parallel safe
            as $$ select trunc(p_sum / nullif(p_count, 0), 2) $$""",
        )
        sid = add_student(conn)
        for score in ("80.00", "80.01", "80.01"):  # mean 80.00666…: 80.01, not 80.00
            add_quiz(conn, sid, Decimal(score), datetime(2024, 3, 5, 10, tzinfo=UTC))
        assert drift(conn) == []
        assert differences(conn)["weekly"]


def test_a_teacher_override_rule_that_is_ignored(conn):
    with conn.transaction(force_rollback=True):
        plant(
            conn,
            """
            create or replace function quiz_attempt_score_change(p_attempt quiz_attempt, p_sign integer)
            returns score_change language sql immutable parallel safe
            as $$ select row(p_attempt.student_profile_id, p_attempt.course_id, p_attempt.completed_at, true,
                             p_attempt.score, p_sign)::score_change $$""",
        )
        sid = add_student(conn)
        add_quiz(conn, sid, 40, datetime(2024, 3, 5, 10, tzinfo=UTC), teacher_score=90)
        assert drift(conn) == []
        assert differences(conn)["weekly"]


@pytest.fixture
def class_of_five(conn):
    """Five students in one course and week: four score 100 once, one scores 0 three times."""
    course = add_course(conn, "Maths")
    students = [add_student(conn, f"S{n}") for n in range(5)]
    for sid in students[:4]:
        add_quiz(conn, sid, 100, datetime(2024, 3, 5, 10, tzinfo=UTC), course_id=course)
    for _ in range(3):
        add_assignment(conn, students[4], 0, graded_at=datetime(2024, 3, 6, 10, tzinfo=UTC), course_id=course)
    guardian = add_guardian(conn, "five@example.org", students[0])
    token = conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0]
    conn.execute("select refresh_course_weekly_performance()")
    return {"course": course, "students": students, "token": token}


def test_the_class_view_by_hand_and_by_the_oracle(conn, class_of_five):
    # 400 / 7 = 57.142…: every score weighs the same, not every student
    assert expected_class_view(conn) == {
        (class_of_five["course"], date(2024, 3, 4)): (2024, 10, Decimal("57.14"), 5, 7)
    }
    assert stored_class_view(conn) == expected_class_view(conn)


def test_a_class_view_that_averages_student_averages(conn, class_of_five):
    with conn.transaction(force_rollback=True):
        plant(
            conn,
            f"""
            drop materialized view course_weekly_performance;
            create materialized view course_weekly_performance as {AVERAGE_OF_AVERAGES}""",
        )
        assert drift(conn) == []
        assert "class_view" in differences(conn, class_view=True)


def test_the_answer_shows_what_the_class_view_holds_and_the_oracle_sees_it_wrong(conn, client, class_of_five):
    """The answer's class average comes from the class view: planted wrong there, the oracle of the
    answer sees it (the app's threshold is 10 by default: 5 students is suppressed, so lower it)."""
    client.application.config["CLASS_AVERAGE_MIN_STUDENTS"] = 5
    sid, end = class_of_five["students"][0], date(2024, 3, 10)
    headers = {"Authorization": f"Bearer {class_of_five['token']}"}

    def answer():
        return shown_trend(
            client.get(f"/api/v1/students/{sid}/weekly-trend?weeks=4&end={end}", headers=headers).get_json()
        )

    assert answer() == expected_trend(conn, sid, end, 4, 5)
    assert answer()["courses"][0]["weeks"][-1]["class_average"] == 57.14
    conn.execute("update course set name = 'Art' where id = %s", (class_of_five["course"],))
    assert answer() == expected_trend(conn, sid, end, 4, 5)  # names come from the course, not a copy
    conn.execute("drop materialized view course_weekly_performance")
    conn.execute(f"create materialized view course_weekly_performance as {AVERAGE_OF_AVERAGES}")
    conn.execute("grant select on course_weekly_performance to weekly_trends_reader")
    assert answer() != expected_trend(conn, sid, end, 4, 5)
    client.application.config["CLASS_AVERAGE_MIN_STUDENTS"] = 6  # suppressed: 5 students
    assert answer() == expected_trend(conn, sid, end, 4, 6)
