"""Names without control characters (issue 22, finding 2): the four name columns refuse them, and
revision 0014 cleans the names a live database already holds before it adds the constraints."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from psycopg import errors

from web.ops.embedded import PROJECT_ROOT

from factories import add_course, add_guardian, add_student

BAD = [
    "Evil\r\nBcc: a@evil.example",
    "Tab\there",
    "Bell\x07",
    "Del\x7f",
    "C1\x85next",
    "Line\u2028sep",
    "Para\u2029sep",
]
GOOD = ["Zoë O'Brien-Łukasz", "محمد", "李小龍", "Kim <kim@example.org>", "  spaced  "]
COLUMNS = {
    "student_profile.display_name": "insert into student_profile (display_name, time_zone) values (%s, 'UTC')",
    "guardian.display_name": "insert into guardian (email, display_name) values ('g' || md5(%s) || '@example.org', %s)",
    "course.name": "insert into course (name) values (%s)",
    "staff_member.display_name": "insert into staff_member (email, display_name) values ('s' || md5(%s) || '@example.org', %s)",
}


def insert(conn, column: str, name: str) -> None:
    query = COLUMNS[column]
    conn.execute(query, (name, name) if query.count("%s") == 2 else (name,))


@pytest.mark.parametrize("column", COLUMNS)
def test_a_name_with_a_control_character_is_refused(conn, column):
    for name in BAD:
        with pytest.raises(errors.CheckViolation, match="printable"):
            insert(conn, column, name)
    for name in GOOD:
        insert(conn, column, name)


def alembic(url: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )


def test_the_migration_cleans_the_names_a_live_database_holds(db_url):
    alembic(db_url, "downgrade", "0013")
    with psycopg.connect(db_url, autocommit=True) as conn:
        student = add_student(conn, "Kim\r\n\r\nLee\t")
        course = add_course(conn, "Maths\x0bA")
        guardian = add_guardian(conn, "pat@example.org", student)
        conn.execute("update guardian set display_name = 'Evil\r\nBcc: a@evil.example' where id = %s", (guardian,))
        good = add_student(conn, "Zoë")
    alembic(db_url, "upgrade", "head")
    with psycopg.connect(db_url, autocommit=True) as conn:
        names = dict(conn.execute("select id, display_name from student_profile").fetchall())
        assert names == {student: "Kim Lee ", good: "Zoë"}
        assert conn.execute("select name from course where id = %s", (course,)).fetchone()[0] == "Maths A"
        assert conn.execute("select display_name from guardian").fetchone()[0] == "Evil Bcc: a@evil.example"
        assert (
            conn.execute(
                "select count(*) from pg_constraint where convalidated and conname in ('student_profile_display_name_printable',"
                " 'guardian_display_name_printable', 'course_name_printable', 'staff_member_display_name_printable')"
            ).fetchone()[0]
            == 4  # the four 0014 added, validated once it cleaned the names (later tables have their own)
        )
