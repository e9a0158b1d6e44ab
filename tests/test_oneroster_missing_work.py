"""OneRoster and missing work (issue 26, item 4): lineItems.csv's dueDate becomes course_work.due_at,
enrollments.csv (role student) becomes enrollment, results link to their line item's work, scoreStatus
exempt becomes an excusal; bulk and delta, a reimport writes nothing; the rule decides what is missing."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime

import pytest

from web.oneroster import BadRowsRefused, Options, import_oneroster

from oneroster_gen import generate
from reference import missing_work

SOURCE = "gen-sis"


def run(conn, path, **options):
    return import_oneroster(conn, path, Options(progress=False, **options))


def work_of(conn) -> dict[str, tuple]:
    """line item sourcedId -> (course name, title, kind, due_at)."""
    return {
        r[0]: r[1:]
        for r in conn.execute(
            "select m.sourced_id, c.name, w.title, w.kind, w.due_at from oneroster_course_work m"
            "  join course_work w on w.id = m.course_work_id join course c on c.id = w.course_id"
        )
    }


def assert_missing_is_the_oracles(conn) -> int:
    """student_missing_work() equals the oracle for every student; returns how many pieces are missing."""
    with conn.transaction():
        now = conn.execute("select now()").fetchone()[0]
        expected = missing_work(conn, now)
        for (student,) in conn.execute("select id from student_profile").fetchall():
            shown = {
                (r[0], r[1])
                for r in conn.execute(
                    "select course_work_id, week_start_date from student_missing_work(%s)", (student,)
                )
            }
            assert shown == expected.get(student, set())
    return sum(len(v) for v in expected.values())


def test_line_items_enrollments_results_and_exempt_become_work_enrollment_links_and_excusals(conn, tmp_path):
    s = generate(seed=21, students=12, classes=2, items_per_class=4)
    s.line_items[0]["dueDate"] = "2024-10-22"  # a date alone: the end of that day in the import's time zone
    s.line_items[1]["dueDate"] = "2024-10-23T17:00:00Z"
    s.line_items[2]["dueDate"] = "2024-10-24T23:30:00"  # local time there
    s.line_items[3]["dueDate"] = ""  # no due date: never missing
    s.enrollments.append(
        {
            "sourcedId": "enr-teacher",
            "status": "active",
            "classSourcedId": s.classes[0]["sourcedId"],
            "userSourcedId": "tea-21",
            "role": "teacher",
        }
    )
    summary = run(conn, s.write(tmp_path / "set"), time_zone="America/New_York")
    assert summary.bad_rows == []
    work = work_of(conn)
    assert len(work) == len(s.line_items)
    ids = [li["sourcedId"] for li in s.line_items]
    assert work[ids[0]][3] == datetime(2024, 10, 23, 3, 59, 59, tzinfo=UTC)  # 23:59:59 EDT
    assert work[ids[1]][3] == datetime(2024, 10, 23, 17, tzinfo=UTC)
    assert work[ids[2]][3] == datetime(2024, 10, 25, 3, 30, tzinfo=UTC)
    assert work[ids[3]][3] is None
    assert work[ids[0]][1] == s.line_items[0]["title"]
    # Every score row links to its line item's work.
    unlinked = conn.execute(
        "select count(*) from oneroster_result r join oneroster_course_work m on m.sourced_id = r.line_item_sourced_id"
        " left join quiz_attempt q on r.kind = 'quiz' and q.id = r.target_id"
        " left join assignment_submission a on r.kind = 'assignment' and a.id = r.target_id"
        " where coalesce(q.id, a.id) is not null and coalesce(q.course_work_id, a.course_work_id) is distinct from m.course_work_id"
    ).fetchone()[0]
    assert unlinked == 0
    assert conn.execute("select count(*) from quiz_attempt where course_work_id is not null").fetchone()[0] > 0
    # Exempt results: excusals, one per result.
    exempt = {(r["lineItemSourcedId"], r["studentSourcedId"]) for r in s.results if r["scoreStatus"] == "exempt"}
    assert exempt
    excused = set(
        conn.execute(
            "select m.sourced_id, st.sourced_id from course_work_excusal x"
            "  join oneroster_course_work m on m.course_work_id = x.course_work_id"
            "  join oneroster_student st on st.student_profile_id = x.student_profile_id"
        ).fetchall()
    )
    assert excused == exempt
    # Student enrollments (with their dates) become enrollment rows; the teacher's is kept in the mirror only.
    students = [e for e in s.enrollments if e["role"] == "student"]
    rows = set(
        conn.execute(
            "select st.sourced_id, cl.sourced_id, e.start_on, e.end_on from enrollment e"
            "  join oneroster_student st on st.student_profile_id = e.student_profile_id"
            "  join oneroster_class cl on cl.course_id = e.course_id"
        ).fetchall()
    )
    assert rows == {
        (
            e["userSourcedId"],
            e["classSourcedId"],
            date.fromisoformat(e["beginDate"]) if e["beginDate"] else None,
            date.fromisoformat(e["endDate"]) if e["endDate"] else None,
        )
        for e in students
    }
    assert conn.execute("select role from oneroster_enrollment where sourced_id = 'enr-teacher'").fetchone() == (
        "teacher",
    )
    assert assert_missing_is_the_oracles(conn) > 0


def test_a_delta_moves_due_dates_ends_enrollments_deletes_work_and_unexcuses(conn, tmp_path):
    s = generate(seed=22, students=10, classes=2, items_per_class=3)
    for li in s.line_items:
        li["dueDate"] = "2024-10-25T15:00:00Z"
    run(conn, s.write(tmp_path / "bulk"))
    assert_missing_is_the_oracles(conn)
    exempt = next(r for r in s.results if r["scoreStatus"] == "exempt")
    before = conn.execute("select count(*) from course_work_excusal").fetchone()[0]
    delta = copy.deepcopy(s)
    delta.line_items = [dict(s.line_items[0], dueDate="2099-01-01"), dict(s.line_items[1], status="tobedeleted")]
    delta.enrollments = [dict(s.enrollments[0], endDate="2024-10-01", beginDate="2024-09-01")]
    delta.results = [dict(exempt, scoreStatus="fully graded", score="5", scoreDate="2024-10-28")]
    delta.modes = {"lineItems": "delta", "enrollments": "delta", "results": "delta"}
    summary = run(conn, delta.write(tmp_path / "delta", only=("lineItems", "enrollments", "results")))
    assert summary.bad_rows == []
    work = work_of(conn)
    assert work[s.line_items[0]["sourcedId"]][3] == datetime(2099, 1, 1, 23, 59, 59, tzinfo=UTC)
    assert s.line_items[1]["sourcedId"] not in work
    assert summary.changes["course_work"]["deleted"] == 1
    assert conn.execute("select count(*) from course_work_excusal").fetchone()[0] == before - 1
    assert conn.execute(
        "select e.start_on, e.end_on from enrollment e join oneroster_student_enrollment m on m.enrollment_id = e.id"
        " where m.sourced_id = %s",
        (s.enrollments[0]["sourcedId"],),
    ).fetchone() == (date(2024, 9, 1), date(2024, 10, 1))
    assert_missing_is_the_oracles(conn)
    # The same delta again writes nothing.
    again = run(conn, delta.write(tmp_path / "delta2", only=("lineItems", "enrollments", "results")))
    assert again.written == 0
    # An enrollment the file deletes goes.
    gone = dict(s.enrollments[1], status="tobedeleted")
    delta.line_items, delta.results, delta.enrollments = [], [], [gone]
    summary = run(conn, delta.write(tmp_path / "delta3", only=("enrollments",)))
    assert summary.changes["enrollment"]["deleted"] == 1


@pytest.mark.parametrize(
    ("file", "change", "reason"),
    [
        ("enrollments", {"beginDate": "2024-10-02", "endDate": "2024-10-01"}, "endDate 2024-10-01 is before beginDate"),
        ("enrollments", {"beginDate": "yesterday"}, "bad date in beginDate"),
        ("lineItems", {"dueDate": "2024-02-30"}, "bad date in dueDate"),
        ("lineItems", {"dueDate": "2300-01-01"}, "dueDate out of range"),
    ],
)
def test_bad_dates_are_bad_rows_and_nothing_is_written(conn, tmp_path, file, change, reason):
    s = generate(seed=23, students=5, classes=1, items_per_class=2)
    rows = s.enrollments if file == "enrollments" else s.line_items
    rows[0].update(change)
    with pytest.raises(BadRowsRefused) as refused:
        run(conn, s.write(tmp_path / "bad"))
    bad = [b for b in refused.value.summary.bad_rows if b.file == f"{file}.csv"]
    assert [b.sourced_id for b in bad] == [rows[0]["sourcedId"]]
    assert bad[0].reason.startswith(reason)
    for table in ("course_work", "enrollment", "course_work_excusal", "quiz_attempt"):
        assert conn.execute(f"select count(*) from {table}").fetchone()[0] == 0
