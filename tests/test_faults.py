"""Faults (slow): kill -9 of the server under 4 writers, a full rebuild under 4 writers, and a soak of
mixed writes and HTTP reads against gunicorn. Every committed row survives; no drift, no deadlock."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from web.ops.cli import migrate

from factories import add_course, add_guardian, add_student, assert_exact
from live import free_port, wait_until_up
from scratch_server import ScratchServer

pytestmark = pytest.mark.slow

WRITERS = 4
BASE = datetime(2025, 1, 6, tzinfo=UTC)


class Writer(threading.Thread):
    """Inserts quiz attempts (one or several a statement) and updates its own, each statement its
    own transaction; records what each commit that returned left in the table."""

    def __init__(
        self,
        url: str,
        seed: int,
        students: list[int],
        courses: list[int],
        stop: threading.Event,
        *,
        crash_expected: bool = False,
    ):
        super().__init__(daemon=True)
        self.url, self.rng, self.students, self.courses, self.stop_event = (
            url,
            random.Random(seed),
            students,
            courses,
            stop,
        )
        self.crash_expected = crash_expected
        self.committed: dict[int, Decimal] = {}  # id -> score, as of the last commit that returned
        self.in_doubt: set[int] = set()  # updated by a statement whose commit the crash left unknown
        self.errors: list[BaseException] = []
        self.statements = 0

    def when(self) -> datetime:
        return BASE + timedelta(minutes=self.rng.randrange(0, 60 * 24 * 28))

    def step(self, conn: psycopg.Connection) -> None:
        rng = self.rng
        if rng.random() < 0.55 or len(self.committed) < 5:
            rows = [
                (
                    rng.choice(self.students),
                    rng.choice(self.courses + [None]),
                    Decimal(rng.randrange(0, 11000)) / 100,
                    self.when(),
                )
                for _ in range(rng.randint(1, 5))
            ]
            values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
            inserted = conn.execute(
                f"insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values {values}"
                " returning id, score",
                [v for row in rows for v in row],
            ).fetchall()
            self.committed.update(dict(inserted))
        else:
            chosen = rng.sample(sorted(self.committed), min(len(self.committed), rng.randint(1, 3)))
            self.in_doubt.update(chosen)
            updated = conn.execute(
                "update quiz_attempt set score = %s, completed_at = %s, student_profile_id = %s"
                " where id = any(%s) returning id, score",
                (Decimal(rng.randrange(0, 11000)) / 100, self.when(), rng.choice(self.students), chosen),
            ).fetchall()
            self.committed.update(dict(updated))
            self.in_doubt.difference_update(chosen)

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self.stop_event.is_set():
                    self.step(conn)
                    self.statements += 1
        except psycopg.OperationalError as error:
            if not (self.crash_expected and self.stop_event.is_set()):
                self.errors.append(error)
        except BaseException as error:  # noqa: BLE001 - every failure is reported by the test
            self.errors.append(error)


def start_writers(url: str, students: list[int], courses: list[int], stop: threading.Event, **kwargs) -> list[Writer]:
    writers = [Writer(url, seed, students, courses, stop, **kwargs) for seed in range(WRITERS)]
    for writer in writers:
        writer.start()
    return writers


def assert_committed_rows_present(conn: psycopg.Connection, writers: list[Writer]) -> int:
    expected = {i: s for w in writers for i, s in w.committed.items() if i not in w.in_doubt}
    stored = dict(conn.execute("select id, score from quiz_attempt where id = any(%s)", (list(expected),)).fetchall())
    missing = {i for i in expected if i not in stored}
    changed = {i for i in expected if i in stored and stored[i] != expected[i]}
    assert not missing and not changed, f"{len(missing)} committed rows missing, {len(changed)} changed"
    return len(expected)


def seed(conn: psycopg.Connection, students: int = 20) -> tuple[list[int], list[int]]:
    zones = ["UTC", "Europe/London", "America/New_York", "Asia/Tokyo", "Pacific/Auckland"]
    return [add_student(conn, f"S{n}", zones[n % len(zones)]) for n in range(students)], [
        add_course(conn, f"C{n}") for n in range(3)
    ]


def test_kill_9_of_the_server_loses_no_committed_row_and_no_figure():
    server = ScratchServer().init()
    server.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("create database crash")
        url = server.url("crash")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            students, courses = seed(conn)
        stop = threading.Event()
        writers = start_writers(url, students, courses, stop, crash_expected=True)
        time.sleep(4)
        stop.set()  # set first: the writers' connection errors from here on are the crash's
        server.kill9()
        for writer in writers:
            writer.join(30)
        assert all(not w.is_alive() for w in writers)
        assert [e for w in writers for e in w.errors] == []
        assert sum(w.statements for w in writers) > 40, "the writers hardly wrote before the crash"

        server.start()  # crash recovery replays the WAL
        assert "database system was interrupted" in server.log() or "not properly shut down" in server.log()
        with psycopg.connect(url, autocommit=True) as conn:
            assert assert_committed_rows_present(conn, writers) > 40
            assert_exact(conn)
    finally:
        server.cleanup()


def test_full_refresh_under_four_writers_leaves_no_drift(db_url, conn):
    students, courses = seed(conn)
    stop = threading.Event()
    writers = start_writers(db_url, students, courses, stop)
    # A multi-row writer's foreign-key checks lock its students in row order; a full refresh holds the
    # writers off with SHARE on the source tables instead of locking students in id order against them.
    # No retry: a single deadlock (quickly detected here) fails the test.
    conn.execute("set deadlock_timeout = '50ms'")
    deadlocks_before = deadlocks(conn)
    refreshes = 0
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            conn.execute("select refresh_weekly_performance()")
            refreshes += 1
    finally:
        stop.set()
        for writer in writers:
            writer.join(60)
    print(f"{refreshes} full refreshes under {WRITERS} writers, none rolled back")
    assert [e for w in writers for e in w.errors] == []
    assert refreshes >= 3 and sum(w.statements for w in writers) > 100
    assert_committed_rows_present(conn, writers)
    assert_exact(conn)
    time.sleep(1.5)  # statistics reach pg_stat_database within a second
    assert deadlocks(conn) == deadlocks_before  # none in the writers either


SOAK_SECONDS = float(os.environ.get("WEEKLY_TRENDS_SOAK_SECONDS", "150"))
WARM_UP_SECONDS = 30
# Growth of a web worker's resident memory allowed between the end of the warm-up and the end.
RSS_GROWTH_BOUND_KIB = 16 * 1024


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def worker_pids(master: int) -> list[int]:
    from scratch_server import _parent

    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == master)


def deadlocks(conn: psycopg.Connection) -> int:
    return conn.execute("select deadlocks from pg_stat_database where datname = current_database()").fetchone()[0]


def test_soak_of_mixed_writes_and_reads(db_url, conn, tmp_path):
    students, courses = seed(conn)
    families = []
    for n in range(0, len(students), 2):
        guardian = add_guardian(conn, f"g{n}@example.org", students[n], students[n + 1])
        token = conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0]
        families.append((token, students[n : n + 2]))
    deadlocks_before = deadlocks(conn)

    port = free_port()
    # The log goes to a file: a pipe read only at the end would fill up and stall every worker.
    log_path = tmp_path / "server.log"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with open(log_path, "w") as log_file:
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
                "4",
                "--max-requests",
                "0",
            ],  # no recycling: a leak must show
            env={
                **os.environ,
                "DATABASE_URL": db_url,
                "WEEKLY_TRENDS_SECRET_KEY": "soak",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            },
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    read_errors: list[str] = []
    reads = [0]

    def reader(seed_: int) -> None:
        rng = random.Random(seed_)
        while not stop.is_set():
            token, children = rng.choice(families)
            child = rng.choice(children)
            path, want = rng.choice(
                [
                    (f"/api/v1/students/{child}/weekly-trend?weeks=8&end=2025-02-02", 200),
                    (f"/api/v1/students/{child}/weekly-trend.csv?end=2025-01-26", 200),
                    ("/api/v1/me/students", 200),
                    (f"/students/{child}?end=2025-02-02", 200),
                    (f"/api/v1/students/{rng.choice([s for s in students if s not in children])}/weekly-trend", 404),
                ]
            )
            request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
                    response.read()
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError as error:
                status = repr(error)
            reads[0] += 1
            if status != want:
                read_errors.append(f"{path}: {status}")

    try:
        wait_until_up(base)
        writers = start_writers(db_url, students, courses, stop)
        readers = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(4)]
        for thread in readers:
            thread.start()
        time.sleep(WARM_UP_SECONDS)
        pids = worker_pids(server.pid)
        assert len(pids) == 2
        after_warm_up = {pid: rss_kib(pid) for pid in pids}
        time.sleep(max(0.0, SOAK_SECONDS - WARM_UP_SECONDS))
        at_end = {pid: rss_kib(pid) for pid in worker_pids(server.pid) if pid in after_warm_up}
        stop.set()
        for thread in [*writers, *readers]:
            thread.join(60)
    finally:
        stop.set()
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    server_log = log_path.read_text()

    print(
        f"soak {SOAK_SECONDS:.0f} s: {reads[0]} reads, {sum(w.statements for w in writers)} write statements;"
        f" worker RSS KiB after warm-up {after_warm_up}, at the end {at_end}"
    )
    assert read_errors == [], f"{len(read_errors)} of {reads[0]} reads failed: {read_errors[:10]}\n{server_log[-3000:]}"
    assert reads[0] > 500 and sum(w.statements for w in writers) > 500
    assert [e for w in writers for e in w.errors] == []
    assert '"level": "ERROR"' not in server_log
    assert at_end, "the workers were replaced during the soak"
    for pid, rss in at_end.items():
        assert rss - after_warm_up[pid] < RSS_GROWTH_BOUND_KIB, f"worker {pid}: {after_warm_up[pid]} -> {rss} KiB"
    assert_committed_rows_present(conn, writers)
    assert_exact(conn)
    time.sleep(1.5)  # statistics reach pg_stat_database within a second
    assert deadlocks(conn) == deadlocks_before
