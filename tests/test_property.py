"""Random sequences of writes: every figure the product shows equals an independent Python recomputation.

After each write: the weekly table, every column (year and week_number too). After each sequence: the
class view (refreshed) and the weekly-trend answer over HTTP (weekly rows and per-course weeks with
their class averages), for every student.

The writes cross daylight-saving changes (America/New_York, Europe/Berlin, Australia/Lord_Howe's half
hour, America/Santiago's at midnight) and ISO-year boundaries; complete and un-complete quizzes and
grade and un-grade assignments by UPDATE (null -> set -> null); move rows to another student, course
or instant; delete students and courses; and run statements over 1,000 rows (the trigger's other plan).

Examples: HYPOTHESIS_PROFILE=thorough for more (CI), default keeps to about a minute.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import drift
from reference import differences, expected_trend, shown_trend, windows

settings.register_profile(
    "default",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

UTC = UTC
DST_ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago"]
ZONES = ["UTC", "Asia/Tokyo", *DST_ZONES]
STUDENTS, COURSES = 6, 3
MIN_STUDENTS = 5  # the class-average threshold the app runs with here (its floor)


def transitions(zone: str, year: int) -> list[datetime]:
    """The UTC instants at which zone's offset changes during year (found by scanning every 15 minutes)."""
    tz = ZoneInfo(zone)
    found, step = [], timedelta(minutes=15)
    at = datetime(year, 1, 1, tzinfo=UTC)
    previous = at.astimezone(tz).utcoffset()
    while at.year == year:
        at += step
        offset = at.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(at)
            previous = offset
    return found


def local_midnights(zone: str, around: datetime) -> list[datetime]:
    """The local Monday midnights before and after an instant, as UTC instants, and a minute either side."""
    tz = ZoneInfo(zone)
    local = around.astimezone(tz).date()
    out = []
    for monday in (local - timedelta(days=local.weekday()), local + timedelta(days=7 - local.weekday())):
        midnight = datetime.combine(monday, datetime.min.time(), tzinfo=tz).astimezone(UTC)
        out += [midnight - timedelta(minutes=1), midnight, midnight + timedelta(minutes=1)]
    return out


CHANGES = [t for zone in DST_ZONES for t in transitions(zone, 2024)]
assert len(CHANGES) == 8, CHANGES
# ISO-year boundaries: weeks that belong to the other calendar year.
BASES = CHANGES + [datetime(2020, 12, 31, 12, tzinfo=UTC), datetime(2024, 12, 30, 12, tzinfo=UTC)]
EDGES = sorted(
    {e for zone in ZONES for base in BASES for e in local_midnights(zone, base)}
    | {c + timedelta(minutes=d) for c in CHANGES for d in (-1, 0, 1)}
)

instants = st.one_of(
    st.none(),
    st.sampled_from(EDGES),
    st.builds(
        lambda b, m: BASES[b] + timedelta(minutes=m),
        st.integers(0, len(BASES) - 1),
        st.integers(-8 * 24 * 60, 8 * 24 * 60),
    ),
)
scores = st.one_of(st.none(), st.decimals(min_value=0, max_value=Decimal("150.00"), places=2))
student_ix = st.integers(0, STUDENTS - 1)
course_ix = st.one_of(st.none(), st.integers(0, COURSES - 1))
selector = st.tuples(st.integers(1, 3), st.integers(0, 2))  # rows whose id % k == r

quiz_rows = st.lists(st.tuples(student_ix, course_ix, scores, scores, instants), min_size=1, max_size=6)
assignment_rows = st.lists(
    st.tuples(student_ix, course_ix, scores, st.booleans(), instants, instants), min_size=1, max_size=6
)
# Over 1,000 rows in one statement: (rows, base, minutes between rows, a multiplier that scatters students and scores).
bulk = st.tuples(st.integers(1001, 1400), st.integers(0, len(BASES) - 1), st.integers(1, 29), st.integers(1, 97))

operations = st.one_of(
    st.tuples(st.just("insert_quizzes"), quiz_rows),
    st.tuples(st.just("insert_assignments"), assignment_rows),
    st.tuples(st.just("bulk_quizzes"), bulk),
    st.tuples(st.just("bulk_assignments"), bulk),
    st.tuples(
        st.just("bulk_move"),
        st.sampled_from(["quiz_attempt", "assignment_submission"]),
        st.integers(-3000, 3000),
        student_ix,
    ),
    st.tuples(st.just("shift_quizzes"), selector, st.integers(-10, 10)),
    st.tuples(st.just("complete_quizzes"), selector, instants),  # null -> set -> null
    st.tuples(st.just("override_quizzes"), selector, scores),
    st.tuples(st.just("rescore_quizzes"), selector, scores),
    st.tuples(st.just("reassign_quizzes"), selector, student_ix, course_ix),
    st.tuples(st.just("grade_assignments"), selector, st.booleans(), instants),
    st.tuples(st.just("time_assignments"), selector, st.sampled_from(["graded_at", "submitted_at"]), instants),
    st.tuples(st.just("move_assignments"), selector, student_ix, course_ix, st.integers(-200, 200)),
    st.tuples(st.just("rescore_assignments"), selector, scores),
    st.tuples(st.just("delete"), st.sampled_from(["quiz_attempt", "assignment_submission"]), selector),
    st.tuples(st.just("delete_student"), student_ix, st.sampled_from(ZONES)),
    st.tuples(st.just("delete_course"), st.integers(0, COURSES - 1)),
    st.tuples(st.just("time_zone"), student_ix, st.sampled_from(ZONES)),
)


class World:
    """The example's students, courses and the guardian who may read them all."""

    def __init__(self, conn: psycopg.Connection, zones: list[str]):
        self.conn = conn
        self.guardian = conn.execute(
            "insert into guardian (email) values ('oracle@example.org') returning id"
        ).fetchone()[0]
        self.students = [self.new_student(z) for z in zones]
        self.courses = [self.new_course(n) for n in range(COURSES)]
        self.token = conn.execute("select issue_guardian_token(%s)", (self.guardian,)).fetchone()[0]

    def new_student(self, zone: str) -> int:
        sid = self.conn.execute(
            "insert into student_profile (display_name, time_zone) values ('S', %s) returning id", (zone,)
        ).fetchone()[0]
        self.conn.execute(
            "insert into guardian_student (guardian_id, student_profile_id) values (%s, %s)", (self.guardian, sid)
        )
        return sid

    def new_course(self, n: int) -> int:
        # Names that sort differently from ids: the answer lists courses by name.
        return self.conn.execute(
            "insert into course (name) values (%s) returning id", (f"Course {'CBA'[n % 3]}",)
        ).fetchone()[0]

    def course(self, ix: int | None) -> int | None:
        return None if ix is None else self.courses[ix]

    def clean(self) -> None:
        # Deletes, as any program would (TRUNCATE is refused on the source tables).
        self.conn.execute("delete from student_profile")
        self.conn.execute("delete from course")
        self.conn.execute("delete from guardian")


def apply(world: World, op: tuple) -> None:
    conn, students, course = world.conn, world.students, world.course
    kind, *args = op
    if kind == "insert_quizzes":
        with conn.cursor() as cur:  # one statement a row
            cur.executemany(
                "insert into quiz_attempt (student_profile_id, course_id, score, teacher_score, completed_at) values (%s, %s, %s, %s, %s)",
                [(students[s], course(c), sc, t, at) for s, c, sc, t, at in args[0]],
            )
    elif kind == "insert_assignments":  # one multi-row statement
        rows = [(students[s], course(c), p, g, sub, gr) for s, c, p, g, sub, gr in args[0]]
        conn.execute(
            "insert into assignment_submission (student_profile_id, course_id, percentage, is_graded, submitted_at, graded_at)"
            " values " + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows)),
            [v for row in rows for v in row],
        )
    elif kind in ("bulk_quizzes", "bulk_assignments"):
        n, base, step, spread = args[0]
        params = {
            "students": students,
            "courses": world.courses,
            "n": n,
            "base": BASES[base],
            "step": step,
            "a": spread,
        }
        pick = (
            "(%(students)s::bigint[])[1 + (i * %(a)s) %% cardinality(%(students)s::bigint[])]",
            "case when i %% 4 = 0 then null else (%(courses)s::bigint[])[1 + (i * 7) %% cardinality(%(courses)s::bigint[])] end",
            "case when i %% 11 = 0 then null else ((i * %(a)s * 37) %% 10001) / 100.0 end",
            "case when i %% 17 = 0 then null"
            " else %(base)s::timestamptz + make_interval(mins => (i * %(step)s) %% (60 * 24 * 16) - 60 * 24 * 8) end",
        )
        if kind == "bulk_quizzes":
            conn.execute(
                "insert into quiz_attempt (student_profile_id, course_id, score, teacher_score, completed_at)"
                f" select {pick[0]}, {pick[1]}, {pick[2]}, case when i %% 13 = 0 then 100 end, {pick[3]}"
                " from generate_series(1, %(n)s) i",
                params,
            )
        else:
            conn.execute(
                "insert into assignment_submission (student_profile_id, course_id, percentage, is_graded, submitted_at, graded_at)"
                f" select {pick[0]}, {pick[1]}, {pick[2]}, i %% 5 <> 0, {pick[3]},"
                " case when i %% 3 = 0 then %(base)s::timestamptz + make_interval(mins => i) end"
                " from generate_series(1, %(n)s) i",
                params,
            )
    elif kind == "bulk_move":  # every row of the table in one statement
        table, minutes, s = args
        column = "completed_at" if table == "quiz_attempt" else "submitted_at"
        conn.execute(
            f"update {table} set {column} = {column} + make_interval(mins => %s),"
            " student_profile_id = case when id %% 3 = 0 then %s else student_profile_id end",
            (minutes, students[s]),
        )
    elif kind == "shift_quizzes":
        (k, r), steps = args
        conn.execute(
            "update quiz_attempt set completed_at = completed_at + make_interval(hours => %s * 13) where id %% %s = %s",
            (steps, k, r % k),
        )
    elif kind == "complete_quizzes":
        (k, r), when = args
        conn.execute("update quiz_attempt set completed_at = %s where id %% %s = %s", (when, k, r % k))
    elif kind == "override_quizzes":
        (k, r), score = args
        conn.execute("update quiz_attempt set teacher_score = %s where id %% %s = %s", (score, k, r % k))
    elif kind == "rescore_quizzes":
        (k, r), score = args
        conn.execute("update quiz_attempt set score = %s where id %% %s = %s", (score, k, r % k))
    elif kind == "reassign_quizzes":
        (k, r), s, c = args
        conn.execute(
            "update quiz_attempt set student_profile_id = %s, course_id = %s where id %% %s = %s",
            (students[s], course(c), k, r % k),
        )
    elif kind == "grade_assignments":
        (k, r), graded, when = args
        conn.execute(
            "update assignment_submission set is_graded = %s, graded_at = %s where id %% %s = %s",
            (graded, when, k, r % k),
        )
    elif kind == "time_assignments":
        (k, r), column, when = args
        conn.execute(f"update assignment_submission set {column} = %s where id %% %s = %s", (when, k, r % k))
    elif kind == "move_assignments":
        (k, r), s, c, hours = args
        conn.execute(
            "update assignment_submission set student_profile_id = %s, course_id = %s,"
            " graded_at = graded_at + make_interval(hours => %s), submitted_at = submitted_at + make_interval(hours => %s)"
            " where id %% %s = %s",
            (students[s], course(c), hours, hours, k, r % k),
        )
    elif kind == "rescore_assignments":
        (k, r), score = args
        conn.execute("update assignment_submission set percentage = %s where id %% %s = %s", (score, k, r % k))
    elif kind == "delete":
        table, (k, r) = args
        conn.execute(f"delete from {table} where id %% %s = %s", (k, r % k))
    elif kind == "delete_student":
        s, zone = args
        conn.execute("delete from student_profile where id = %s", (students[s],))
        students[s] = world.new_student(zone)
    elif kind == "delete_course":
        (c,) = args
        conn.execute("delete from course where id = %s", (world.courses[c],))
        world.courses[c] = world.new_course(c)
    elif kind == "time_zone":
        s, zone = args
        conn.execute("update student_profile set time_zone = %s where id = %s", (zone, students[s]))
    else:
        raise AssertionError(kind)


@pytest.fixture
def oracle_app(db_url):
    from web import create_app
    from web.db import close_pool

    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "POOL_MAX_SIZE": 2,
            "SECRET_KEY": "test-secret-key",
            "CLASS_AVERAGE_MIN_STUDENTS": MIN_STUDENTS,
        }
    )
    yield application
    close_pool(application)


def assert_answers_match(world: World, client) -> int:
    """Every student's weekly-trend answers, over every range holding their data, equal the oracle's."""
    compared = 0
    for sid in world.students:
        for end in windows(world.conn, sid) or [date(2024, 6, 3)]:
            response = client.get(
                f"/api/v1/students/{sid}/weekly-trend?weeks=52&end={end.isoformat()}",
                headers={"Authorization": f"Bearer {world.token}"},
            )
            assert response.status_code == 200, response.get_data(as_text=True)
            assert shown_trend(response.get_json()) == expected_trend(world.conn, sid, end, 52, MIN_STUDENTS)
            compared += 1
    return compared


@given(
    ops=st.lists(operations, min_size=1, max_size=10),
    zones=st.lists(st.sampled_from(ZONES), min_size=STUDENTS, max_size=STUDENTS),
)
def test_random_writes_match_an_independent_recomputation(conn, oracle_app, ops, zones):
    client = oracle_app.test_client()
    world = World(conn, zones)  # committed: the app reads through its own connections
    try:
        for op in ops:
            apply(world, op)
            assert differences(conn) == {}, op
        assert drift(conn) == []
        conn.execute("select refresh_course_weekly_performance()")
        assert differences(conn, class_view=True) == {}
        assert assert_answers_match(world, client) >= STUDENTS
    finally:
        world.clean()


def test_the_edges_cross_every_change_and_monday_midnight():
    """The strategy's instants include each zone's 2024 changes and the local Monday midnights around them."""
    assert len(CHANGES) == 8
    santiago = transitions("America/Santiago", 2024)
    # at local midnight: a minute before either change it is 23:59 of the day before
    assert {
        (c - timedelta(minutes=1)).astimezone(ZoneInfo("America/Santiago")).strftime("%H:%M") for c in santiago
    } == {"23:59"}
    lord_howe = {
        c.astimezone(ZoneInfo("Australia/Lord_Howe")).utcoffset() for c in transitions("Australia/Lord_Howe", 2024)
    }
    assert lord_howe == {timedelta(hours=10, minutes=30), timedelta(hours=11)}
    for zone in ZONES:
        tz = ZoneInfo(zone)
        assert any(e.astimezone(tz).weekday() == 0 and e.astimezone(tz).time() == datetime.min.time() for e in EDGES), (
            zone
        )
