"""Alembic: one head; upgrade, downgrade, upgrade again, also beside other migrated databases;
revisions install the SQL frozen beside them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from conftest import create_database, drop_database
from web.embedded import PROJECT_ROOT

VERSIONS = PROJECT_ROOT / "db" / "migrations" / "versions"


def alembic(url: str, *args: str) -> subprocess.CompletedProcess:
    """The alembic command line, as a DBA runs it, with DATABASE_URL."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )


def objects(url: str) -> list:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and c.relname not like 'alembic_version%%' order by 1"
        ).fetchall() + conn.execute(
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname = 'public' order by 1"
        ).fetchall()


def test_one_head():
    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    assert len(script.get_heads()) == 1


@pytest.fixture
def two_databases(server_url):
    names = [f"wt_mig_{os.getpid()}_{n}" for n in (1, 2)]
    urls = [create_database(server_url, name) for name in names]
    yield urls
    for name in names:
        drop_database(server_url, name)


def test_upgrade_downgrade_upgrade_beside_another_migrated_database(two_databases):
    first, second = two_databases
    alembic(first, "upgrade", "head")
    alembic(second, "upgrade", "head")
    migrated = objects(first)
    assert ("student_weekly_performance",) in migrated

    alembic(first, "downgrade", "base")
    assert objects(first) == []
    # the other database keeps working: its grants to the shared role are intact
    with psycopg.connect(second, autocommit=True) as conn:
        conn.execute("set role weekly_trends_reader")
        conn.execute("select count(*) from student_weekly_performance")

    alembic(first, "upgrade", "head")
    assert objects(first) == migrated
    alembic(second, "downgrade", "base")
    alembic(first, "downgrade", "base")
    alembic(first, "upgrade", "head")  # also after the role itself was dropped
    assert objects(first) == migrated


def test_migrations_honour_database_url(two_databases):
    first, _ = two_databases
    result = alembic(first, "upgrade", "head")
    assert "Running upgrade" in result.stderr
    with psycopg.connect(first) as conn:
        assert conn.execute("select version_num from alembic_version").fetchone()[0] == head_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini"))).get_current_head()


def revisions_oldest_first() -> list[str]:
    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def write_and_check(url: str) -> None:
    """Writes through the triggers, then asserts the weekly figures match the source rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        sid = conn.execute("insert into student_profile (display_name) values ('M') returning id").fetchone()[0]
        cid = conn.execute("insert into course (name) values ('C') returning id").fetchone()[0]
        conn.execute(
            "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
            " values (%s, %s, 85, '2024-03-05 10:00Z'), (%s, %s, 90, '2024-03-06 10:00Z')",
            (sid, cid, sid, cid),
        )
        conn.execute("update quiz_attempt set completed_at = '2024-03-12 10:00Z' where score = 90 and student_profile_id = %s",
                     (sid,))
        rows = conn.execute(
            "select week_number, quiz_count, quiz_average from student_weekly_performance"
            " where student_profile_id = %s order by 1", (sid,)
        ).fetchall()
        assert rows == [(10, 1, 85), (11, 1, 90)]
        assert conn.execute("select count(*) from check_weekly_performance()").fetchone()[0] == 0
        assert conn.execute("select count(*) from check_course_weekly_performance()").fetchone()[0] == 0
        conn.execute("delete from student_profile where id = %s", (sid,))
        assert conn.execute("select count(*) from student_weekly_performance where student_profile_id = %s",
                            (sid,)).fetchone()[0] == 0


def test_each_downgrade_leaves_the_previous_revision_working(two_databases):
    first, _ = two_databases
    revisions = revisions_oldest_first()
    for revision in revisions:
        alembic(first, "upgrade", revision)
        write_and_check(first)
    for previous in reversed(revisions[:-1]):
        alembic(first, "downgrade", previous)
        write_and_check(first)


def role_exists(url: str, role: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("select exists (select from pg_roles where rolname = %s)", (role,)).fetchone()[0]


def role_used_elsewhere(url: str, role: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select exists (select from pg_shdepend d join pg_roles r on r.oid = d.refobjid"
            " where r.rolname = %s and d.refclassid = 'pg_authid'::regclass)",
            (role,),
        ).fetchone()[0]


def grantees(url: str) -> set:
    with psycopg.connect(url) as conn:
        return {
            row[0]
            for row in conn.execute(
                "select grantee from information_schema.role_table_grants where table_schema = 'public'"
                " union select grantee from information_schema.role_routine_grants where routine_schema = 'public'"
            )
        }


def test_0002_up_down_up_beside_another_migrated_database(two_databases):
    first, second = two_databases
    alembic(first, "upgrade", "0001")
    core = objects(first)
    alembic(first, "upgrade", "0002")
    alembic(second, "upgrade", "0002")
    staff = set(objects(first)) - set(core)
    assert staff == {("staff_member",), ("staff_token",), ("staff_member_pkey",), ("staff_member_email_key",), ("staff_token_pkey",), ("staff_token_token_hash_key",), ("staff_token_staff_member_id_idx",), ("staff_token_id_seq",), ("staff_member_id_seq",), ("issue_staff_token",), ("mint_token",)}

    alembic(first, "downgrade", "0001")
    assert objects(first) == core
    assert "weekly_trends_staff" not in grantees(first)
    # the other database still uses the role: it stays, with its grants there
    assert role_exists(first, "weekly_trends_staff")
    with psycopg.connect(second, autocommit=True) as conn:
        conn.execute("set role weekly_trends_staff")
        conn.execute("select count(*) from staff_token")

    alembic(first, "upgrade", "0002")
    assert set(objects(first)) - set(core) == staff
    alembic(second, "downgrade", "0001")
    alembic(first, "downgrade", "0001")
    # dropped unless a database outside this test (the suite's template) still uses it
    assert role_exists(first, "weekly_trends_staff") == role_used_elsewhere(first, "weekly_trends_staff")
    alembic(first, "upgrade", "0002")
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("set role weekly_trends_staff")
        conn.execute("select count(*) from staff_token")


def test_each_function_file_is_frozen_in_the_latest_revision_that_ships_it():
    """db/functions/ must not drift from what the newest revision installs: edit a function,
    then add a revision and `make freeze-sql REV=<it>`."""
    revisions = sorted(p for p in VERSIONS.iterdir() if p.is_dir() and p.name != "__pycache__")
    for path in sorted((PROJECT_ROOT / "db" / "functions").glob("*.sql")):
        frozen = [r / path.name for r in revisions if (r / path.name).exists()]
        assert frozen, f"{path.name} is installed by no revision"
        assert frozen[-1].read_text() == path.read_text(), f"{path.name} changed since {frozen[-1].parent.name} froze it"


def test_installed_function_bodies_are_the_frozen_ones(conn):
    frozen = "".join(p.read_text() for p in VERSIONS.glob("*/*.sql"))
    bodies = conn.execute(
        "select p.proname, p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public'"
    ).fetchall()
    assert len(bodies) >= 15
    for name, body in bodies:
        assert body in frozen, f"{name} was not installed from a frozen file"
