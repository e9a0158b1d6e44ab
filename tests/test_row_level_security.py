"""Row-level security: the app's roles see only the request's guardian's rows, even without a WHERE;
the owner is subject to FORCE too and keeps the weekly rows exact through the triggers."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timezone

import psycopg
import pytest
from psycopg import sql

from factories import add_assignment, add_course, add_guardian, add_quiz, add_student, assert_exact, drift, weekly_rows

UTC = UTC

# Each protected relation, and the column naming the guardian (g) or the student (s) a row belongs to.
PROTECTED = {
    "student_profile": ("s", "id"),
    "guardian": ("g", "id"),
    "guardian_student": ("g", "guardian_id"),
    "student_weekly_performance": ("s", "student_profile_id"),
}
# Protected by row-level security, but no longer selectable by the reader at all (revision 0014): the
# app reads them through security definer functions only.
NOT_FOR_THE_READER = {
    "guardian_token": ("g", "guardian_id"),
    "access_log": ("g", "guardian_id"),
}
# What the reader may select without a policy: nothing about a person (a course's name).
NOT_PERSONAL = {"course"}


@pytest.fixture
def two_families(conn, family):
    """family's guardians A and B, each with a token, per-course rows and an access-log entry."""
    gb = conn.execute(
        "select guardian_id from guardian_student where student_profile_id = %s", (family["b"],)
    ).fetchone()[0]
    course = add_course(conn, "Maths")
    for sid in (family["a"], family["b"]):
        add_quiz(conn, sid, 70, datetime(2024, 2, 6, 10, tzinfo=UTC), course_id=course)
        add_assignment(conn, sid, 80, graded_at=datetime(2024, 2, 7, 10, tzinfo=UTC), course_id=course)
    conn.execute("select issue_guardian_token(%s)", (gb,))
    for guardian, student in ((family["guardian"], family["a"]), (gb, family["b"])):
        with conn.transaction():
            conn.execute("select set_config('app.guardian_id', %s, true)", (str(guardian),))
            conn.execute("select log_access(%s, 'test')", (student,))
    return family | {"gb": gb}


def rows_as(conn, role: str, table: str, column: str, guardian_id: int | None) -> list:
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        if guardian_id is not None:
            conn.execute("select set_config('app.guardian_id', %s, true)", (str(guardian_id),))
        # No WHERE: only the policies stand between the role and every row.
        return [
            r[0]
            for r in conn.execute(sql.SQL("select {} from {}").format(sql.Identifier(column), sql.Identifier(table)))
        ]


@pytest.mark.parametrize("table", sorted(PROTECTED))
def test_a_guardian_sees_none_of_another_familys_rows(conn, two_families, table):
    kind, column = PROTECTED[table]
    mine = {"g": two_families["guardian"], "s": two_families["a"]}[kind]
    theirs = {"g": two_families["gb"], "s": two_families["b"]}[kind]
    seen = rows_as(conn, "weekly_trends_reader", table, column, two_families["guardian"])
    assert seen and set(seen) == {mine}
    assert theirs not in seen
    # and the other way round
    assert set(rows_as(conn, "weekly_trends_reader", table, column, two_families["gb"])) == {theirs}


@pytest.mark.parametrize("table", sorted(PROTECTED))
def test_without_the_setting_the_reader_sees_nothing(conn, two_families, table):
    assert rows_as(conn, "weekly_trends_reader", table, PROTECTED[table][1], None) == []
    assert conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table))).fetchone()[0] >= 2


def test_every_protected_relation_has_rls_enabled_and_forced(conn):
    protected = [*PROTECTED, *NOT_FOR_THE_READER]
    flags = dict(
        conn.execute(
            "select relname, (relrowsecurity and relforcerowsecurity) from pg_class"
            " where relnamespace = 'public'::regnamespace and relname = any(%s)",
            (protected,),
        ).fetchall()
    )
    assert flags == {table: True for table in protected}


def reader_selectable(conn) -> dict[str, dict]:
    """Every relation of the schema the reader role may select from (the whole relation, or any column of it),
    with its kind, its row-level security flags and whether a SELECT policy applies to the reader."""
    return {
        r[0]: {"kind": r[1], "forced": r[2], "reader_policy": r[3]}
        for r in conn.execute(
            """
        select c.relname, c.relkind, c.relrowsecurity and c.relforcerowsecurity,
               exists (select from pg_policy p
                        where p.polrelid = c.oid and p.polcmd in ('r', '*') and p.polpermissive
                          and 'weekly_trends_reader'::regrole = any(p.polroles))
          from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
           and (has_table_privilege('weekly_trends_reader', c.oid, 'select')
                or has_any_column_privilege('weekly_trends_reader', c.oid, 'select'))
        """
        )
    }


def test_nothing_personal_is_selectable_by_the_reader_without_a_policy(conn):
    # The catalogue, not a list: a new table with personal data granted to the reader without row-level
    # security (or a view or materialized view, which no policy can cover) fails here.
    selectable = reader_selectable(conn)
    unguarded = {
        name: info
        for name, info in selectable.items()
        if name not in NOT_PERSONAL and not (info["kind"] in ("r", "p") and info["forced"] and info["reader_policy"])
    }
    assert unguarded == {}
    assert set(selectable) == {*PROTECTED, *NOT_PERSONAL}


def test_the_catalogue_check_notices_an_unguarded_grant(conn):
    conn.execute("grant select on digest_delivery to weekly_trends_reader")
    assert "digest_delivery" in reader_selectable(conn)
    assert reader_selectable(conn)["digest_delivery"]["forced"] is False


@pytest.mark.parametrize("table", sorted(NOT_FOR_THE_READER))
def test_the_reader_cannot_select_tokens_or_the_access_log(conn, two_families, table):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        rows_as(conn, "weekly_trends_reader", table, NOT_FOR_THE_READER[table][1], two_families["guardian"])


def test_the_reader_sees_only_its_own_guardian_and_never_an_email(conn, two_families):
    assert rows_as(conn, "weekly_trends_reader", "guardian", "preferred_language", two_families["guardian"]) == [None]
    for column in ("email", "display_name"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            rows_as(conn, "weekly_trends_reader", "guardian", column, two_families["guardian"])


def test_the_class_view_is_read_only_through_the_function_that_hides_small_classes(conn, two_families):
    # Two students in Maths in 2024-W6: under the smallest minimum the database allows (5).
    conn.execute("select refresh_course_weekly_performance()")
    assert conn.execute("select student_count from course_weekly_performance").fetchall() == [(2,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        rows_as(conn, "weekly_trends_reader", "course_weekly_performance", "class_average", two_families["guardian"])
    course = conn.execute("select id from course").fetchone()[0]

    def class_weeks(guardian, student, minimum):
        with conn.transaction():
            conn.execute("set local role weekly_trends_reader")
            conn.execute("select set_config('app.guardian_id', %s, true)", (str(guardian),))
            return conn.execute(
                "select course_id, week_start_date, class_average, student_count"
                " from linked_course_class_weeks(%s, '2024-01-01', '2024-03-01', %s) where course_id = %s",
                (student, minimum, course),
            ).fetchall()

    # A minimum below the floor asked for by a caller is raised to it: the average of 2 stays hidden.
    assert class_weeks(two_families["guardian"], two_families["a"], 1) == [(course, date(2024, 2, 5), None, 2)]
    # Another family's child, or a course the child has no score in: nothing.
    assert class_weeks(two_families["guardian"], two_families["b"], 1) == []
    other = add_course(conn, "Art")
    add_quiz(conn, two_families["b"], 50, datetime(2024, 2, 6, 10, tzinfo=UTC), course_id=other)
    conn.execute("select refresh_course_weekly_performance()")
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        conn.execute("select set_config('app.guardian_id', %s, true)", (str(two_families["guardian"]),))
        assert (
            conn.execute(
                "select count(*) from linked_course_class_weeks(%s, '2024-01-01', '2024-03-01', 5)"
                " where course_id = %s",
                (two_families["a"], other),
            ).fetchone()[0]
            == 0
        )


def test_the_app_roles_own_nothing_and_cannot_bypass(conn):
    for role in ("weekly_trends_reader", "weekly_trends_staff"):
        assert conn.execute("select rolbypassrls, rolsuper from pg_roles where rolname = %s", (role,)).fetchone() == (
            False,
            False,
        )
        assert conn.execute("select count(*) from pg_class where relowner = %s::regrole", (role,)).fetchone()[0] == 0


def test_the_class_view_holds_no_per_student_figures(conn):
    columns = [
        r[0]
        for r in conn.execute(
            "select attname from pg_attribute where attrelid = 'course_weekly_performance'::regclass and attnum > 0 order by attnum"
        )
    ]
    assert "student_profile_id" not in columns


def test_staff_see_every_student_but_no_tokens_or_log(conn, two_families):
    seen = rows_as(conn, "weekly_trends_staff", "student_weekly_performance", "student_profile_id", None)
    assert {two_families["a"], two_families["b"]} <= set(seen)
    for table in ("guardian_token", "access_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            rows_as(conn, "weekly_trends_staff", table, "id", None)


def test_a_login_role_in_the_reader_role_is_restricted_without_set_role(conn, two_families):
    # The app's login role is a member of the reader role: forgetting SET ROLE still shows nothing.
    name = f"wt_app_login_{os.getpid()}"
    conn.execute(sql.SQL("create role {} nologin in role weekly_trends_reader").format(sql.Identifier(name)))
    try:
        assert rows_as(conn, name, "student_weekly_performance", "student_profile_id", None) == []
    finally:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


@pytest.fixture
def non_superuser_owner(conn):
    """This test database's objects handed to a NOLOGIN, non-superuser role, whose only way past
    FORCE row-level security is the owner policy."""
    name = f"wt_owner_{os.getpid()}"
    conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(name)))
    statements = conn.execute(
        """
        select format('alter %%s %%s owner to %%I', case relkind when 'm' then 'materialized view' else 'table' end,
                      oid::regclass, %(o)s::text)
          from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'm')
        union all
        select format('alter routine %%s owner to %%I', oid::regprocedure, %(o)s::text)
          from pg_proc where pronamespace = 'public'::regnamespace
        union all
        select format('alter type %%s owner to %%I', t.oid::regtype, %(o)s::text)
          from pg_type t join pg_class c on c.oid = t.typrelid
         where t.typnamespace = 'public'::regnamespace and c.relkind = 'c'
        """,
        {"o": name},
    ).fetchall()
    for (statement,) in statements:
        conn.execute(statement)
    # The policies that let other roles through go: only the owner's own policy remains.
    for table in [*PROTECTED, *NOT_FOR_THE_READER]:
        conn.execute(sql.SQL("drop policy not_app_roles_all on {}").format(sql.Identifier(table)))
        conn.execute(sql.SQL("alter policy owner_all on {} to {}").format(sql.Identifier(table), sql.Identifier(name)))
    yield name
    conn.execute("reset role")
    conn.execute(sql.SQL("reassign owned by {} to current_user").format(sql.Identifier(name)))
    conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
    conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def test_triggers_keep_the_weeks_exact_for_a_non_superuser_owner_under_force(conn, non_superuser_owner):
    conn.execute(sql.SQL("set role {}").format(sql.Identifier(non_superuser_owner)))
    assert conn.execute("select rolsuper, rolbypassrls from pg_roles where rolname = current_user").fetchone() == (
        False,
        False,
    )
    sid = add_student(conn, "Owner-written")
    course = add_course(conn)
    add_guardian(conn, "o@example.org", sid)
    first = add_quiz(conn, sid, 85, datetime(2024, 1, 15, 10, tzinfo=UTC), course_id=course)
    add_quiz(conn, sid, 90, datetime(2024, 1, 16, 10, tzinfo=UTC), course_id=course)
    conn.execute("update quiz_attempt set completed_at = '2024-01-23 10:00Z' where id = %s", (first,))
    conn.execute("update student_profile set time_zone = 'Pacific/Auckland' where id = %s", (sid,))
    assert [(r["week_number"], r["quiz_count"]) for r in weekly_rows(conn, sid)] == [(3, 1), (4, 1)]
    assert_exact(conn)
    assert conn.execute("select refresh_weekly_performance()").fetchone()[0] == 0
    conn.execute("delete from quiz_attempt where id = %s", (first,))
    assert [(r["week_number"], r["quiz_count"]) for r in weekly_rows(conn, sid)] == [(3, 1)]
    assert_exact(conn)


def test_a_writer_role_that_is_not_the_owner_still_writes_and_reads_its_rows(conn):
    """Writers (the learning platform, import jobs) are governed by their GRANTs, not by the policies."""
    name = f"wt_writer_{os.getpid()}"
    conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(name)))
    try:
        conn.execute(
            sql.SQL(
                "grant select, insert, update, delete on student_profile, guardian, guardian_student, quiz_attempt to {}"
            ).format(sql.Identifier(name))
        )
        with conn.transaction():
            conn.execute(sql.SQL("set local role {}").format(sql.Identifier(name)))
            sid = add_student(conn, "Written by the platform")
            add_guardian(conn, "platform@example.org", sid)
            add_quiz(conn, sid, 77, datetime(2024, 3, 4, 9, tzinfo=UTC))
            conn.execute("update student_profile set display_name = 'Renamed' where id = %s", (sid,))
            assert (
                conn.execute("select display_name from student_profile where id = %s", (sid,)).fetchone()[0]
                == "Renamed"
            )
            assert (
                conn.execute("select count(*) from guardian_student where student_profile_id = %s", (sid,)).fetchone()[
                    0
                ]
                == 1
            )
        assert [(r["week_number"], r["quiz_count"]) for r in weekly_rows(conn, sid)] == [(10, 1)]
        assert_exact(conn)
    finally:
        conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))
