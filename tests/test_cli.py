"""`weekly-trends backfill`: the seed's management command over the SQL functions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from factories import add_quiz, add_student, drift
from web.cli import main


@pytest.fixture
def drifted(conn, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    a, b = add_student(conn), add_student(conn)
    now = datetime.now(timezone.utc)
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
    assert drift(conn) == []


def test_backfill_one_student(drifted):
    conn, a, b = drifted
    assert main(["backfill", "--student-id", str(a), "--weeks", "52"]) == 0
    assert {row[1] for row in drift(conn)} == {b}


def test_backfill_unknown_student_fails(drifted, capsys):
    assert main(["backfill", "--student-id", "987654"]) == 1
    assert "No student" in capsys.readouterr().err
