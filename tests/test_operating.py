"""Operating it: `weekly-trends serve` (gunicorn), refresh in batches with a progress bar, check;
request ids and JSON log lines; /metrics; the optional read pool (DATABASE_READ_URL)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta, timezone

import pytest

import web.ops.serve
from web import create_app
from web.db import close_pool
from web.observability import JsonFormatter
from web.ops.cli import main

from factories import add_quiz, add_student, assert_exact, drift
from live import free_port, wait_until_up


@pytest.fixture
def drifted(conn, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    students = [add_student(conn, f"S{n}") for n in range(5)]
    now = datetime.now(UTC)
    for sid in students:
        add_quiz(conn, sid, 70, now)
        add_quiz(conn, sid, 80, now - timedelta(weeks=30))
    conn.execute("update student_weekly_performance set quiz_count = 5")
    return conn, students


def test_check_lists_drifted_weeks_and_exits_1(drifted, capsys):
    conn, students = drifted
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "10 weekly row(s) drifted" in out
    assert all(f"{sid:>8} " in out for sid in students)
    assert main(["check", "--student-id", str(students[0])]) == 1
    assert "2 weekly row(s) drifted" in capsys.readouterr().out


def test_refresh_in_batches_repairs_everything_and_shows_progress(drifted, capsys):
    conn, students = drifted
    assert main(["refresh", "--batch-size", "2"]) == 0
    captured = capsys.readouterr()
    assert "Refreshed 5 student(s): 10 aggregate row(s) written" in captured.out
    assert "5/5" in captured.err  # the progress bar
    assert_exact(conn)
    assert main(["check"]) == 0
    assert "No drift" in capsys.readouterr().out


def test_refresh_one_student_since_a_date(drifted, capsys):
    conn, students = drifted
    since = (datetime.now(UTC) - timedelta(weeks=2)).date().isoformat()
    assert main(["refresh", "--student-id", str(students[0]), "--since", since, "--quiet"]) == 0
    assert "1 aggregate row(s) written" in capsys.readouterr().out
    assert {row[1] for row in drift(conn)} == set(students[1:]) | {students[0]}
    assert len([row for row in drift(conn) if row[1] == students[0]]) == 1  # the old week, before --since
    assert main(["refresh", "--student-id", "987654"]) == 1
    assert "No student" in capsys.readouterr().err


def test_refresh_takes_locks_per_batch(drifted, monkeypatch):
    """Each batch commits before the next starts: a writer is never held up by the whole rebuild."""
    conn, students = drifted
    import psycopg

    commits = []
    original = psycopg.Connection.transaction

    def counting(self, *args, **kwargs):
        commits.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "transaction", counting)
    assert main(["refresh", "--batch-size", "2", "--quiet"]) == 0
    assert len(commits) == 3


def test_serve_runs_gunicorn_with_json_logs_request_ids_and_metrics(db_url, family, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "WEEKLY_TRENDS_SECRET_KEY": "s",
        "WEEKLY_TRENDS_LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "WEEKLY_TRENDS_METRICS_ALLOW_FROM": "127.0.0.1",
    }
    (tmp_path / "metrics").mkdir()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log_file:  # a file, not a pipe: a full pipe would stall the workers
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "web.ops.cli",
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "2",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base)
        request = urllib.request.Request(
            f"{base}/api/v1/students/{family['a']}/weekly-trend",
            headers={"Authorization": f"Bearer {family['token']}", "X-Request-ID": "trace-123"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200 and response.headers["X-Request-ID"] == "trace-123"
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
            generated = response.headers["X-Request-ID"]
            assert len(generated) == 32
        for _ in range(6):  # reach both workers
            metrics = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
        assert (
            'weekly_trends_request_duration_seconds_bucket{endpoint="/api/v1/students/<student_id>/weekly-trend"'
            in metrics
        )
        assert (
            'weekly_trends_responses_total{endpoint="/api/v1/students/<student_id>/weekly-trend",method="GET",status="200"} 1.0'
            in metrics
        )
        assert "weekly_trends_pool_size{" in metrics and "weekly_trends_pool_requests_waits_total{" in metrics
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    stderr = log_path.read_text()
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert lines and all({"time", "level", "message", "request_id"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "weekly_trends.access"]
    assert any(line["request_id"] == "trace-123" and line["status"] == 200 for line in access)
    assert any(line["request_id"] == generated for line in access)
    assert any(line["logger"].startswith("gunicorn") for line in lines)
    # every line logged while serving a request carries its id
    assert all(line["request_id"] != "-" for line in lines if not line["logger"].startswith("gunicorn"))
    assert family["token"] not in stderr


def test_a_bad_request_id_is_replaced_and_every_line_of_a_request_carries_it(app, client, family, caplog):
    caplog.handler.setFormatter(JsonFormatter())
    with caplog.at_level(logging.INFO):
        r = client.get("/healthz", headers={"X-Request-ID": "bad id; with spaces"})
        client.get(f"/api/v1/students/{family['a']}/weekly-trend", headers={"Authorization": "Bearer wrong"})
    rid = r.headers["X-Request-ID"]
    assert rid != "bad id; with spaces" and len(rid) == 32
    entries = [json.loads(caplog.handler.format(record)) for record in caplog.records]
    assert any(e["request_id"] == rid and e["path"] == "/healthz" for e in entries)
    assert all(e["request_id"] not in ("-", None) for e in entries if e["logger"] == "weekly_trends.access")


def test_metrics_count_statuses_per_endpoint(app, client, family):
    app.config["METRICS_ALLOW_FROM"] = "127.0.0.1"  # the test client's address
    auth = {"Authorization": f"Bearer {family['token']}"}
    client.get(f"/api/v1/students/{family['a']}/weekly-trend", headers=auth)
    client.get(f"/api/v1/students/{family['b']}/weekly-trend", headers=auth)
    client.get(f"/api/v1/students/{family['b']}/weekly-trend", headers=auth)
    text = client.get("/metrics").get_data(as_text=True)
    series = (
        'weekly_trends_responses_total{endpoint="/api/v1/students/<student_id>/weekly-trend",method="GET",status="%s"}'
    )
    assert series % 200 + " 1.0" in text and series % 404 + " 2.0" in text
    assert (
        'weekly_trends_request_duration_seconds_count{endpoint="/api/v1/students/<student_id>/weekly-trend",method="GET"} 3.0'
        in text
    )
    assert f'weekly_trends_pool_size{{pid="{os.getpid()}",pool="primary"}}' in text


def copy_rows(source, target, table: str) -> None:
    with source.cursor().copy(f"copy {table} to stdout") as out:
        data = b"".join(bytes(chunk) for chunk in out)
    with target.cursor().copy(f"copy {table} from stdin") as into:
        into.write(data)


def test_the_read_pool_serves_parents_reads_and_the_log_goes_to_the_primary(
    db_url, server_url, template_database, family, conn
):
    """DATABASE_READ_URL: a second pool. A second database with a copy of the family stands in
    for the replica: what the parent sees comes from it, the access-log entry lands in the primary."""
    import psycopg

    from conftest import create_database, drop_database

    replica_name = f"wt_replica_{os.getpid()}"
    replica_url = create_database(server_url, replica_name, template=template_database)
    try:
        with psycopg.connect(replica_url, autocommit=True) as replica:
            for table in ("student_profile", "guardian", "guardian_student", "guardian_token"):
                copy_rows(conn, replica, table)
            replica.execute(
                "update student_profile set display_name = 'From the replica' where id = %s", (family["a"],)
            )
        application = create_app({"DATABASE_URL": db_url, "DATABASE_READ_URL": replica_url, "SECRET_KEY": "k"})
        auth = {"Authorization": f"Bearer {family['token']}"}
        try:
            client = application.test_client()
            assert (
                client.get("/api/v1/me/students", headers=auth).get_json()["students"][0]["display_name"]
                == "From the replica"
            )
            assert client.get(f"/api/v1/students/{family['a']}/weekly-trend", headers=auth).status_code == 200
            assert set(application.extensions["weekly_trends_pools"][1]) == {"primary", "replica"}
        finally:
            close_pool(application)
        assert conn.execute("select guardian_id, student_profile_id from access_log").fetchall() == [
            (family["guardian"], family["a"])
        ]
        with psycopg.connect(replica_url) as replica:
            assert replica.execute("select count(*) from access_log").fetchone()[0] == 0
    finally:
        drop_database(server_url, replica_name)


def test_serve_defaults_follow_the_cores(monkeypatch):
    from web.ops import serve

    monkeypatch.setattr(web.ops.serve, "cores", lambda: 6)  # serve's own name for it
    options = web.ops.serve.default_options("127.0.0.1:9", None, 4, 30, 10_000)
    assert (options["workers"], options["worker_class"], options["threads"]) == (7, "gthread", 4)
    assert (options["timeout"], options["max_requests"], options["max_requests_jitter"]) == (30, 10_000, 1_000)
    assert web.ops.serve.default_options("127.0.0.1:9", 2, 8, 60, 0)["workers"] == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEEKLY_TRENDS_STATEMENT_TIMEOUT", "abc"),
        ("WEEKLY_TRENDS_STATEMENT_TIMEOUT", "0"),
        ("WEEKLY_TRENDS_STATEMENT_TIMEOUT", "-5"),
        ("WEEKLY_TRENDS_STATEMENT_TIMEOUT", "601"),
        ("WEEKLY_TRENDS_DB_POOLER", "session"),
    ],
)
def test_bad_connection_settings_stop_the_app_at_start_naming_the_setting(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        create_app({"SECRET_KEY": "k"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT", "abc"),
        ("WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT", "-1"),
        ("WEEKLY_TRENDS_DB_POOLER", "statement"),
    ],
)
def test_bad_connection_settings_stop_the_cli_with_a_message(monkeypatch, capsys, db_url, name, value):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv(name, value)
    assert main(["check"]) == 2
    assert name in capsys.readouterr().err


def test_every_connection_is_bounded_and_prepares_nothing(monkeypatch, db_url):
    from web.connection import connect, connection_kwargs
    from web.settings import Settings

    kwargs = connection_kwargs("postgresql://u@db.example/x", "weekly-trends-test", statement_timeout=600)
    assert kwargs["connect_timeout"] == 5 and kwargs["keepalives"] == 1 and kwargs["tcp_user_timeout"] == 25_000
    assert kwargs["prepare_threshold"] is None and kwargs["options"] == "-c statement_timeout=600000"
    # what the URL says wins; behind a transaction-mode pooler no startup option is sent
    assert "connect_timeout" not in connection_kwargs("postgresql://u@db/x?connect_timeout=30", "t")
    assert "options" not in connection_kwargs("postgresql://u@db/x", "t", statement_timeout=600, pooler="transaction")
    monkeypatch.setenv("WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT", "2.5")
    with connect(Settings.load(), "weekly-trends-test", db_url) as conn:
        assert conn.execute("show statement_timeout").fetchone()[0] == "2500ms"
        for _ in range(10):  # psycopg would prepare it after 5
            conn.execute("select 1 where 1 = %s", (1,))
        assert conn.execute("select count(*) from pg_prepared_statements").fetchone()[0] == 0


def test_a_request_transaction_has_the_statement_timeout(app, family):
    from web.db import reader

    app.config["STATEMENT_TIMEOUT"] = 0.3
    with app.test_request_context(), reader() as conn:
        assert conn.execute("show statement_timeout").fetchone()["statement_timeout"] == "300ms"
        with pytest.raises(Exception) as raised:
            conn.execute("select pg_sleep(2)")
    assert type(raised.value).__name__ == "QueryCanceled"
    assert app.test_client().get("/healthz").status_code == 200  # set local: nothing outlived that transaction
