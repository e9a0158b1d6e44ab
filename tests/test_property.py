"""Random sequences of writes: the weekly table always equals an independent Python recomputation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import drift
from reference import expected_weeks, stored_weeks

ZONES = ["UTC", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe"]
# Around ISO-year boundaries, where weeks belong to the other calendar year.
BASES = [datetime(2020, 12, 30, tzinfo=timezone.utc), datetime(2024, 12, 27, tzinfo=timezone.utc)]

instants = st.one_of(
    st.none(),
    st.builds(lambda b, h: BASES[b] + timedelta(hours=h), st.integers(0, 1), st.integers(0, 24 * 12)),
)
scores = st.one_of(st.none(), st.decimals(min_value=0, max_value=Decimal("150.00"), places=2))
student_ix = st.integers(0, 2)
course_ix = st.one_of(st.none(), st.integers(0, 1))

quiz_rows = st.lists(st.tuples(student_ix, course_ix, scores, scores, instants), min_size=1, max_size=6)
assignment_rows = st.lists(st.tuples(student_ix, course_ix, scores, st.booleans(), instants, instants), min_size=1, max_size=6)

operations = st.one_of(
    st.tuples(st.just("insert_quizzes"), quiz_rows),
    st.tuples(st.just("insert_assignments"), assignment_rows),
    # multi-row updates and deletes select rows by id modulo
    st.tuples(st.just("move_quizzes"), st.integers(1, 3), st.integers(0, 2), st.integers(-10, 10)),
    st.tuples(st.just("override_quizzes"), st.integers(1, 3), st.integers(0, 2), scores),
    st.tuples(st.just("reassign_quizzes"), st.integers(1, 3), st.integers(0, 2), student_ix, course_ix),
    st.tuples(st.just("grade_assignments"), st.integers(1, 3), st.integers(0, 2), st.booleans(), instants),
    st.tuples(st.just("rescore_assignments"), st.integers(1, 3), st.integers(0, 2), scores),
    st.tuples(st.just("delete"), st.sampled_from(["quiz_attempt", "assignment_submission"]), st.integers(1, 3), st.integers(0, 2)),
    st.tuples(st.just("time_zone"), student_ix, st.sampled_from(ZONES)),
)


def apply(conn: psycopg.Connection, op: tuple, students: list[int], courses: list[int]) -> None:
    kind, *args = op
    course = lambda ix: None if ix is None else courses[ix]  # noqa: E731
    if kind == "insert_quizzes":
        with conn.cursor() as cur:
            cur.executemany(
                "insert into quiz_attempt (student_profile_id, course_id, score, teacher_score, completed_at) values (%s, %s, %s, %s, %s)",
                [(students[s], course(c), sc, t, at) for s, c, sc, t, at in args[0]],
            )
    elif kind == "insert_assignments":
        # one multi-row statement
        rows = [(students[s], course(c), p, g, sub, gr) for s, c, p, g, sub, gr in args[0]]
        placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
        conn.execute(
            "insert into assignment_submission (student_profile_id, course_id, percentage, is_graded, submitted_at, graded_at)"
            f" values {placeholders}",
            [v for row in rows for v in row],
        )
    elif kind == "move_quizzes":
        k, r, days = args
        conn.execute(
            "update quiz_attempt set completed_at = completed_at + make_interval(hours => %s * 13) where id %% %s = %s",
            (days, k, r % k),
        )
    elif kind == "override_quizzes":
        k, r, score = args
        conn.execute("update quiz_attempt set teacher_score = %s where id %% %s = %s", (score, k, r % k))
    elif kind == "reassign_quizzes":
        k, r, s, c = args
        conn.execute(
            "update quiz_attempt set student_profile_id = %s, course_id = %s where id %% %s = %s",
            (students[s], course(c), k, r % k),
        )
    elif kind == "grade_assignments":
        k, r, graded, when = args
        conn.execute(
            "update assignment_submission set is_graded = %s, graded_at = %s where id %% %s = %s", (graded, when, k, r % k)
        )
    elif kind == "rescore_assignments":
        k, r, score = args
        conn.execute("update assignment_submission set percentage = %s where id %% %s = %s", (score, k, r % k))
    elif kind == "delete":
        table, k, r = args
        conn.execute(f"delete from {table} where id %% %s = %s", (k, r % k))
    elif kind == "time_zone":
        s, zone = args
        conn.execute("update student_profile set time_zone = %s where id = %s", (zone, students[s]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operations, min_size=1, max_size=10), zones=st.lists(st.sampled_from(ZONES), min_size=3, max_size=3))
def test_random_writes_match_an_independent_recomputation(conn, ops, zones):
    with conn.transaction(force_rollback=True):  # each example starts from the empty database
        students = [
            conn.execute("insert into student_profile (display_name, time_zone) values ('S', %s) returning id", (z,)).fetchone()[0]
            for z in zones
        ]
        courses = [conn.execute("insert into course (name) values ('C') returning id").fetchone()[0] for _ in range(2)]
        for op in ops:
            apply(conn, op, students, courses)
            assert stored_weeks(conn) == expected_weeks(conn), op
        assert drift(conn) == []
