"""Bad input is refused with a clear error (asserted on SQLSTATE), and nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime, timezone

import psycopg
import pytest
from psycopg import errors

from factories import add_assignment, add_quiz, add_student

T = datetime(2024, 3, 4, 12, tzinfo=UTC)


def snapshot(conn) -> tuple:
    """Everything a bad write could have touched."""
    return tuple(
        conn.execute(f"select coalesce(jsonb_agg(t order by t::text), '[]') from {table} t").fetchone()[0]
        for table in (
            "student_profile",
            "quiz_attempt",
            "assignment_submission",
            "student_weekly_performance",
        )
    )


@pytest.fixture
def seeded(conn):
    sid = add_student(conn, time_zone="Europe/Paris")
    add_quiz(conn, sid, 80, T)
    add_assignment(conn, sid, 70, graded_at=T)
    return conn, sid


@pytest.mark.parametrize(
    "value, error",
    [
        ("-0.01", errors.CheckViolation),
        ("NaN", errors.CheckViolation),
        ("Infinity", errors.NumericValueOutOfRange),
        ("-Infinity", errors.NumericValueOutOfRange),
        ("1000", errors.NumericValueOutOfRange),
    ],
)
@pytest.mark.parametrize(
    "statement",
    [
        "insert into quiz_attempt (student_profile_id, score, completed_at) values (%(sid)s, %(v)s::numeric, now())",
        "insert into quiz_attempt (student_profile_id, score, teacher_score, completed_at) values (%(sid)s, 5, %(v)s::numeric, now())",
        "update quiz_attempt set score = %(v)s::numeric where student_profile_id = %(sid)s",
        "insert into assignment_submission (student_profile_id, percentage, is_graded, graded_at) values (%(sid)s, %(v)s::numeric, true, now())",
        "update assignment_submission set percentage = %(v)s::numeric where student_profile_id = %(sid)s",
    ],
)
def test_invalid_scores_are_refused(seeded, statement, value, error):
    conn, sid = seeded
    before = snapshot(conn)
    with pytest.raises(error):
        conn.execute(statement, {"sid": sid, "v": value})
    assert snapshot(conn) == before


def test_a_bad_row_in_a_multi_row_statement_writes_nothing(seeded):
    conn, sid = seeded
    before = snapshot(conn)
    with pytest.raises(errors.CheckViolation):
        conn.execute(
            "insert into quiz_attempt (student_profile_id, score, completed_at)"
            " values (%(sid)s, 90, now()), (%(sid)s, 95, now()), (%(sid)s, -1, now())",
            {"sid": sid},
        )
    assert snapshot(conn) == before


@pytest.mark.parametrize(
    "table, columns", [("quiz_attempt", "score, completed_at"), ("assignment_submission", "percentage, graded_at")]
)
def test_unknown_student_is_refused(seeded, table, columns):
    conn, _ = seeded
    before = snapshot(conn)
    extra = ", is_graded" if table == "assignment_submission" else ""
    with pytest.raises(errors.ForeignKeyViolation):
        conn.execute(
            f"insert into {table} (student_profile_id, {columns}{extra}) values (987654, 50, now(){', true' if extra else ''})"
        )
    assert snapshot(conn) == before


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "EST5EDT-nonsense", "utc+25"])
def test_unknown_time_zone_is_refused_on_insert_and_update(seeded, zone):
    conn, sid = seeded
    before = snapshot(conn)
    with pytest.raises(errors.InvalidParameterValue, match="unknown time zone"):
        conn.execute("insert into student_profile (display_name, time_zone) values ('X', %s)", (zone,))
    with pytest.raises(errors.InvalidParameterValue, match="unknown time zone"):
        conn.execute("update student_profile set time_zone = %s where id = %s", (zone, sid))
    assert snapshot(conn) == before


def test_time_zone_must_not_be_null(seeded):
    conn, sid = seeded
    with pytest.raises(errors.NotNullViolation):
        conn.execute("update student_profile set time_zone = null where id = %s", (sid,))


def test_aggregates_cannot_go_negative_silently(seeded):
    """If someone corrupts the aggregates, a delete that would go below zero fails loudly."""
    conn, sid = seeded
    conn.execute("delete from student_weekly_performance")
    with pytest.raises(errors.DataException, match="drifted"):
        conn.execute("delete from quiz_attempt where student_profile_id = %s", (sid,))
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 1


def test_a_failed_statement_in_a_transaction_rolls_back_its_aggregates(db_url):
    with psycopg.connect(db_url) as conn:
        sid = add_student(conn)
        conn.commit()
        with pytest.raises(errors.CheckViolation):
            with conn.transaction():
                add_quiz(conn, sid, 50, T)
                add_quiz(conn, sid, -5, T)
        assert conn.execute("select count(*) from student_weekly_performance").fetchone()[0] == 0
