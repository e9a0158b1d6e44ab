"""`weekly-trends backfill`: the seed's management command over the SQL functions."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone

import pytest

from web.ops.cli import main

from factories import add_quiz, add_student, assert_exact, drift


@pytest.fixture
def drifted(conn, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    a, b = add_student(conn), add_student(conn)
    now = datetime.now(UTC)
    for sid in (a, b):
        add_quiz(conn, sid, 70, now)
        add_quiz(conn, sid, 80, now - timedelta(weeks=20))  # outside the default 12 weeks
    conn.execute("update student_weekly_performance set quiz_count = 5")
    return conn, a, b


def test_dry_run_reports_and_changes_nothing(drifted, capsys):
    conn, a, b = drifted
    assert main(["backfill", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2 weekly row(s)" in out
    assert len(drift(conn)) == 4


def test_backfill_repairs_the_recent_weeks_only(drifted, capsys):
    conn, a, b = drifted
    assert main(["backfill"]) == 0
    assert "written" in capsys.readouterr().out
    assert len(drift(conn)) == 2  # the two weeks 20 weeks ago
    assert main(["backfill", "--weeks", "30"]) == 0
    assert_exact(conn)


def test_backfill_one_student(drifted):
    conn, a, b = drifted
    assert main(["backfill", "--student-id", str(a), "--weeks", "52"]) == 0
    assert {row[1] for row in drift(conn)} == {b}


def test_backfill_unknown_student_fails(drifted, capsys):
    assert main(["backfill", "--student-id", "987654"]) == 1
    assert "No student" in capsys.readouterr().err


def test_demo_data_prints_sign_in_links_and_shows_both_class_average_cases(conn, db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["demo-data", "--port", "5123"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:5123/login?token=wt_" in out
    assert "http://127.0.0.1:5123/staff/login?token=wts_" in out
    assert "curl -H 'Authorization: Bearer wt_" in out
    shown, hidden = conn.execute(
        "select count(*) filter (where student_count >= 10), count(*) filter (where student_count < 10)"
        "  from course_weekly_performance"
    ).fetchone()
    assert shown > 0 and hidden > 0
    assert main(["demo-data"]) == 0  # a second run reuses the school, issues fresh tokens
    assert "already present" in capsys.readouterr().out
    assert conn.execute("select count(*) from staff_member").fetchone()[0] == 1


def test_issue_staff_token(conn, db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    conn.execute("insert into staff_member (email) values ('t@school.example')")
    assert main(["issue-staff-token", "--email", "t@school.example", "--days", "2"]) == 0
    assert capsys.readouterr().out.startswith("wts_")
    assert main(["issue-staff-token", "--email", "nobody@school.example"]) == 1
    assert "No staff member" in capsys.readouterr().err


def test_stop_db_stops_the_embedded_server_then_deletes_its_data_and_never_starts_one(tmp_path, monkeypatch, capsys):
    import psutil

    from web.ops.embedded import start_server

    directory = tmp_path / "wt"
    directory.mkdir()
    directory.chmod(0o755)  # the server runs as another user when we are root
    data = directory / "data"
    monkeypatch.setenv("WEEKLY_TRENDS_DATA_DIR", str(data))
    assert main(["stop-db"]) == 0
    assert "no embedded PostgreSQL server was running" in capsys.readouterr().out
    assert not data.exists()  # nothing was started to be stopped

    start_server(data)  # left running, as make run leaves it
    pid = int((data / "postmaster.pid").read_text().split()[0])
    assert main(["stop-db", "--delete"]) == 0
    out = capsys.readouterr().out
    assert f"stopped the embedded PostgreSQL server of {data}" in out and f"deleted {data}" in out
    # gone, or a zombie that this process (its grandparent's parent) has not reaped yet
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not data.exists()


@pytest.mark.parametrize("one_student,school_zone", [(True, "UTC"), (False, "America/Los_Angeles")])
def test_backfill_takes_this_week_in_the_students_or_the_schools_time_zone(
    conn, db_url, monkeypatch, capsys, one_student, school_zone
):
    """Monday 4 March 2024 03:00 UTC is still Sunday 3 March in Los Angeles: this week there began on
    26 February. One student: their time zone decides; all students: the school's (a fixed clock, not the host's)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("WEEKLY_TRENDS_SCHOOL_TIME_ZONE", school_zone)
    sid = add_student(conn, "Zoe", "America/Los_Angeles")
    add_quiz(conn, sid, 70, datetime(2024, 3, 1, 18, tzinfo=UTC))  # Friday 1 March: the week of 26 Feb
    conn.execute("update student_weekly_performance set quiz_count = 5")
    clock = lambda: datetime(2024, 3, 4, 3, tzinfo=UTC)  # noqa: E731
    args = ["--student-id", str(sid)] if one_student else []
    assert main(["backfill", "--weeks", "1", "--dry-run", *args], clock=clock) == 0
    out = capsys.readouterr().out
    assert "Dry run: 1 weekly row(s) since 2024-02-26 would change." in out
    assert main(["backfill", "--weeks", "1", *args], clock=clock) == 0
    assert "Rebuilt the weeks since 2024-02-26" in capsys.readouterr().out
    assert_exact(conn)


@pytest.mark.parametrize("command", [["check"], ["migrate"], ["serve", "--bind", "127.0.0.1:0"]])
def test_without_database_url_the_cli_exits_2_and_starts_no_server(tmp_path, command):
    """No silent embedded server outside development (issue 24): without DATABASE_URL and without
    WEEKLY_TRENDS_EMBEDDED_DB=1 a command says what to set and exits 2, and no data directory appears."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    data_dir = tmp_path / "pgdata"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "WEEKLY_TRENDS_EMBEDDED_DB")}
    env["WEEKLY_TRENDS_DATA_DIR"] = str(data_dir)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "web.ops.cli", *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        assert "DATABASE_URL is not set" in done.stderr and "WEEKLY_TRENDS_EMBEDDED_DB=1" in done.stderr
        assert "Traceback" not in done.stderr
        assert not data_dir.exists()
    finally:
        if (data_dir / "postmaster.pid").exists():  # today's behaviour: stop the server it started
            from web.ops.embedded import stop_server

            stop_server(data_dir, delete=True)
    # `make run` opts in; nothing else does.
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "run: export WEEKLY_TRENDS_EMBEDDED_DB = 1" in makefile


def test_the_embedded_opt_in_is_a_checked_setting(monkeypatch, capsys):
    from web.settings import Settings

    assert Settings.load(environ={}).embedded_db is False
    assert Settings.load(environ={"WEEKLY_TRENDS_EMBEDDED_DB": "yes"}).embedded_db is True
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("WEEKLY_TRENDS_EMBEDDED_DB", "maybe")
    assert main(["check"]) == 2
    assert "WEEKLY_TRENDS_EMBEDDED_DB must be 1 or 0" in capsys.readouterr().err


def test_add_staff_is_idempotent_and_leads_to_a_staff_token(conn, db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["issue-staff-token", "--email", "teacher@school.example"]) == 1
    assert "No staff member" in capsys.readouterr().err
    assert main(["add-staff", "--email", "teacher@school.example", "--name", "Ms Teacher"]) == 0
    assert "added" in capsys.readouterr().out
    assert main(["add-staff", "--email", "teacher@school.example"]) == 0  # again: nothing changes
    assert "already present" in capsys.readouterr().out
    assert conn.execute("select email, display_name from staff_member").fetchall() == [
        ("teacher@school.example", "Ms Teacher")
    ]
    assert main(["add-staff", "--email", "teacher@school.example", "--name", "Mrs Teacher"]) == 0
    assert conn.execute("select display_name from staff_member").fetchone()[0] == "Mrs Teacher"
    assert "already present" in capsys.readouterr().out
    assert main(["issue-staff-token", "--email", "teacher@school.example"]) == 0
    assert capsys.readouterr().out.startswith("wts_")
    assert main(["add-staff", "--email", "not an email"]) == 2
    err = capsys.readouterr().err
    assert "not a usable email" in err and "Traceback" not in err
    assert conn.execute("select count(*) from staff_member").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("now", "sends"),
    [
        (datetime(2026, 7, 6, 6, 0, tzinfo=UTC), True),  # Monday 07:00 in London (summer time)
        (datetime(2026, 7, 6, 7, 0, tzinfo=UTC), False),  # 08:00 there
        (datetime(2026, 12, 7, 7, 0, tzinfo=UTC), True),  # Monday 07:00 in London (winter)
        (datetime(2026, 12, 7, 6, 0, tzinfo=UTC), False),
    ],
)
def test_digest_at_runs_only_at_the_schools_weekday_and_hour(conn, db_url, monkeypatch, capsys, now, sends):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("WEEKLY_TRENDS_SCHOOL_TIME_ZONE", "Europe/London")
    assert main(["digest", "--at", "Mon 07", "--dry-run"], clock=lambda: now) == 0
    out = capsys.readouterr().out
    assert ("Dry run for" in out) is sends


def test_digest_at_refuses_a_bad_hour(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["digest", "--at", "Monday 25"])
    assert exited.value.code == 2
    assert "'Mon 07'" in capsys.readouterr().err


@pytest.fixture
def app_role_url(conn, db_url):
    """The web servers' login role (a member of the two app roles, nothing more), on this test's database."""
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"wt_app_cli_{os.getpid()}"
    conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))
    conn.execute(
        sql.SQL("create role {} login in role weekly_trends_reader, weekly_trends_staff").format(sql.Identifier(name))
    )
    yield make_conninfo(db_url, user=name)
    conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
    conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


@pytest.mark.parametrize("command", [["check"], ["digest", "--dry-run"], ["digest"], ["refresh", "--class-view"]])
def test_owner_commands_as_the_app_role_say_so_without_a_traceback(family, app_role_url, monkeypatch, capsys, command):
    monkeypatch.setenv("DATABASE_URL", app_role_url)
    monkeypatch.setenv("MAIL_BACKEND", "maildir")
    monkeypatch.setenv("MAILDIR", "/nonexistent-maildir-never-written")
    code = main(command)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "may not do this" in err and "docs/operations.md" in err and "Traceback" not in err
