"""The issue's rules for what counts, which week, and how it is rounded, one test per rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from factories import D, add_assignment, add_course, add_quiz, add_student, assert_exact, week_of, weekly_rows

UTC = UTC


def at(y, m, d, h=12, minute=0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=UTC)


def test_seed_week_gives_the_seed_figures(conn):
    sid = add_student(conn)
    for score, day in [(85, 15), (90, 16), (88, 17)]:
        add_quiz(conn, sid, score, at(2024, 1, day))
    add_assignment(conn, sid, 92, graded_at=at(2024, 1, 18))
    add_assignment(conn, sid, 88, graded_at=at(2024, 1, 19))
    row = week_of(conn, sid, 2024, 3)
    assert row["week_start_date"] == date(2024, 1, 15)
    assert (row["quiz_average"], row["assignment_average"], row["overall_average"]) == (
        D("87.67"),
        D("90.00"),
        D("88.60"),
    )
    assert (row["quiz_count"], row["assignment_count"]) == (3, 2)


@pytest.mark.parametrize(
    "instant, year, week, monday",
    [
        (at(2024, 12, 30), 2025, 1, date(2024, 12, 30)),
        (at(2021, 1, 3), 2020, 53, date(2020, 12, 28)),
        (at(2024, 1, 15, 0, 0), 2024, 3, date(2024, 1, 15)),
        (at(2024, 1, 21, 23, 59), 2024, 3, date(2024, 1, 15)),
    ],
)
def test_iso_week_and_iso_year(conn, instant, year, week, monday):
    sid = add_student(conn)
    add_quiz(conn, sid, 50, instant)
    [row] = weekly_rows(conn, sid)
    assert (row["year"], row["week_number"], row["week_start_date"]) == (year, week, monday)


@pytest.mark.parametrize("session_zone", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_iso_week_monday_of_a_day_whatever_the_sessions_time_zone(conn, session_zone):
    # The bounds of counted_scores() and student_missing_work(): a day's Monday, not shifted by the
    # session's offset (+14 h and -11 h here), null for null, and inlined (no call per row).
    conn.execute(f"set time zone '{session_zone}'")
    days = [date(2024, 12, 29) + timedelta(days=n) for n in range(9)] + [date(2021, 1, 3), date(2020, 2, 29)]
    got = conn.execute("select d, iso_week_monday(d) from unnest(%s::date[]) d", (days,)).fetchall()
    assert got == [(d, d - timedelta(days=d.isoweekday() - 1)) for d in days]
    assert conn.execute("select iso_week_monday(null)").fetchone()[0] is None
    # Inlined even for an argument that is no plain column (student_missing_work() passes a day computed
    # with a subquery's time zone): a body naming it twice would be called per row instead.
    plan = conn.execute(
        "explain (verbose, costs off) select iso_week_monday(d + (select 0)) from unnest(%s::date[]) d", (days,)
    )
    assert "iso_week_monday" not in "\n".join(r[0] for r in plan)


def test_week_is_taken_in_the_students_time_zone(conn):
    # Sunday 2024-01-21 20:00 UTC is already Monday 2024-01-22 in Tokyo.
    tokyo = add_student(conn, time_zone="Asia/Tokyo")
    london = add_student(conn, time_zone="Europe/London")
    for sid in (tokyo, london):
        add_quiz(conn, sid, 70, at(2024, 1, 21, 20))
    assert weekly_rows(conn, tokyo)[0]["week_number"] == 4
    assert weekly_rows(conn, london)[0]["week_number"] == 3


def test_zero_is_a_score_not_missing_data(conn):
    sid = add_student(conn)
    add_quiz(conn, sid, 0, at(2024, 3, 4))
    add_assignment(conn, sid, 0, graded_at=at(2024, 3, 5))
    [row] = weekly_rows(conn, sid)
    assert (row["quiz_average"], row["assignment_average"], row["overall_average"]) == (0, 0, 0)
    assert row["quiz_average"] is not None and row["overall_average"] is not None


def test_extra_credit_above_100_counts(conn):
    sid = add_student(conn)
    add_quiz(conn, sid, 110, at(2024, 3, 4))
    add_quiz(conn, sid, 999.99, at(2024, 3, 5))
    assert weekly_rows(conn, sid)[0]["quiz_average"] == D("555.00")  # (110 + 999.99) / 2 = 554.995


def test_rounding_is_half_away_from_zero_at_the_end(conn):
    sid = add_student(conn)
    add_quiz(conn, sid, D("0.01"), at(2024, 3, 4))
    add_quiz(conn, sid, 0, at(2024, 3, 4))
    assert weekly_rows(conn, sid)[0]["quiz_average"] == D("0.01")  # 0.005 -> 0.01


def test_overall_comes_from_exact_sums_not_rounded_averages(conn):
    sid = add_student(conn)
    # quizzes 10, 10, 11 (31/3 = 10.333...), assignment 10.01
    for score in (10, 10, 11):
        add_quiz(conn, sid, score, at(2024, 3, 4))
    add_assignment(conn, sid, D("10.01"), graded_at=at(2024, 3, 4))
    row = weekly_rows(conn, sid)[0]
    # exact: 41.01 / 4 = 10.2525 -> 10.25; from the rounded quiz average: (10.33*3 + 10.01) / 4 = 10.25
    # the pair below separates the two methods:
    assert row["overall_average"] == D("10.25")
    sid2 = add_student(conn)
    for score in ("0.01", "0.01", "0.00"):  # quiz average 0.00666 -> 0.01
        add_quiz(conn, sid2, D(score), at(2024, 3, 4))
    add_assignment(conn, sid2, D("0.00"), graded_at=at(2024, 3, 4))
    # exact: 0.02 / 4 = 0.005 -> 0.01 ; from rounded averages: (0.01*3 + 0) / 4 = 0.0075 -> 0.01 ;
    # with assignments 0 and 0: exact 0.02/5 = 0.004 -> 0.00, rounded-averages 0.03/5 = 0.006 -> 0.01
    add_assignment(conn, sid2, D("0.00"), graded_at=at(2024, 3, 4))
    assert weekly_rows(conn, sid2)[0]["overall_average"] == D("0.00")


def test_quiz_counts_only_when_completed_with_a_final_score(conn):
    sid = add_student(conn)
    add_quiz(conn, sid, 80, None)  # not completed
    add_quiz(conn, sid, None, at(2024, 3, 4))  # no score
    assert weekly_rows(conn, sid) == []
    add_quiz(conn, sid, None, at(2024, 3, 4), teacher_score=60)  # teacher's score alone counts
    assert weekly_rows(conn, sid)[0]["quiz_average"] == 60


def test_teacher_override_set_and_cleared(conn):
    sid = add_student(conn)
    qid = add_quiz(conn, sid, 40, at(2024, 3, 4))
    conn.execute("update quiz_attempt set teacher_score = 90 where id = %s", (qid,))
    assert weekly_rows(conn, sid)[0]["quiz_average"] == 90
    conn.execute("update quiz_attempt set teacher_score = null where id = %s", (qid,))
    assert weekly_rows(conn, sid)[0]["quiz_average"] == 40


def test_assignment_counts_only_when_graded_with_percentage_and_a_date(conn):
    sid = add_student(conn)
    add_assignment(conn, sid, 80, submitted_at=at(2024, 3, 4), is_graded=False)
    add_assignment(conn, sid, None, graded_at=at(2024, 3, 4))
    add_assignment(conn, sid, 70, is_graded=True)  # neither date
    assert weekly_rows(conn, sid) == []


def test_assignment_week_is_graded_at_else_submitted_at(conn):
    sid = add_student(conn)
    add_assignment(conn, sid, 80, submitted_at=at(2024, 3, 1), graded_at=at(2024, 3, 12))
    add_assignment(conn, sid, 60, submitted_at=at(2024, 3, 1))
    weeks = {(r["week_number"], r["assignment_count"]) for r in weekly_rows(conn, sid)}
    assert weeks == {(11, 1), (9, 1)}


def test_is_graded_flipping_adds_and_removes(conn):
    sid = add_student(conn)
    aid = add_assignment(conn, sid, 75, submitted_at=at(2024, 3, 4), is_graded=False)
    assert weekly_rows(conn, sid) == []
    conn.execute(
        "update assignment_submission set is_graded = true, graded_at = %s where id = %s", (at(2024, 3, 6), aid)
    )
    assert weekly_rows(conn, sid)[0]["assignment_average"] == 75
    conn.execute("update assignment_submission set is_graded = false where id = %s", (aid,))
    assert weekly_rows(conn, sid) == []


def test_update_moving_a_row_to_another_week_and_student(conn):
    a, b = add_student(conn), add_student(conn)
    qid = add_quiz(conn, a, 80, at(2024, 3, 4))
    add_quiz(conn, a, 60, at(2024, 3, 4))
    conn.execute("update quiz_attempt set completed_at = %s where id = %s", (at(2024, 3, 11), qid))
    assert [(r["week_number"], r["quiz_average"]) for r in weekly_rows(conn, a)] == [(10, 60), (11, 80)]
    conn.execute("update quiz_attempt set student_profile_id = %s where id = %s", (b, qid))
    assert [(r["week_number"], r["quiz_average"]) for r in weekly_rows(conn, a)] == [(10, 60)]
    assert [(r["week_number"], r["quiz_average"]) for r in weekly_rows(conn, b)] == [(11, 80)]


def test_score_becoming_null_and_delete_leave_no_stale_row(conn):
    sid = add_student(conn)
    q1 = add_quiz(conn, sid, 80, at(2024, 3, 4))
    q2 = add_quiz(conn, sid, 60, at(2024, 3, 4))
    conn.execute("update quiz_attempt set score = null where id = %s", (q1,))
    assert (weekly_rows(conn, sid)[0]["quiz_count"], weekly_rows(conn, sid)[0]["quiz_average"]) == (1, 60)
    conn.execute("delete from quiz_attempt where id = %s", (q2,))
    assert weekly_rows(conn, sid) == []  # a week without counted scores has no row


def test_update_of_columns_that_do_not_count_changes_nothing(conn):
    sid = add_student(conn)
    course = add_course(conn)
    qid = add_quiz(conn, sid, 80, at(2024, 3, 4), course_id=course)
    before = conn.execute("select updated_at from student_weekly_performance").fetchone()
    conn.execute("update quiz_attempt set created_at = created_at - interval '1 day' where id = %s", (qid,))
    assert conn.execute("select updated_at from student_weekly_performance").fetchone() == before


def test_multi_row_statements(conn):
    students = [add_student(conn) for _ in range(3)]
    conn.execute(
        "insert into quiz_attempt (student_profile_id, score, completed_at)"
        " select s, 50 + g, timestamptz '2024-03-04 12:00Z' + (g || ' days')::interval"
        "   from unnest(%s::bigint[]) s, generate_series(0, 13) g",
        (students,),
    )
    conn.execute("update quiz_attempt set score = score + 1 where score < 55")
    conn.execute("delete from quiz_attempt where score > 60")
    assert_exact(conn)
    assert (
        sum(r["quiz_count"] for r in weekly_rows(conn))
        == conn.execute("select count(*) from quiz_attempt").fetchone()[0]
    )


def test_a_week_written_by_multi_row_statements_weighs_every_score(conn):
    """Three quizzes in one statement, two assignments in another, one week: the overall is the mean of
    the five scores, (300 + 80) / 5 = 76, not the mean of the two averages (100 + 40) / 2 = 70."""
    sid = add_student(conn)
    conn.execute(
        "insert into quiz_attempt (student_profile_id, score, completed_at)"
        " select %s, 100, timestamptz '2024-03-04 12:00Z' + (g || ' hours')::interval from generate_series(0, 2) g",
        (sid,),
    )
    conn.execute(
        "insert into assignment_submission (student_profile_id, percentage, is_graded, graded_at)"
        " select %s, 40, true, timestamptz '2024-03-05 12:00Z' + (g || ' hours')::interval from generate_series(0, 1) g",
        (sid,),
    )
    [row] = weekly_rows(conn, sid)
    assert (row["quiz_count"], row["quiz_average"], row["assignment_count"], row["assignment_average"]) == (
        3,
        100,
        2,
        40,
    )
    assert row["overall_average"] == 76
    assert_exact(conn)


def test_copy_is_maintained(conn):
    sid = add_student(conn)
    with (
        conn.cursor() as cur,
        cur.copy("copy quiz_attempt (student_profile_id, score, completed_at) from stdin") as copy,
    ):
        for n in range(10):
            copy.write_row((sid, 70 + n, at(2024, 3, 4 + n)))
    assert [(r["week_number"], r["quiz_count"]) for r in weekly_rows(conn, sid)] == [(10, 7), (11, 3)]
    assert_exact(conn)


def test_truncate_is_refused_and_nothing_changes(conn):
    sid = add_student(conn)
    add_quiz(conn, sid, 70, at(2024, 3, 4))
    add_assignment(conn, sid, 70, graded_at=at(2024, 3, 4))
    for table in ("quiz_attempt", "assignment_submission"):
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="TRUNCATE"):
            conn.execute(f"truncate {table}")
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 1
    assert weekly_rows(conn, sid)[0]["quiz_count"] == 1


def test_changing_time_zone_recomputes_the_students_weeks(conn):
    sid = add_student(conn, time_zone="UTC")
    course = add_course(conn)
    add_quiz(conn, sid, 70, at(2024, 1, 21, 20), course_id=course)  # Sunday evening UTC
    assert weekly_rows(conn, sid)[0]["week_number"] == 3
    conn.execute("update student_profile set time_zone = 'Asia/Tokyo' where id = %s", (sid,))
    [row] = weekly_rows(conn, sid)
    assert (row["week_number"], row["quiz_count"]) == (4, 1)
    assert_exact(conn)


def test_deleting_a_student_or_a_course_keeps_aggregates_consistent(conn):
    a, b = add_student(conn), add_student(conn)
    course = add_course(conn)
    for sid in (a, b):
        add_quiz(conn, sid, 70, at(2024, 3, 4), course_id=course)
    conn.execute("delete from course where id = %s", (course,))
    # The scores stay, with no course: no per-course week names the deleted course.
    assert (
        conn.execute("select count(*) from expected_course_weeks() where course_id = %s", (course,)).fetchone()[0] == 0
    )
    assert len(weekly_rows(conn)) == 2
    conn.execute("delete from student_profile where id = %s", (a,))
    assert [r["student_profile_id"] for r in weekly_rows(conn)] == [b]
    assert_exact(conn)


def quiz_attempt_tuples_read(conn) -> int:
    conn.execute("select pg_stat_force_next_flush()")  # PostgreSQL 15+
    return conn.execute(
        "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) from pg_stat_user_tables where relname = 'quiz_attempt'"
    ).fetchone()[0]


def test_writes_do_not_rescan_the_week(conn):
    """A write touches its own delta, not the week's other rows: the plan reads no source table."""
    sid = add_student(conn)
    conn.execute(
        "insert into quiz_attempt (student_profile_id, score, completed_at)"
        " select %s, 50, timestamptz '2024-03-04 12:00Z' from generate_series(1, 500)",
        (sid,),
    )
    before = quiz_attempt_tuples_read(conn)
    add_quiz(conn, sid, 90, at(2024, 3, 5))
    assert quiz_attempt_tuples_read(conn) == before
    assert weekly_rows(conn, sid)[0]["quiz_count"] == 501


def test_course_view_averages_sums_over_sums(conn):
    course = add_course(conn)
    a, b = add_student(conn), add_student(conn)
    for score in (100, 100, 100):
        add_quiz(conn, a, score, at(2024, 3, 4), course_id=course)
    add_assignment(conn, b, 40, graded_at=at(2024, 3, 4), course_id=course)
    add_quiz(conn, b, 50, at(2024, 3, 4))  # no course: not in the class view
    conn.execute("select refresh_course_weekly_performance()")
    row = conn.execute(
        "select year, week_number, week_start_date, class_average, student_count, item_count"
        "  from course_weekly_performance where course_id = %s",
        (course,),
    ).fetchone()
    # (300 + 40) / 4 = 85.00, not the average of averages (100 + 40) / 2 = 70
    assert row == (2024, 10, date(2024, 3, 4), Decimal("85.00"), 2, 4)


def test_one_statement_whose_net_change_averages_over_999_updates_the_week(conn):
    # Found by the property test: 12 zeros rescored to 100 and one more score counted is a net change of
    # +1,300 points over +1 score. The change was proposed as a new row first (averages 1,300.00, too wide
    # for numeric(5,2)) before ON CONFLICT added it to the existing row: the teacher's UPDATE failed.
    sid = add_student(conn)
    for _ in range(12):
        add_quiz(conn, sid, 0, at(2024, 3, 4))
    add_quiz(conn, sid, 100, None)  # not completed yet
    conn.execute(
        "update quiz_attempt set score = 100, completed_at = coalesce(completed_at, %s) where student_profile_id = %s",
        (at(2024, 3, 5), sid),
    )
    [week] = weekly_rows(conn, sid)
    assert (week["quiz_count"], week["quiz_average"]) == (13, 100)
    assert_exact(conn)
