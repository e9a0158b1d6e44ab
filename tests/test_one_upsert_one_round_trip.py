"""Issue 11: one weekly row per write (and what that asks of concurrent writers), the drift guard kept
for UPDATE and DELETE, and the parents' answer from one SQL call under the reader role."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, date, datetime, timezone

import psycopg
import pytest
from psycopg import errors

from factories import add_course, add_quiz, add_student, drift, weekly_rows

UTC = UTC
TREND = "select status, reader_id, answer from weekly_trend_json(%s, null, %s, 6, %s, 5, 'test', %s)"


def test_no_per_course_table_and_the_class_view_comes_from_the_source_rows(conn):
    assert conn.execute("select to_regclass('student_course_weekly_performance')").fetchone()[0] is None
    course = add_course(conn)
    for n in range(3):
        add_quiz(
            conn,
            add_student(conn, time_zone="Asia/Tokyo"),
            60 + n,
            datetime(2024, 3, 3, 20, tzinfo=UTC),
            course_id=course,
        )  # Monday 5:00 in Tokyo: week 10 there, week 9 in UTC
    conn.execute("select refresh_course_weekly_performance()")
    assert conn.execute(
        "select week_number, class_average, student_count, item_count from course_weekly_performance"
        " where course_id = %s",
        (course,),
    ).fetchall() == [(10, 61, 3, 3)]


def test_two_writers_creating_the_same_student_week_at_once_both_count(db_url):
    """The first single-row INSERT of a week inserts its row; a second one at the same time waits for it on
    the unique index and adds to it (no lost update, no unique violation)."""
    with psycopg.connect(db_url, autocommit=True) as admin:
        sid = add_student(admin)
    at = datetime(2024, 5, 6, 10, tzinfo=UTC)
    first = psycopg.connect(db_url)
    try:
        first.execute(
            "insert into quiz_attempt (student_profile_id, score, completed_at) values (%s, 80, %s)", (sid, at)
        )
        errors_seen: list[Exception] = []

        def second_writer():
            try:
                with psycopg.connect(db_url, autocommit=True) as second:
                    second.execute(
                        "insert into quiz_attempt (student_profile_id, score, completed_at) values (%s, 60, %s)",
                        (sid, at),
                    )
            except Exception as error:  # noqa: BLE001 - reported below
                errors_seen.append(error)

        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for the first writer's uncommitted row
        first.commit()
        thread.join(timeout=10)
        assert not thread.is_alive() and errors_seen == []
    finally:
        first.close()
    with psycopg.connect(db_url, autocommit=True) as conn:
        [row] = weekly_rows(conn, sid)
        assert (row["quiz_count"], row["quiz_average"]) == (2, 70)
        assert drift(conn) == []


@pytest.mark.parametrize(
    "statement",
    [
        "delete from quiz_attempt where student_profile_id = %s",
        "update quiz_attempt set completed_at = completed_at + interval '7 days' where student_profile_id = %s",
    ],
)
def test_updates_and_deletes_keep_the_drift_guard(conn, statement):
    sid = add_student(conn)
    add_quiz(conn, sid, 80, datetime(2024, 5, 6, 10, tzinfo=UTC))
    conn.execute("update student_weekly_performance set quiz_count = 0 where student_profile_id = %s", (sid,))
    with pytest.raises(errors.DataException, match="negative counts"):
        conn.execute(statement, (sid,))


def test_an_insert_adds_to_its_week_and_a_delete_empties_it(conn):
    sid = add_student(conn, time_zone="America/New_York")
    first = add_quiz(conn, sid, 81, datetime(2024, 5, 6, 10, tzinfo=UTC))
    add_quiz(conn, sid, 70, datetime(2024, 5, 7, 10, tzinfo=UTC))
    [row] = weekly_rows(conn, sid)
    assert (row["quiz_count"], row["quiz_average"], row["overall_average"]) == (2, 75.5, 75.5)
    conn.execute("delete from quiz_attempt where student_profile_id = %s and id <> %s", (sid, first))
    conn.execute("delete from quiz_attempt where id = %s", (first,))
    assert weekly_rows(conn, sid) == []
    assert drift(conn) == []


@pytest.fixture
def linked(conn, family):
    course = add_course(conn, "Maths")
    add_quiz(conn, family["a"], 70, datetime(2024, 1, 16, 10, tzinfo=UTC), course_id=course)
    add_quiz(conn, family["b"], 90, datetime(2024, 1, 16, 10, tzinfo=UTC), course_id=course)
    return family | {"hash": hashlib.sha256(family["token"].encode()).digest(), "course": course}


def as_reader(conn, query, params):
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        return conn.execute(query, params).fetchone()


def test_the_answer_comes_from_one_call_as_the_reader_role(conn, linked):
    status, guardian, answer = as_reader(conn, TREND, (linked["hash"], linked["a"], date(2024, 1, 20), True))
    assert (status, guardian) == (200, linked["guardian"])
    assert '"courses"' in answer and '"weekly_stats"' in answer
    assert conn.execute("select guardian_id, student_profile_id, endpoint from access_log").fetchall() == [
        (linked["guardian"], linked["a"], "test")
    ]


def test_another_familys_child_and_an_unknown_token_get_nothing(conn, linked):
    assert as_reader(conn, TREND, (linked["hash"], linked["b"], date(2024, 1, 20), True)) == (
        404,
        linked["guardian"],
        None,
    )
    assert as_reader(conn, TREND, (hashlib.sha256(b"wt_" + b"0" * 64).digest(), linked["a"], None, True)) == (
        401,
        None,
        None,
    )
    assert conn.execute("select count(*) from access_log").fetchone()[0] == 0


def test_a_replica_read_writes_no_log_in_its_transaction(conn, linked):
    status, _, _ = as_reader(conn, TREND, (linked["hash"], linked["a"], date(2024, 1, 20), False))
    assert status == 200
    assert conn.execute("select count(*) from access_log").fetchone()[0] == 0


def test_the_source_rows_reach_the_reader_only_for_a_linked_child(conn, linked):
    query = "select count(*) from linked_course_class_weeks(%s, '2024-01-01', '2024-02-01', 5) where quiz_count > 0"
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        assert conn.execute(query, (linked["a"],)).fetchone()[0] == 0  # no guardian set: nothing
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select count(*) from quiz_attempt")
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        conn.execute("select set_config('app.guardian_id', %s, true)", (str(linked["guardian"]),))
        assert conn.execute(query, (linked["a"],)).fetchone()[0] == 1
        assert conn.execute(query, (linked["b"],)).fetchone()[0] == 0  # another family's child


def test_the_reads_commit_without_waiting_for_the_flush_and_only_they(conn, linked):
    """weekly_trend_json() turns synchronous_commit off for its own transaction (its only write is the
    access-log entry); the pooled connection's next transaction, and any write, commits durably."""
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        assert conn.execute(TREND, (linked["hash"], linked["a"], date(2024, 1, 20), True)).fetchone()[0] == 200
        assert conn.execute("select current_setting('synchronous_commit')").fetchone()[0] == "off"
    assert conn.execute("select current_setting('synchronous_commit')").fetchone()[0] == "on"
    with conn.transaction():
        add_quiz(conn, linked["a"], 50, datetime(2024, 1, 17, 10, tzinfo=UTC))
        assert conn.execute("select current_setting('synchronous_commit')").fetchone()[0] == "on"
    # A request that is refused changes nothing either.
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        assert conn.execute(TREND, (linked["hash"], linked["b"], None, True)).fetchone()[0] == 404
        assert conn.execute("select current_setting('synchronous_commit')").fetchone()[0] == "on"


HOT_PATH_PIECES = (
    "score_change_delta",
    "weekly_deltas",
    "guardian_children_json",
    "student_courses_json",
    "weekly_trend_answer_json",
    "alert_week_is_low",
    "alert_week_is_good",
    "alert_scored_weeks",
)


def test_the_hot_paths_named_pieces_are_inlined_not_called(conn, linked):
    """Issue 23 split the trigger and the parents' answer into named helpers that cost no call: the
    planner inlines them (SQL, no SET clause, not SECURITY DEFINER). A call PostgreSQL makes is counted
    in pg_stat_xact_user_functions (track_functions = all); an inlined one is not."""
    with conn.transaction():
        try:
            conn.execute("set local track_functions = 'all'")
        except errors.InsufficientPrivilege:
            pytest.skip("track_functions needs a superuser")
        a, course = linked["a"], linked["course"]
        add_quiz(conn, a, 80, datetime(2024, 1, 17, 10, tzinfo=UTC), course_id=course)  # in place
        conn.execute(
            "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
            " values (%s, %s, 60, '2024-01-23 10:00Z'), (%s, %s, 65, '2024-01-24 10:00Z')",
            (a, course, a, course),
        )
        conn.execute("update quiz_attempt set score = score + 1 where student_profile_id = %s", (a,))
        conn.execute("set local role weekly_trends_reader")
        status, _, answer = conn.execute(
            "select status, reader_id, answer from weekly_trend_json(%s, null, %s, 6, %s, 5, 'test', false, true)",
            (linked["hash"], a, date(2024, 1, 27)),
        ).fetchone()
        conn.execute("reset role")
        calls = dict(conn.execute("select funcname, calls from pg_stat_xact_user_functions").fetchall())
    assert status == 200 and '"Maths"' in answer
    assert calls["tg_score_source__maintain_weekly"] == 3 and calls["weekly_trend_json"] == 1
    assert calls["weekly_trend_alerts"] == 1  # it runs (PL/pgSQL), its low and good weeks inlined
    assert calls["lock_changed_students"] == 1  # the UPDATE only: no INSERT pays for it
    assert {name: calls[name] for name in HOT_PATH_PIECES if name in calls} == {}
