"""Issue 27 item 2: course_teacher filled by the OneRoster import from enrollments.csv rows with role
teacher, the teacher matched to staff_member by email; bulk and delta, idempotent."""

from __future__ import annotations

import shutil
from pathlib import Path

from web.oneroster import Options, import_oneroster

SPEC_SET = Path(__file__).parent / "data" / "oneroster" / "spec-1.1"


def run(conn, path, **options):
    return import_oneroster(conn, path, Options(progress=False, **options))


def copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(SPEC_SET, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def teachers(conn) -> list[tuple]:
    return conn.execute(
        "select m.email, c.name from course_teacher t join staff_member m on m.id = t.staff_member_id"
        " join course c on c.id = t.course_id order by 1, 2"
    ).fetchall()


def test_teacher_enrollments_become_course_teacher_rows_idempotently(conn, tmp_path):
    conn.execute("insert into staff_member (email) values ('T.Jones@school.example.edu')")  # case aside
    summary = run(conn, SPEC_SET)
    algebra = conn.execute(
        "select name from course c join oneroster_class m on m.course_id = c.id where m.sourced_id = 'cls-alg'"
    ).fetchone()[0]
    assert teachers(conn) == [("T.Jones@school.example.edu", algebra)]
    assert summary.changes["course teachers"]["inserted"] == 1
    again = run(conn, SPEC_SET)
    assert again.changes.get("course teachers", {}).get("inserted", 0) == 0
    assert again.changes.get("course teachers", {}).get("deleted", 0) == 0
    assert teachers(conn) == [("T.Jones@school.example.edu", algebra)]


def test_a_teacher_without_a_staff_member_is_a_warning_not_a_row(conn):
    summary = run(conn, SPEC_SET)
    assert teachers(conn) == []
    assert any("u-tea-1" in w and "staff member" in w for w in summary.warnings)


def test_a_delta_and_a_later_bulk_file_take_teacher_rows_away(conn, tmp_path):
    conn.execute("insert into staff_member (email) values ('t.jones@school.example.edu')")
    run(conn, SPEC_SET)
    assert len(teachers(conn)) == 1
    # A delta: only enrollments.csv, moving the teacher to biology (a new row) and ending algebra.
    delta = copy(tmp_path, "delta")
    for name in ["users", "results", "lineItems", "categories", "classes"]:
        edit(delta / "manifest.csv", f"file.{name},bulk", f"file.{name},absent")
        (delta / f"{name}.csv").unlink()
    edit(delta / "manifest.csv", "file.enrollments,bulk", "file.enrollments,delta")
    (delta / "enrollments.csv").write_text(
        "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\n"
        "enr-4,tobedeleted,2024-02-10T12:00:00.000Z,cls-alg,org-1,u-tea-1,teacher,true,2024-01-08,2024-06-14\n"
        "enr-5,active,2024-02-10T12:00:00.000Z,cls-bio,org-1,u-tea-1,teacher,true,2024-01-08,2024-06-14\n"
    )
    summary = run(conn, delta)
    assert [c for _, c in teachers(conn)] == [
        conn.execute(
            "select c.name from course c join oneroster_class m on m.course_id = c.id where m.sourced_id = 'cls-bio'"
        ).fetchone()[0]
    ]
    assert summary.changes["course teachers"] == {"inserted": 1, "updated": 0, "deleted": 1}
    # The full set again (bulk): enr-5 is not listed, enr-4 is back.
    run(conn, SPEC_SET)
    algebra = conn.execute(
        "select c.name from course c join oneroster_class m on m.course_id = c.id where m.sourced_id = 'cls-alg'"
    ).fetchone()[0]
    assert teachers(conn) == [("t.jones@school.example.edu", algebra)]


def test_a_course_teacher_row_written_by_sql_is_not_the_imports_to_take(conn, tmp_path):
    member = conn.execute("insert into staff_member (email) values ('office@school.example') returning id").fetchone()[
        0
    ]
    run(conn, SPEC_SET)
    course = conn.execute("select course_id from oneroster_class where sourced_id = 'cls-bio'").fetchone()[0]
    conn.execute("insert into course_teacher (staff_member_id, course_id) values (%s, %s)", (member, course))
    run(conn, SPEC_SET)
    assert conn.execute("select count(*) from course_teacher").fetchone()[0] == 1
