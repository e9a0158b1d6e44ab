"""Eight writers on shared students under READ COMMITTED, with rebuilds and time-zone changes
running beside them: no lost update (zero drift) and no deadlock."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors

from factories import assert_exact
from reference import expected_weeks, stored_weeks

WRITERS = 8
STUDENTS = 12
OPERATIONS_PER_WRITER = 150
TIME_LIMIT_S = 60
BASE = datetime(2024, 12, 23, tzinfo=UTC)


def writer(url: str, seed: int, students: list[int], courses: list[int], errors_seen: list, deadline: float) -> None:
    rng = random.Random(seed)
    own: list[
        int
    ] = []  # each writer updates and deletes only the rows it inserted: the shared rows are the weekly ones
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(OPERATIONS_PER_WRITER):
            if time.monotonic() > deadline:
                break
            try:
                action = rng.random()
                if action < 0.5 or len(own) < 5:
                    rows = [
                        (
                            rng.choice(students),
                            rng.choice(courses + [None]),
                            round(rng.uniform(0, 110), 2),
                            BASE + timedelta(hours=rng.randrange(0, 24 * 21)),
                        )
                        for _ in range(rng.randint(1, 8))
                    ]
                    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
                    table = rng.choice(["quiz", "assignment"])
                    if table == "quiz":
                        sql = f"insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values {values} returning id"
                    else:
                        sql = (
                            "insert into assignment_submission (student_profile_id, course_id, percentage, graded_at)"
                            f" values {values} returning id"
                        )
                    ids = [r[0] for r in conn.execute(sql, [v for row in rows for v in row]).fetchall()]
                    if table == "assignment":
                        conn.execute("update assignment_submission set is_graded = true where id = any(%s)", (ids,))
                    else:
                        own.extend(ids)
                elif action < 0.75:
                    chosen = rng.sample(own, min(len(own), rng.randint(1, 6)))
                    conn.execute(
                        "update quiz_attempt set completed_at = completed_at + make_interval(days => %s),"
                        " student_profile_id = %s, score = score / 2 where id = any(%s)",
                        (rng.randint(-9, 9), rng.choice(students), chosen),
                    )
                elif action < 0.9:
                    chosen = rng.sample(own, min(len(own), rng.randint(1, 4)))
                    conn.execute(
                        "update quiz_attempt set teacher_score = %s where id = any(%s)",
                        (rng.choice([None, 100]), chosen),
                    )
                else:
                    chosen = rng.sample(own, min(len(own), rng.randint(1, 4)))
                    conn.execute("delete from quiz_attempt where id = any(%s)", (chosen,))
                    own = [i for i in own if i not in chosen]
            except psycopg.Error as exc:  # recorded, asserted on below
                errors_seen.append(exc)


def maintainer(url: str, students: list[int], stop: threading.Event, errors_seen: list, counts: dict) -> None:
    rng = random.Random(99)
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            try:
                if rng.random() < 0.5:
                    conn.execute("select refresh_weekly_performance(%s, null, false)", (rng.choice([None] + students),))
                    counts["refresh"] += 1
                else:
                    conn.execute(
                        "update student_profile set time_zone = %s where id = %s",
                        (rng.choice(["UTC", "Asia/Tokyo", "America/Los_Angeles"]), rng.choice(students)),
                    )
                    counts["time_zone"] += 1
            except psycopg.Error as exc:
                errors_seen.append(exc)
            time.sleep(0.05)


def wait_for_lock_wait(url: str, pid: int, timeout_s: float = 10) -> str:
    """Polls pg_stat_activity until the backend pid waits for a lock; returns the query it waits in."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select wait_event_type, wait_event, query from pg_stat_activity where pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return row[2]
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not wait for a lock within {timeout_s} s: {row}")


def test_concurrent_writers_leave_no_drift_and_no_deadlock(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        students = [
            conn.execute("insert into student_profile (display_name) values ('S') returning id").fetchone()[0]
            for _ in range(STUDENTS)
        ]
        courses = [conn.execute("insert into course (name) values ('C') returning id").fetchone()[0] for _ in range(3)]

    errors_seen: list = []
    counts = {"refresh": 0, "time_zone": 0}
    deadline = time.monotonic() + TIME_LIMIT_S
    stop = threading.Event()
    threads = [
        threading.Thread(target=writer, args=(db_url, n, students, courses, errors_seen, deadline))
        for n in range(WRITERS)
    ]
    side = threading.Thread(target=maintainer, args=(db_url, students, stop, errors_seen, counts))
    for t in threads + [side]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    side.join()

    assert [e for e in errors_seen if isinstance(e, errors.DeadlockDetected)] == []
    assert errors_seen == []
    assert counts["refresh"] > 0 and counts["time_zone"] > 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] > WRITERS * 20
        assert_exact(conn)
        assert stored_weeks(conn) == expected_weeks(conn)


def test_full_refresh_does_not_deadlock_with_a_writer_locking_students_out_of_id_order(db_url):
    """A writer's INSERTs lock their students (foreign-key checks) in row order, here the higher id
    first; a full refresh must not lock students in id order against it."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        low, high = (
            setup.execute("insert into student_profile (display_name) values ('S') returning id").fetchone()[0]
            for _ in range(2)
        )
    insert = "insert into quiz_attempt (student_profile_id, score, completed_at) values (%s, 80, %s)"
    outcome: dict = {}
    with psycopg.connect(db_url) as writer_conn:
        writer_conn.execute(insert, (high, BASE))  # holds the higher id, transaction open

        started = threading.Event()

        def refresh() -> None:
            try:
                with psycopg.connect(db_url, autocommit=True) as conn:
                    outcome["pid"] = conn.info.backend_pid
                    started.set()
                    outcome["written"] = conn.execute("select refresh_weekly_performance()").fetchone()[0]
            except psycopg.Error as exc:  # a deadlock would land here or in the writer
                outcome["error"] = exc
            finally:
                started.set()

        refresher = threading.Thread(target=refresh)
        refresher.start()
        assert started.wait(10)
        wait_for_lock_wait(db_url, outcome["pid"])  # the refresh now waits for the writer, holding what it took
        writer_conn.execute(insert, (low, BASE))  # the lower id: deadlocked here if the refresh held it
        writer_conn.commit()
        refresher.join(timeout=30)
    assert not refresher.is_alive() and "error" not in outcome, outcome
    with psycopg.connect(db_url) as conn:
        assert_exact(conn)
        assert (
            conn.execute(
                "select count(*) from student_weekly_performance where student_profile_id in (%s, %s)", (low, high)
            ).fetchone()[0]
            == 2
        )


def writes_of_one_student(conn: psycopg.Connection, sid: int, course: int) -> None:
    """Every kind of write a program makes for one student, in the week both students share."""
    one = "insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values (%s, %s, %s, %s) returning id"
    first = conn.execute(one, (sid, course, 70, BASE)).fetchone()[0]
    conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
        " values (%s, %s, 80, %s), (%s, null, 90, %s)",
        (sid, course, BASE, sid, BASE + timedelta(days=8)),
    )
    conn.execute(
        "insert into assignment_submission (student_profile_id, course_id, percentage, is_graded, graded_at)"
        " values (%s, %s, 60, true, %s)",
        (sid, course, BASE),
    )
    conn.execute(
        "update quiz_attempt set score = 75, completed_at = completed_at + interval '1 day' where id = %s", (first,)
    )
    conn.execute("update quiz_attempt set course_id = null where id = %s", (first,))
    conn.execute("update assignment_submission set graded_at = null where student_profile_id = %s", (sid,))
    conn.execute("delete from quiz_attempt where id = %s", (first,))
    # over 1,000 rows in one statement: the trigger's bulk plan
    conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
        " select %s, %s, i %% 100, %s::timestamptz + make_interval(mins => i) from generate_series(1, 1200) i",
        (sid, course, BASE),
    )
    conn.execute("update quiz_attempt set score = score / 2 where student_profile_id = %s", (sid,))
    conn.execute("update student_profile set time_zone = 'Australia/Lord_Howe' where id = %s", (sid,))
    conn.execute("select refresh_weekly_performance(%s, null, false)", (sid,))


def test_writers_on_different_students_never_wait_for_each_other(db_url):
    """One writer holds, uncommitted, every kind of write for one student; another, with a lock_timeout
    that turns any wait into an error, makes every kind of write for another student in the same
    course and week. Then the other way round."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        students = [
            setup.execute("insert into student_profile (display_name) values ('S') returning id").fetchone()[0]
            for _ in range(2)
        ]
        course = setup.execute("insert into course (name) values ('Shared') returning id").fetchone()[0]
        for sid in students:  # rows both already have in the shared week
            setup.execute(
                "insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values (%s, %s, 50, %s)",
                (sid, course, BASE),
            )
    for holding, other in (students, reversed(students)):
        with psycopg.connect(db_url) as holder, psycopg.connect(db_url, autocommit=True) as free:
            writes_of_one_student(holder, holding, course)  # its transaction stays open, its locks held
            free.execute("set lock_timeout = '300ms'")
            started = time.monotonic()
            writes_of_one_student(free, other, course)  # LockNotAvailable if it had to wait
            assert time.monotonic() - started < 10
            holder.commit()
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert_exact(conn)
        assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 2 + 2 * 2 * 1202


def test_the_lock_timeout_harness_sees_a_wait_on_the_same_student(db_url):
    """The test above can fail: a writer of the same student does wait, and lock_timeout reports it."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        sid = setup.execute("insert into student_profile (display_name) values ('S') returning id").fetchone()[0]
        course = setup.execute("insert into course (name) values ('C') returning id").fetchone()[0]
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url, autocommit=True) as free:
        writes_of_one_student(holder, sid, course)
        free.execute("set lock_timeout = '300ms'")
        with pytest.raises(errors.LockNotAvailable):
            free.execute("update student_profile set time_zone = 'UTC' where id = %s", (sid,))
        holder.rollback()
