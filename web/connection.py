"""How every connection to PostgreSQL is opened: the web's pools (web/db.py) and the CLI's (connect()).

Each connection gets (a value the URL sets itself wins):
- connect_timeout (5 s): a server that accepts no connection fails the attempt instead of hanging it;
- TCP keepalives and tcp_user_timeout: a connection to a remote server whose host or network went
  silent breaks within about 25 s instead of never (libpq applies them to TCP only, and a kernel
  answers for a stopped server on its own machine: the web's requests also have the watchdog below);
- no server-side prepared statements (prepare_threshold=None): every connection works through a
  transaction-mode pooler such as PgBouncer, where the next transaction may run on another server
  connection (docs/operations.md; the cost, measured: docs/benchmarks.md);
- the CLI's: statement_timeout (WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT, default 600 s, 0: none) as a
  startup option, unless WEEKLY_TRENDS_DB_POOLER=transaction (PgBouncer refuses startup options).
  The web's requests set theirs in each transaction (web/db.py), which works behind a pooler too.

The watchdog: statement_timeout is enforced by the server, so a server that stopped (SIGSTOP, a frozen
VM, a host whose kernel still answers) never ends the query, and the client waits on the socket for as
long. guard(conn, seconds) shuts the connection's socket down when the block still runs after that
long: the query waiting on it fails at once (DatabaseTimeout, an OperationalError: a 503), and the
connection is closed, so its pool drops it.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic

import psycopg
from psycopg.conninfo import conninfo_to_dict

CONNECT_TIMEOUT = 5  # seconds; libpq's whole-second setting
# A silent peer: probes after 10 s idle, every 5 s, 3 unanswered break it; unacknowledged data, after 25 s.
TCP = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
       "tcp_user_timeout": 25_000}
POOLERS = ("none", "transaction")
CLI_STATEMENT_TIMEOUT = 600.0


class DatabaseTimeout(psycopg.OperationalError):
    """The database did not answer within the bound: the watchdog cut the connection."""


def pooler() -> str:
    """WEEKLY_TRENDS_DB_POOLER: 'none' (connections go to PostgreSQL itself) or 'transaction' (through a
    transaction-mode pooler such as PgBouncer: no startup options)."""
    value = os.environ.get("WEEKLY_TRENDS_DB_POOLER", "none").strip().lower() or "none"
    if value not in POOLERS:
        raise ValueError(f"WEEKLY_TRENDS_DB_POOLER must be one of {', '.join(POOLERS)}, got {value!r}")
    return value


def seconds_setting(name: str, default: float, *, zero_allowed: bool = False, most: float = 86_400) -> float:
    """A number of seconds from the environment, checked: positive (or 0 when allowed), at most `most`."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    return check_seconds(name, value, zero_allowed=zero_allowed, most=most, raw=raw)


def check_seconds(name: str, value: object, *, zero_allowed: bool = False, most: float = 86_400, raw: object = None) -> float:
    low = 0 if zero_allowed else 0.1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= most):
        shown = raw if raw is not None else value
        raise ValueError(f"{name} must be a number of seconds from {low:g} to {most:g}"
                         f"{' (0: none)' if zero_allowed else ''}, got {shown!r}")
    return float(value)


def connection_kwargs(url: str, application_name: str, *, statement_timeout: float | None = None) -> dict:
    """psycopg.connect()'s keyword arguments for url (see the module's text); statement_timeout in seconds."""
    given = conninfo_to_dict(url)
    kwargs: dict = {"connect_timeout": CONNECT_TIMEOUT, **TCP, "application_name": application_name}
    kwargs = {key: value for key, value in kwargs.items() if key not in given}
    if statement_timeout and "options" not in given and pooler() != "transaction":
        kwargs["options"] = f"-c statement_timeout={round(statement_timeout * 1000)}"
    kwargs["prepare_threshold"] = None
    return kwargs


def connect(application_name: str, url: str | None = None, **kwargs) -> psycopg.Connection:
    """An autocommit connection of the CLI: DATABASE_URL (else the embedded server) unless url is given."""
    if url is None:
        from .embedded import database_url

        url = database_url()
    timeout = seconds_setting("WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT", CLI_STATEMENT_TIMEOUT, zero_allowed=True)
    return psycopg.connect(url, autocommit=True, **connection_kwargs(url, application_name, statement_timeout=timeout),
                           **kwargs)


class Watchdog:
    """One thread per process (started on first use, again after a fork) that shuts down the socket of
    a connection still guarded past its deadline."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._reset)  # the parent's thread and lock are not the child's

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, psycopg.Connection]] = {}
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, conn: psycopg.Connection, seconds: float) -> Iterator[None]:
        """The block's use of conn ends within `seconds`: past it, the socket is shut down (conn is then
        closed and DatabaseTimeout raised in place of the error the cut caused)."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="weekly-trends-db-watchdog", daemon=True)
                self._thread.start()
            key = next(self._keys)
            self._due[key] = (monotonic() + seconds, conn)
            self._cond.notify()
        try:
            yield
        except BaseException as error:
            if self._disarm(key):
                conn.close()
                if isinstance(error, psycopg.Error):
                    raise DatabaseTimeout(f"the database did not answer within {seconds:.1f} s") from error
            raise
        if self._disarm(key):  # it fired as the block ended: the connection is no longer sound
            conn.close()

    def _disarm(self, key: int) -> bool:
        """Whether the watchdog fired for key."""
        with self._cond:
            return self._due.pop(key, None) is None

    def _run(self) -> None:
        with self._cond:
            while True:
                now = monotonic()
                for key, (deadline, conn) in list(self._due.items()):
                    if deadline <= now:
                        # Under the lock: the guarded thread cannot hand the connection back meanwhile.
                        del self._due[key]
                        shut_down(conn)
                nearest = min((deadline for deadline, _ in self._due.values()), default=None)
                self._cond.wait(None if nearest is None else max(nearest - now, 0.001))


def shut_down(conn: psycopg.Connection) -> None:
    """Shut down conn's socket (not its descriptor, which libpq still owns): a read waiting on it ends."""
    try:
        duplicate = socket.socket(fileno=os.dup(conn.pgconn.socket))
    except (OSError, psycopg.Error):
        return  # already closed
    try:
        duplicate.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        duplicate.close()


WATCHDOG = Watchdog()
