"""A frozen database (issue 22, finding 4): the postmaster and every backend stopped with SIGSTOP, as a
frozen VM or a stalled disk leaves them. Every request, /healthz included, answers 503 with Retry-After
within WEEKLY_TRENDS_POOL_TIMEOUT + WEEKLY_TRENDS_STATEMENT_TIMEOUT + 1 s (web/db.py), in the app
in-process (as under `flask run`) and under `weekly-trends serve`; once thawed, the app answers again.

The server's kernel still accepts and acknowledges on its sockets, so neither TCP keepalives nor
statement_timeout (the server's own) end a query here: only the client's own bound does (BoundedConnection)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timezone

import psycopg
import pytest

from web.ops.cli import migrate

from factories import add_guardian, add_quiz, add_student
from live import free_port, wait_until_up
from scratch_server import ScratchServer, _parent

pytestmark = pytest.mark.slow

POOL_TIMEOUT, STATEMENT_TIMEOUT, GRACE = 2.0, 1.0, 1.0
BOUND = POOL_TIMEOUT + STATEMENT_TIMEOUT + GRACE
SLACK = 2.0  # the test's own threads and HTTP on a busy machine
HUNG = BOUND + 20  # past this the request is taken as hanging (today's code: for as long as the freeze)


@pytest.fixture(scope="module")
def frozen_server():
    """A server of this module's own (it is frozen), migrated, with one family; yields (server, url, paths, token)."""
    server = ScratchServer().init()
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("create database frozen")
        url = server.url("frozen")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            child = add_student(conn, "Ann", "Europe/London")
            guardian = add_guardian(conn, "a@example.org", child)
            add_quiz(conn, child, 85, datetime(2024, 1, 15, 10, tzinfo=UTC))
            token = conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0]
        paths = [
            f"/api/v1/students/{child}/weekly-trend?end=2024-01-21",
            f"/students/{child}?end=2024-01-21",
            "/api/v1/me/students",
            "/healthz",
        ]
        yield server, url, paths, token
    finally:
        server.cleanup()


class Frozen:
    """SIGSTOP of the postmaster and all its children; SIGCONT on leaving, whatever happened."""

    def __init__(self, server: ScratchServer):
        self.postmaster = server.process.pid

    def __enter__(self) -> Frozen:
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == self.postmaster]
        self.pids = [self.postmaster, *children]
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def concurrently(fetch, paths: list[str]) -> list[tuple[str, object, float]]:
    """fetch(path) -> (status, headers) for every path at once: [(path, (status, headers) or None, seconds)]."""
    results: list = [None] * len(paths)

    def one(i: int) -> None:
        started = time.monotonic()
        outcome = fetch(paths[i])
        results[i] = (paths[i], outcome, time.monotonic() - started)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + HUNG
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [r if r is not None else (paths[i], None, HUNG) for i, r in enumerate(results)]


def assert_503_within_bound(results) -> None:
    print(
        "\n"
        + "\n".join(
            f"  {path}: {outcome[0] if outcome else 'no answer'} after {seconds:.2f} s"
            for path, outcome, seconds in results
        )
    )
    for path, outcome, seconds in results:
        assert outcome is not None, f"{path}: no answer within {HUNG} s"
        status, headers = outcome
        assert status == 503 and headers.get("Retry-After"), f"{path}: {status} {dict(headers)}"
        assert seconds <= BOUND + SLACK, f"{path}: 503 after {seconds:.2f} s, the bound is {BOUND} s"


def eventually_ok(fetch, path: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    status = None
    while time.monotonic() < deadline:
        status = fetch(path)[0]
        if status == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path}: {status} {within} s after the thaw")


def test_a_frozen_database_answers_503_in_time_in_process(frozen_server):
    from web import create_app
    from web.db import close_pool

    server, url, paths, token = frozen_server
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "k",
            "POOL_MIN_SIZE": 2,
            "POOL_MAX_SIZE": 2,
            "POOL_TIMEOUT": POOL_TIMEOUT,
            "STATEMENT_TIMEOUT": STATEMENT_TIMEOUT,
        }
    )

    def fetch(path: str):
        response = app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
        return response.status_code, response.headers

    try:
        for path in paths:  # the pool holds live connections when the server freezes
            assert fetch(path)[0] == 200, path
        with Frozen(server):
            results = concurrently(fetch, paths)
            # and a request after the first ones gave up: no faster way round, no slower one either
            later = concurrently(fetch, paths[:1])
        assert_503_within_bound(results + later)
        eventually_ok(fetch, paths[0])
        eventually_ok(fetch, "/healthz")

        # frozen in the middle of a transaction (the pool's check passed): cut STATEMENT_TIMEOUT + 1 s in
        from web.connection import DatabaseTimeout
        from web.db import reader

        with app.test_request_context():
            started = time.monotonic()
            with pytest.raises(DatabaseTimeout):
                with reader() as conn:
                    conn.execute("select 1")
                    with Frozen(server):
                        conn.execute("select 2")
            seconds = time.monotonic() - started
        print(f"  a transaction frozen midway: DatabaseTimeout after {seconds:.2f} s")
        assert STATEMENT_TIMEOUT + GRACE - 0.1 <= seconds <= STATEMENT_TIMEOUT + GRACE + SLACK
        eventually_ok(fetch, paths[0])  # the cut connection left the pool

        # only waiting on the server counts: a transaction idle longer than the bound between two
        # statements (the app's own work) is not cut
        with app.test_request_context(), reader() as conn:
            conn.execute("select 1")
            time.sleep(STATEMENT_TIMEOUT + GRACE + 0.5)
            assert conn.execute("select 2 as two").fetchone()["two"] == 2
    finally:
        close_pool(app)


def test_a_frozen_database_answers_503_in_time_under_serve(frozen_server, tmp_path):
    server, url, paths, token = frozen_server
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WEEKLY_TRENDS_SECRET_KEY": "k",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "WEEKLY_TRENDS_POOL_TIMEOUT": str(POOL_TIMEOUT),
        "WEEKLY_TRENDS_STATEMENT_TIMEOUT": str(STATEMENT_TIMEOUT),
    }
    with open(tmp_path / "server.log", "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "web.ops.cli",
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    def fetch(path: str):
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=HUNG) as response:
                response.read()
                return response.status, response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.headers
        except OSError:
            return None

    try:
        wait_until_up(base)
        for path in paths:
            assert fetch(path)[0] == 200, path
        with Frozen(server):
            results = concurrently(fetch, paths)
        assert_503_within_bound(results)
        eventually_ok(fetch, paths[0])
        eventually_ok(fetch, "/healthz")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    assert '"level": "ERROR"' not in (tmp_path / "server.log").read_text()
