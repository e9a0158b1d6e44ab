"""A real PgBouncer in transaction mode in front of the test server, for tests/test_pgbouncer.py.

Debian's /usr/sbin/pgbouncer (WEEKLY_TRENDS_PGBOUNCER names another binary), started by the test with its
own configuration in a temporary directory, listening on a free port of 127.0.0.1. PgBouncer refuses to
run as root: as root it runs as the owner of the server's socket directory (the embedded server's
`pgserver`, Debian's `postgres`), else as `postgres`. Missing, the tests skip, except under CI=true,
where they fail.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from live import free_port

BINARY = Path(os.environ.get("WEEKLY_TRENDS_PGBOUNCER", "/usr/sbin/pgbouncer"))


def run_as(server: dict) -> str | None:
    """The unprivileged user PgBouncer runs as (None: this process's own user, not root)."""
    if os.geteuid() != 0:
        return None
    host = server.get("host", "")
    if host.startswith("/"):
        owner = pwd.getpwuid(os.stat(host).st_uid).pw_name
        if owner != "root":
            return owner  # it may enter the socket's directory
    return "postgres"


class PgBouncer:
    """start() runs it; url(dbname) is the libpq URL of a database through it; stop() ends it."""

    def __init__(self, server_url: str, *, pool_size: int = 2):
        self.server = conninfo_to_dict(server_url)
        self.user = run_as(self.server)
        self.dir = Path(tempfile.mkdtemp(prefix="wt-pgbouncer-"))
        self.port = free_port()
        self.client_user = self.server.get("user") or "postgres"
        backend = {k: v for k, v in self.server.items() if k in ("host", "port", "user", "password") and v}
        backend.setdefault("user", self.client_user)
        # Every database of the test server, by the name the client asks for.
        target = " ".join(f"{k}={v}" for k, v in backend.items())
        (self.dir / "pgbouncer.ini").write_text(f"""\
[databases]
* = {target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir / "userlist.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
query_wait_timeout = 30
server_reset_query =
logfile = {self.dir / "pgbouncer.log"}
pidfile = {self.dir / "pgbouncer.pid"}
""")
        (self.dir / "userlist.txt").write_text(f'"{self.client_user}" ""\n')
        if self.user:
            for path in (self.dir, *self.dir.iterdir()):
                shutil.chown(path, self.user)
        self.process: subprocess.Popen | None = None

    def start(self) -> PgBouncer:
        self.process = subprocess.Popen(
            [str(BINARY), str(self.dir / "pgbouncer.ini")],
            user=self.user,
            cwd=self.dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}:\n{self.log()[-2000:]}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"pgbouncer did not start:\n{self.log()[-2000:]}")

    def url(self, dbname: str) -> str:
        return make_conninfo(host="127.0.0.1", port=str(self.port), user=self.client_user, dbname=dbname)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)
        shutil.rmtree(self.dir, ignore_errors=True)
