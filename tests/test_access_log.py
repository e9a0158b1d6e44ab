"""The access log: one entry per read of a student's figures (JSON, CSV, page, staff list), none for
a refused read; append-only for every role; prune_access_log() the only way out."""

from __future__ import annotations

import pytest
from psycopg import errors

PAGES_AND_API = [
    ("/api/v1/students/{a}/weekly-trend", "GET /api/v1/students/<student_id>/weekly-trend"),
    ("/api/v1/students/{a}/weekly-trend.csv", "GET /api/v1/students/<student_id>/weekly-trend.csv"),
    ("/students/{a}", "GET /students/<student_id>"),
    ("/", "GET /"),
]


def entries(conn) -> list[tuple]:
    return conn.execute(
        "select guardian_id, staff_member_id, student_profile_id, endpoint from access_log order by id"
    ).fetchall()


@pytest.mark.parametrize("path,endpoint", PAGES_AND_API)
def test_each_parent_read_writes_one_entry(client, family, path, endpoint):
    r = client.get(path.format(a=family["a"]), headers={"Authorization": f"Bearer {family['token']}"})
    assert r.status_code == 200
    assert entries(family["conn"]) == [(family["guardian"], None, family["a"], endpoint)]
    occurred = family["conn"].execute("select now() - occurred_at from access_log").fetchone()[0]
    assert occurred.total_seconds() < 60


def test_refused_reads_write_no_entry(client, family):
    headers = {"Authorization": f"Bearer {family['token']}"}
    assert client.get(f"/api/v1/students/{family['b']}/weekly-trend", headers=headers).status_code == 404
    assert client.get(f"/api/v1/students/{family['a']}/weekly-trend?weeks=99", headers=headers).status_code == 400
    assert client.get(f"/api/v1/students/{family['a']}/weekly-trend").status_code == 401
    assert client.get("/api/v1/me/students", headers=headers).status_code == 200  # names, no figures
    assert entries(family["conn"]) == []


def test_a_staff_read_writes_one_entry(client, conn, family):
    member = conn.execute("insert into staff_member (email) values ('t@school.example') returning id").fetchone()[0]
    token = conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0]
    r = client.get(f"/staff/students/{family['a']}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert entries(conn) == [(None, member, family["a"], "GET /staff/students/<student_id>")]


def test_log_access_needs_a_reader(conn, family):
    with pytest.raises(errors.CheckViolation):
        conn.execute("select log_access(%s, 'x')", (family["a"],))  # neither setting made
    with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        conn.execute("insert into access_log (guardian_id, student_profile_id, endpoint) values (1, 1, 'forged')")


@pytest.fixture
def logged(conn, family):
    with conn.transaction():
        conn.execute("select set_config('app.guardian_id', %s, true)", (str(family["guardian"]),))
        conn.execute("select log_access(%s, 'test')", (family["a"],))
    return conn


@pytest.mark.parametrize(
    "statement",
    [
        "update access_log set endpoint = 'changed'",
        "delete from access_log",
        "truncate access_log",
    ],
)
@pytest.mark.parametrize("role", [None, "weekly_trends_reader", "weekly_trends_staff"])
def test_no_role_changes_or_removes_entries(logged, statement, role):
    # None: the owner (a superuser in the tests), whom the trigger refuses too.
    with pytest.raises(errors.InsufficientPrivilege), logged.transaction():
        if role:
            logged.execute(f"set local role {role}")
        logged.execute(statement)
    assert len(entries(logged)) == 1


def test_a_forged_prune_context_is_refused(logged):
    with pytest.raises(errors.InsufficientPrivilege):
        logged.execute("do $$ begin delete from access_log; end $$")
    assert len(entries(logged)) == 1


def test_prune_removes_only_entries_older_than_the_age(logged, family):
    # Entries as if written long ago (the owner may add entries, as log_access() does).
    for age in ("400 days", "200 days", "2 days"):
        logged.execute(
            "insert into access_log (occurred_at, guardian_id, student_profile_id, endpoint)"
            " values (now() - %s::interval, %s, %s, 'old')",
            (age, family["guardian"], family["a"]),
        )
    assert logged.execute("select prune_access_log()").fetchone()[0] == 1  # default: 1 year
    assert logged.execute("select prune_access_log('30 days')").fetchone()[0] == 1
    assert logged.execute("select prune_access_log('30 days')").fetchone()[0] == 0
    assert [e[3] for e in entries(logged)] == ["test", "old"]
    for bad in ("0 seconds", "-1 day"):
        with pytest.raises(errors.InvalidParameterValue):
            logged.execute("select prune_access_log(%s::interval)", (bad,))
    with pytest.raises(errors.InsufficientPrivilege), logged.transaction():
        logged.execute("set local role weekly_trends_staff")
        logged.execute("select prune_access_log('1 day')")
