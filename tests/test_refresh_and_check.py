"""refresh_weekly_performance() and check_weekly_performance(): the DBA's tools."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors

from factories import add_course, add_quiz, add_student, assert_exact, weekly_rows
from reference import expected_weeks, stored_weeks


def at(month, day) -> datetime:
    return datetime(2024, month, day, 12, tzinfo=UTC)


@pytest.fixture
def school(conn):
    course = add_course(conn)
    students = [add_student(conn, time_zone=tz) for tz in ("UTC", "America/New_York", "Asia/Tokyo")]
    for n, sid in enumerate(students):
        for week in range(6):
            add_quiz(conn, sid, 60 + n * 10 + week, at(2, 5) + timedelta(weeks=week), course_id=course)
    return conn, students


def corrupt(conn, student_id):
    conn.execute(
        "update student_weekly_performance set quiz_count = quiz_count + 1 where student_profile_id = %s", (student_id,)
    )
    conn.execute(
        "update student_weekly_performance set quiz_average = 1 where student_profile_id = %s"
        " and week_start_date = (select min(week_start_date) from student_weekly_performance"
        "                         where student_profile_id = %s)",
        (student_id, student_id),
    )
    conn.execute(
        "insert into student_weekly_performance"
        " (student_profile_id, week_start_date, year, week_number, quiz_sum, quiz_count, quiz_average, overall_average)"
        " values (%s, '2030-01-07', 2030, 2, 50, 1, 50, 50)",
        (student_id,),
    )


def test_check_is_empty_when_consistent(school):
    conn, _ = school
    assert conn.execute("select * from check_weekly_performance()").fetchall() == []
    assert expected_weeks(conn) == stored_weeks(conn)


def test_check_reports_each_drifted_week_with_stored_and_expected(school):
    conn, (a, b, _) = school
    corrupt(conn, a)
    rows = conn.execute(
        "select student_profile_id, year, week_number, stored, expected from check_weekly_performance()"
    ).fetchall()
    assert len(rows) == 7 and {r[0] for r in rows} == {a}
    extra = [r for r in rows if r[1] == 2030]
    assert extra[0][3]["quiz_count"] == 1 and extra[0][4] is None
    changed = [r for r in rows if r[1] == 2024][0]
    assert changed[3]["quiz_count"] == changed[4]["quiz_count"] + 1
    assert conn.execute("select count(*) from check_weekly_performance(%s)", (b,)).fetchone()[0] == 0


def test_refresh_repairs_everything_and_reports_rows_written(school):
    conn, (a, b, _) = school
    corrupt(conn, a)
    corrupt(conn, b)
    written = conn.execute("select refresh_weekly_performance()").fetchone()[0]
    assert written == 2 * (6 + 1)
    assert_exact(conn)
    assert conn.execute("select refresh_weekly_performance()").fetchone()[0] == 0


# Parallel plans even for a handful of rows: no start-up or transfer cost, no minimum table size.
PARALLEL_EVERYWHERE = (
    "set parallel_setup_cost = 0",
    "set parallel_tuple_cost = 0",
    "set min_parallel_table_scan_size = 0",
    "set min_parallel_index_scan_size = 0",
)


def force_parallel(conn) -> None:
    for statement in PARALLEL_EVERYWHERE:
        conn.execute(statement)


def parallel_workers_launched(conn) -> int | None:
    """Workers launched in this database so far (pg_stat_database has the column from PostgreSQL 18), else None."""
    if conn.info.server_version < 180000:
        return None
    conn.execute("select pg_stat_force_next_flush()")
    conn.execute("select 1")  # the flush happens when a transaction ends
    conn.execute("select pg_stat_clear_snapshot()")
    return conn.execute(
        "select parallel_workers_launched from pg_stat_database where datname = current_database()"
    ).fetchone()[0]


def assert_parallel_plan(conn, query: str) -> None:
    force_parallel(conn)
    plan = "\n".join(row[0] for row in conn.execute(f"explain (costs off) {query}"))
    assert "Gather" in plan, plan


@pytest.mark.parametrize("query", ["select * from expected_weeks()", "select * from expected_course_weeks()"])
def test_the_recomputations_can_be_read_by_parallel_workers(school, query):
    # A function not marked parallel safe keeps every query that names it on one core, inlined or not:
    # the full refresh reads every source row.
    conn, _ = school
    assert_parallel_plan(conn, query)


def test_the_class_views_query_can_be_read_by_parallel_workers(school):
    # The class view's own query, as its refresh plans it: it reads every source row too.
    conn, _ = school
    query = conn.execute("select pg_get_viewdef('course_weekly_performance'::regclass)").fetchone()[0]
    assert_parallel_plan(conn, query.rstrip().rstrip(";"))


def test_the_full_refresh_runs_in_parallel_workers_and_stays_exact(school):
    conn, (a, b, c) = school
    for student in (a, b, c):
        corrupt(conn, student)
    force_parallel(conn)
    before = parallel_workers_launched(conn)
    written = conn.execute("select refresh_weekly_performance()").fetchone()[0]
    after = parallel_workers_launched(conn)
    assert written == 3 * (6 + 1)
    assert_exact(conn)
    assert conn.execute("select count(*), sum(item_count) from course_weekly_performance").fetchone() == (6, 18)
    if before is not None:
        # the rebuild's differences (RETURN QUERY: PL/pgSQL runs SELECT ... INTO on one core) and the class view
        assert after - before >= 2


def test_one_students_refresh_launches_no_parallel_workers(school):
    # Its plan is generic and reused (a time-zone change, the staff's Recalculate): an index range scan,
    # never a parallel plan whose workers would cost more than the work.
    conn, (a, _, _) = school
    corrupt(conn, a)
    before = parallel_workers_launched(conn)
    if before is None:
        pytest.skip("pg_stat_database.parallel_workers_launched needs PostgreSQL 18")
    for _ in range(6):  # past the plan cache's five custom plans
        conn.execute("select refresh_weekly_performance(%s, null, false)", (a,))
    assert parallel_workers_launched(conn) == before
    assert conn.execute("select count(*) from check_weekly_performance(%s)", (a,)).fetchone()[0] == 0


def test_refresh_of_one_student_touches_only_that_student(school):
    conn, (a, b, _) = school
    corrupt(conn, a)
    corrupt(conn, b)
    conn.execute("select refresh_weekly_performance(%s)", (a,))
    assert conn.execute("select count(*) from check_weekly_performance(%s)", (a,)).fetchone()[0] == 0
    assert conn.execute("select count(*) from check_weekly_performance(%s)", (b,)).fetchone()[0] == 7


def test_refresh_since_a_date_rebuilds_only_those_weeks(school):
    conn, (a, _, _) = school
    conn.execute(
        "update student_weekly_performance set quiz_count = quiz_count + 1 where student_profile_id = %s", (a,)
    )
    conn.execute("select refresh_weekly_performance(%s, %s)", (a, date(2024, 3, 6)))  # a Wednesday: its week counts
    drifted = [r[0] for r in conn.execute("select week_start_date from check_weekly_performance(%s)", (a,))]
    assert drifted and max(drifted) < date(2024, 3, 4)
    assert all(w < date(2024, 3, 4) for w in drifted)


def test_refresh_refreshes_the_class_view(school):
    conn, _ = school
    assert conn.execute("select count(*) from course_weekly_performance").fetchone()[0] == 0  # not refreshed yet
    conn.execute("select refresh_weekly_performance()")
    assert conn.execute("select count(*), sum(item_count) from course_weekly_performance").fetchone() == (6, 18)


def test_class_view_check_reports_each_week_a_write_moved_since_the_refresh(school):
    """check_course_weekly_performance() compares the class view with what its query gives now: right
    after a refresh nothing, after a write without one the class weeks it moved, stored against expected."""
    conn, (a, b, _) = school
    course = conn.execute("select max(id) from course").fetchone()[0]
    other = add_course(conn)
    add_quiz(conn, a, 90, at(2, 6), course_id=other)
    conn.execute("select refresh_course_weekly_performance()")
    assert conn.execute("select * from check_course_weekly_performance()").fetchall() == []
    add_quiz(conn, b, 100, at(2, 6), course_id=course)  # a week the view holds: 3 scores of 3 students
    add_quiz(conn, a, 40, at(4, 2), course_id=course)  # a week it does not hold yet
    rows = conn.execute(
        "select course_id, year, week_number, stored, expected from check_course_weekly_performance()"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(course, 2024, 6), (course, 2024, 14)]
    changed, new = rows
    assert changed[3]["item_count"] == 3 and changed[4]["item_count"] == 4
    assert changed[3]["student_count"] == changed[4]["student_count"] == 3
    assert changed[4]["class_average"] != changed[3]["class_average"]
    assert new[3] is None and new[4] == {
        "year": 2024,
        "week_number": 14,
        "class_average": 40,
        "student_count": 1,
        "item_count": 1,
    }
    assert conn.execute("select count(*) from check_course_weekly_performance(%s)", (other,)).fetchone()[0] == 0
    assert conn.execute("select count(*) from check_course_weekly_performance(%s)", (course,)).fetchone()[0] == 2
    conn.execute("select refresh_course_weekly_performance()")
    assert conn.execute("select * from check_course_weekly_performance()").fetchall() == []


def test_class_view_check_reports_a_week_whose_scores_all_left(school):
    conn, (a, b, c) = school
    conn.execute("select refresh_course_weekly_performance()")
    conn.execute("delete from quiz_attempt where completed_at < %s", (at(2, 10),))
    rows = conn.execute("select week_number, stored, expected from check_course_weekly_performance()").fetchall()
    assert [(r[0], r[1]["item_count"], r[2]) for r in rows] == [(6, 3, None)]


def test_refresh_of_an_unknown_student_is_an_error(school):
    conn, _ = school
    with pytest.raises(errors.NoDataFound, match="unknown student"):
        conn.execute("select refresh_weekly_performance(987654)")


def test_refresh_refuses_snapshot_isolation(db_url):
    with psycopg.connect(db_url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(errors.InvalidTransactionState, match="READ COMMITTED"):
            conn.execute("select refresh_weekly_performance()")


def test_refresh_rebuilds_after_writes_that_bypassed_the_triggers(conn):
    sid = add_student(conn)
    conn.execute("alter table quiz_attempt disable trigger user")
    add_quiz(conn, sid, 42, at(3, 4))
    conn.execute("alter table quiz_attempt enable trigger user")
    assert weekly_rows(conn, sid) == []
    assert conn.execute("select count(*) from check_weekly_performance()").fetchone()[0] == 1
    assert conn.execute("select refresh_weekly_performance()").fetchone()[0] == 1
    assert weekly_rows(conn, sid)[0]["quiz_average"] == 42


def test_check_and_refresh_cover_the_written_averages_and_week_numbers(school):
    """The triggers write averages, year and week_number (no generated columns): a wrong one is drift."""
    conn, (a, b, _) = school
    conn.execute(
        "update student_weekly_performance set overall_average = overall_average + 1"
        " where student_profile_id = %s and week_start_date = (select min(week_start_date)"
        " from student_weekly_performance where student_profile_id = %s)",
        (a, a),
    )
    conn.execute(
        "update student_weekly_performance set week_number = 1 where student_profile_id = %s"
        " and week_start_date = (select max(week_start_date) from student_weekly_performance"
        " where student_profile_id = %s)",
        (b, b),
    )
    rows = conn.execute("select student_profile_id, stored, expected from check_weekly_performance()").fetchall()
    assert sorted(r[0] for r in rows) == [a, b]
    wrong_average = next(r for r in rows if r[0] == a)
    assert wrong_average[1]["overall_average"] == wrong_average[2]["overall_average"] + 1
    assert next(r for r in rows if r[0] == b)[1]["week_number"] == 1
    assert conn.execute("select refresh_weekly_performance()").fetchone()[0] == 2
    assert_exact(conn)
