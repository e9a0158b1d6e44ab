"""Missing work (issue 26, item 1): course_work, enrollment, course_work_excusal and the scores' links,
written by plain SQL as any writer would, and student_missing_work()'s rule, against the oracle
(tests/reference.py missing_work())."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import add_course, add_guardian, add_quiz, add_student
from reference import missing_work

UTC = UTC
PAST = datetime(2026, 3, 4, 15, tzinfo=UTC)  # a Wednesday, ISO 2026-W10
W10 = date(2026, 3, 2)


def add_work(conn, course_id, due_at, *, title="Fractions worksheet", kind="assignment") -> int:
    return conn.execute(
        "insert into course_work (course_id, title, kind, due_at) values (%s, %s, %s, %s) returning id",
        (course_id, title, kind, due_at),
    ).fetchone()[0]


def enroll(conn, student_id, course_id, start_on=None, end_on=None) -> int:
    return conn.execute(
        "insert into enrollment (student_profile_id, course_id, start_on, end_on) values (%s, %s, %s, %s) returning id",
        (student_id, course_id, start_on, end_on),
    ).fetchone()[0]


def missing(conn, student_id, p_from=None, p_until=None) -> list[tuple]:
    return conn.execute(
        "select course_work_id, course_id, course_name, title, kind, due_at, week_start_date"
        "  from student_missing_work(%s, %s, %s) order by due_at, course_work_id",
        (student_id, p_from, p_until),
    ).fetchall()


def missing_ids(conn, student_id) -> list[int]:
    return [r[0] for r in missing(conn, student_id)]


@pytest.fixture
def one(conn):
    """A student enrolled open-ended in Maths, with one piece of work due in the past."""
    student = add_student(conn, "Ann", "Europe/London")
    course = add_course(conn, "Maths")
    enroll(conn, student, course)
    work = add_work(conn, course, PAST)
    return {"student": student, "course": course, "work": work}


def test_work_due_in_the_past_is_missing_with_its_course_and_week(conn, one):
    assert missing(conn, one["student"]) == [
        (one["work"], one["course"], "Maths", "Fractions worksheet", "assignment", PAST, W10)
    ]
    assert missing(conn, one["student"], W10, W10 + timedelta(days=6)) == missing(conn, one["student"])
    assert missing(conn, one["student"], W10 + timedelta(days=7), None) == []
    assert missing(conn, one["student"], None, W10 - timedelta(days=1)) == []


def test_work_not_yet_due_or_without_a_due_date_is_not_missing(conn, one):
    add_work(conn, one["course"], datetime.now(UTC) + timedelta(days=2), title="Later")
    add_work(conn, one["course"], None, title="Whenever")
    assert missing_ids(conn, one["student"]) == [one["work"]]


def test_a_counted_score_linked_ends_it_late_or_not_and_an_uncounted_one_does_not(conn, one):
    s, c, w = one["student"], one["course"], one["work"]
    # An ungraded submission and an incomplete quiz do not count: still missing.
    conn.execute(
        "insert into assignment_submission (student_profile_id, course_id, course_work_id, percentage, is_graded,"
        " submitted_at) values (%s, %s, %s, 80, false, %s)",
        (s, c, w, PAST),
    )
    conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, course_work_id, score) values (%s, %s, %s, 70)",
        (s, c, w),
    )
    assert missing_ids(conn, s) == [w]
    # Grading it, a week late: no longer missing.
    conn.execute("update assignment_submission set is_graded = true where course_work_id = %s", (w,))
    assert missing_ids(conn, s) == []
    conn.execute("update assignment_submission set is_graded = false where course_work_id = %s", (w,))
    assert missing_ids(conn, s) == [w]
    # Completing the quiz linked to it counts too (any kind of score ends it).
    conn.execute("update quiz_attempt set completed_at = %s where course_work_id = %s", (PAST + timedelta(days=9), w))
    assert missing_ids(conn, s) == []


def test_a_score_linked_to_the_work_by_update_of_an_existing_score_ends_it(conn, one):
    s, c, w = one["student"], one["course"], one["work"]
    q = add_quiz(conn, s, 90, PAST, course_id=c)
    assert missing_ids(conn, s) == [w]
    conn.execute("update quiz_attempt set course_work_id = %s where id = %s", (w, q))
    assert missing_ids(conn, s) == []
    conn.execute("delete from quiz_attempt where id = %s", (q,))
    assert missing_ids(conn, s) == [w]


def test_another_students_score_does_not_end_it(conn, one):
    other = add_student(conn, "Ben")
    enroll(conn, other, one["course"])
    conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, course_work_id, score, completed_at)"
        " values (%s, %s, %s, 90, %s)",
        (other, one["course"], one["work"], PAST),
    )
    assert missing_ids(conn, one["student"]) == [one["work"]]
    assert missing_ids(conn, other) == []


def test_an_excusal_ends_it_and_its_removal_brings_it_back(conn, one):
    conn.execute(
        "insert into course_work_excusal (course_work_id, student_profile_id) values (%s, %s)",
        (one["work"], one["student"]),
    )
    assert missing_ids(conn, one["student"]) == []
    conn.execute("delete from course_work_excusal where course_work_id = %s", (one["work"],))
    assert missing_ids(conn, one["student"]) == [one["work"]]


def test_deleting_the_work_ends_it_and_unlinks_its_scores(conn, one):
    q = conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, course_work_id, score, completed_at)"
        " values (%s, %s, %s, 90, %s) returning id",
        (one["student"], one["course"], one["work"], PAST),
    ).fetchone()[0]
    conn.execute("delete from course_work where id = %s", (one["work"],))
    assert missing_ids(conn, one["student"]) == []
    assert conn.execute("select course_id, course_work_id from quiz_attempt where id = %s", (q,)).fetchone() == (
        one["course"],
        None,
    )


def test_deleting_the_course_deletes_its_work_and_keeps_the_scores(conn, one):
    q = conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, course_work_id, score, completed_at)"
        " values (%s, %s, %s, 90, %s) returning id",
        (one["student"], one["course"], one["work"], PAST),
    ).fetchone()[0]
    conn.execute("delete from course where id = %s", (one["course"],))
    assert conn.execute("select count(*) from course_work").fetchone()[0] == 0
    assert conn.execute("select course_id, course_work_id from quiz_attempt where id = %s", (q,)).fetchone() == (
        None,
        None,
    )


def test_moving_the_due_date_later_moves_or_ends_it(conn, one):
    s, w = one["student"], one["work"]
    conn.execute("update course_work set due_at = due_at + interval '7 days' where id = %s", (w,))
    assert [(r[0], r[6]) for r in missing(conn, s)] == [(w, W10 + timedelta(days=7))]
    conn.execute("update course_work set due_at = now() + interval '1 day' where id = %s", (w,))
    assert missing_ids(conn, s) == []
    conn.execute("update course_work set due_at = null where id = %s", (w,))
    assert missing_ids(conn, s) == []


def test_the_enrollment_decides_by_the_local_day_it_was_due(conn):
    # Due Sunday 8 March 2026 23:30 in New York (EDT since 02:00 that day) = Monday 03:30 UTC: the local day is the Sunday (W10).
    s = add_student(conn, "Cy", "America/New_York")
    c = add_course(conn, "History")
    due = datetime(2026, 3, 9, 3, 30, tzinfo=UTC)
    w = add_work(conn, c, due)
    e = enroll(conn, s, c, date(2026, 1, 5), date(2026, 3, 8))
    assert [(r[0], r[6]) for r in missing(conn, s)] == [(w, W10)]
    # Ended the day before it was due: not missing.
    conn.execute("update enrollment set end_on = date '2026-03-07' where id = %s", (e,))
    assert missing_ids(conn, s) == []
    # Started the day after: not missing either; starting that day: missing.
    conn.execute("update enrollment set start_on = date '2026-03-09', end_on = null where id = %s", (e,))
    assert missing_ids(conn, s) == []
    conn.execute("update enrollment set start_on = date '2026-03-08' where id = %s", (e,))
    assert missing_ids(conn, s) == [w]
    # A time-zone change moves the local day and the week: in UTC it is due Monday 9 March (W11).
    conn.execute("update enrollment set start_on = null where id = %s", (e,))
    conn.execute("update student_profile set time_zone = 'UTC' where id = %s", (s,))
    assert [(r[0], r[6]) for r in missing(conn, s)] == [(w, W10 + timedelta(days=7))]


def test_not_enrolled_means_never_missing_and_two_periods_count_once(conn, one):
    stranger = add_student(conn, "Dee")
    assert missing_ids(conn, stranger) == []
    enroll(conn, one["student"], one["course"], date(2026, 1, 1))
    assert missing_ids(conn, one["student"]) == [one["work"]]


@pytest.mark.parametrize(
    ("statement", "sqlstate", "constraint"),
    [
        (
            "insert into course_work (course_id, title, kind, due_at) values ({c}, 'A', 'quiz', null),"
            " ({c}, 'B', 'homework', null)",
            "23514",
            "course_work_kind",
        ),
        (
            "insert into enrollment (student_profile_id, course_id, start_on, end_on) values ({s}, {c}, null, null),"
            " ({s}, {c}, '2026-03-02', '2026-03-01')",
            "23514",
            "enrollment_ends_after_start",
        ),
        (
            "insert into course_work (course_id, title, kind, due_at) values ({c}, e'Line\\nbreak', 'quiz', null)",
            "23514",
            "course_work_title_printable",
        ),
        (
            "insert into course_work (course_id, title, kind, due_at) values ({c}, 'A', 'quiz', 'infinity')",
            "23514",
            "course_work_due_at_in_range",
        ),
    ],
)
def test_bad_rows_are_refused_by_named_constraints_and_nothing_is_written(conn, one, statement, sqlstate, constraint):
    before = conn.execute("select (select count(*) from course_work), (select count(*) from enrollment)").fetchone()
    with pytest.raises(psycopg.Error) as refused:
        conn.execute(statement.format(s=one["student"], c=one["course"]))
    assert refused.value.sqlstate == sqlstate
    assert refused.value.diag.constraint_name == constraint
    after = conn.execute("select (select count(*) from course_work), (select count(*) from enrollment)").fetchone()
    assert after == before


@pytest.mark.parametrize("table", ["quiz_attempt", "assignment_submission"])
def test_a_score_cannot_link_to_work_of_another_course(conn, one, table):
    other_course = add_course(conn, "Art")
    columns = "score, completed_at" if table == "quiz_attempt" else "percentage, graded_at"
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as refused:
        conn.execute(
            f"insert into {table} (student_profile_id, course_id, course_work_id, {columns})"
            " values (%s, %s, %s, 90, %s), (%s, %s, %s, 80, %s)",
            (one["student"], one["course"], one["work"], PAST, one["student"], other_course, one["work"], PAST),
        )
    assert refused.value.diag.constraint_name == f"{table}_course_work_of_course_fkey"
    assert conn.execute(f"select count(*) from {table}").fetchone()[0] == 0
    # Nor to work that does not exist, course or none.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            f"insert into {table} (student_profile_id, course_work_id, {columns}) values (%s, -1, 90, %s)",
            (one["student"], PAST),
        )


def test_the_reader_reads_missing_work_only_of_a_linked_child(db_url, conn, one):
    other = add_student(conn, "Eve")
    enroll(conn, other, one["course"])
    guardian = add_guardian(conn, "g@example.org", one["student"])
    with psycopg.connect(db_url) as reader:
        reader.execute("set local role weekly_trends_reader")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("select * from student_missing_work(%s, null, null)", (one["student"],))
    with psycopg.connect(db_url) as reader:
        reader.execute("set local role weekly_trends_reader")
        reader.execute("select set_config('app.guardian_id', %s, true)", (str(guardian),))
        mine = reader.execute("select course_work_id from linked_missing_work(%s, null, null)", (one["student"],))
        assert mine.fetchall() == [(one["work"],)]
        theirs = reader.execute("select course_work_id from linked_missing_work(%s, null, null)", (other,))
        assert theirs.fetchall() == []
        for table in ("course_work", "enrollment", "course_work_excusal"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), reader.transaction():
                reader.execute(f"select from {table}")


# Property: random work, enrollments, excusals, scores and their changes against the oracle.
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago", "Asia/Tokyo"]
# Instants within hours of local midnights and of DST changes in 2026 (US 8 March, EU 29 March,
# Lord Howe 5 April, Santiago 5 April), and a week ahead (not yet due when now is the anchor).
ANCHORS = [
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 4, 5, 3, tzinfo=UTC),
]

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["score", "uncount", "excuse", "delete", "move", "end", "zone", "unlink"]),
        st.integers(0, 10_000),
    ),
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), actions=ACTIONS)
def test_missing_work_equals_the_oracle_after_any_writes(conn, seed, actions):
    rnd = random.Random(seed)
    for table in ("quiz_attempt", "assignment_submission", "course_work_excusal", "enrollment", "course_work"):
        conn.execute(f"delete from {table}")
    conn.execute("delete from student_profile")
    conn.execute("delete from course")
    students = [add_student(conn, f"S{n}", rnd.choice(ZONES)) for n in range(3)]
    courses = [add_course(conn, f"C{n}") for n in range(2)]
    days = [date(2026, 3, 1) + timedelta(days=n) for n in range(0, 40, 3)]
    for s in students:
        for c in courses:
            if rnd.random() < 0.85:
                start = rnd.choice([None, *days])
                end = rnd.choice([None, *[d for d in days if start is None or d >= start]])
                enroll(conn, s, c, start, end)
    work = []
    for n in range(8):
        due = rnd.choice(ANCHORS) + timedelta(minutes=rnd.randint(-600, 600))
        work.append(add_work(conn, rnd.choice(courses), due, title=f"W{n}", kind=rnd.choice(["quiz", "assignment"])))
    for kind, k in actions:
        s = students[k % len(students)]
        w = work[k % len(work)]
        course = conn.execute("select course_id from course_work where id = %s", (w,)).fetchone()
        if kind == "score" and course:
            if k % 2:
                conn.execute(
                    "insert into quiz_attempt (student_profile_id, course_id, course_work_id, score, completed_at)"
                    " values (%s, %s, %s, %s, %s)",
                    (s, course[0], w, k % 101, datetime(2026, 4, 20, tzinfo=UTC)),
                )
            else:
                conn.execute(
                    "insert into assignment_submission (student_profile_id, course_id, course_work_id, percentage,"
                    " is_graded, submitted_at) values (%s, %s, %s, %s, %s, %s)",
                    (s, course[0], w, k % 101, k % 3 != 0, datetime(2026, 3, 1, tzinfo=UTC)),
                )
        elif kind == "uncount":
            conn.execute("update quiz_attempt set completed_at = null where student_profile_id = %s", (s,))
        elif kind == "excuse" and course:
            conn.execute(
                "insert into course_work_excusal (course_work_id, student_profile_id) values (%s, %s)"
                " on conflict do nothing",
                (w, s),
            )
        elif kind == "delete":
            conn.execute("delete from course_work where id = %s", (w,))
        elif kind == "move":
            conn.execute("update course_work set due_at = due_at + %s * interval '1 hour' where id = %s", (k % 200, w))
        elif kind == "end":
            conn.execute(
                "update enrollment set end_on = greatest(start_on, date '2026-03-01' + %s) where student_profile_id = %s",
                (k % 40, s),
            )
        elif kind == "zone":
            conn.execute("update student_profile set time_zone = %s where id = %s", (ZONES[k % len(ZONES)], s))
        elif kind == "unlink":
            conn.execute("update assignment_submission set course_work_id = null where student_profile_id = %s", (s,))
    with conn.transaction():
        now = conn.execute("select now()").fetchone()[0]
        # Now as one of the anchors too, by moving every due date: the work due around it splits.
        shift = rnd.choice([None, *ANCHORS])
        if shift is not None:
            conn.execute("update course_work set due_at = due_at + (now() - %s)", (shift,))
        expected = missing_work(conn, now)
        for s in students:
            shown = {(r[0], r[6]) for r in missing(conn, s)}
            assert shown == expected.get(s, set()), (s, seed, actions)
        # Then a week range: the weeks from p_from's to p_until's only.
        lo = date(2026, 3, 9)
        for s in students:
            shown = {(r[0], r[6]) for r in missing(conn, s, lo + timedelta(days=2), lo + timedelta(days=16))}
            assert shown == {(w, wk) for w, wk in expected.get(s, set()) if lo <= wk <= lo + timedelta(days=14)}
