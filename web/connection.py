"""How every connection to PostgreSQL is opened: the web's pools (web/db.py) and the CLI's (connect()).

Each connection gets (a value the URL sets itself wins):
- connect_timeout (5 s): a server that accepts no connection fails the attempt instead of hanging it;
- TCP keepalives and tcp_user_timeout: a connection to a remote server whose host or network went
  silent breaks within about 25 s instead of never (libpq applies them to TCP only, and a kernel
  answers for a stopped server on its own machine: the web's connections are also bounded below);
- no server-side prepared statements (prepare_threshold=None): every connection works through a
  transaction-mode pooler such as PgBouncer, where the next transaction may run on another server
  connection (docs/operations.md; the cost, measured: docs/benchmarks.md);
- the CLI's: statement_timeout (WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT, default 600 s, 0: none) as a
  startup option, unless WEEKLY_TRENDS_DB_POOLER=transaction (PgBouncer refuses startup options).
  The web's requests set theirs in each transaction (web/db.py), which works behind a pooler too.

The client's bound: statement_timeout is enforced by the server, so a server that stopped (SIGSTOP, a
frozen VM, a host whose kernel still answers) never ends the query, and the client would wait on the
socket for as long. BoundedConnection (the web's pools) stops waiting on any round trip after a bound
of its own, with psycopg's wait timeout: the query fails (DatabaseTimeout, an OperationalError: a 503)
and the connection is closed, so its pool drops it.
"""

from __future__ import annotations

import math
import os

import psycopg
from psycopg.conninfo import conninfo_to_dict

CONNECT_TIMEOUT = 5  # seconds; libpq's whole-second setting
# A silent peer: probes after 10 s idle, every 5 s, 3 unanswered break it; unacknowledged data, after 25 s.
TCP = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
       "tcp_user_timeout": 25_000}
POOLERS = ("none", "transaction")
CLI_STATEMENT_TIMEOUT = 600.0


class DatabaseTimeout(psycopg.OperationalError):
    """The database did not answer within the bound: the connection was closed."""


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


def check_cli_settings() -> None:
    """The connection settings the CLI reads, checked before a command runs (ValueError names the bad one)."""
    pooler()
    seconds_setting("WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT", CLI_STATEMENT_TIMEOUT, zero_allowed=True)


def connect(application_name: str, url: str | None = None, **kwargs) -> psycopg.Connection:
    """An autocommit connection of the CLI: DATABASE_URL (else the embedded server) unless url is given."""
    if url is None:
        from .embedded import database_url

        url = database_url()
    timeout = seconds_setting("WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT", CLI_STATEMENT_TIMEOUT, zero_allowed=True)
    return psycopg.connect(url, autocommit=True, **connection_kwargs(url, application_name, statement_timeout=timeout),
                           **kwargs)


class BoundedConnection(psycopg.Connection):
    """A connection whose every round trip to the server (a statement, a commit, the pool's check) ends
    within `round_trip_timeout` seconds (None: no bound). Past it, psycopg's wait stops (its own timeout),
    the connection is closed, its protocol state being unknown, and DatabaseTimeout is raised. The time
    between statements (a view's own work) is not counted: only waiting on the server is."""

    round_trip_timeout: float | None = None

    def wait(self, gen, *args, **kwargs):
        bound = self.round_trip_timeout
        if bound is None or args[1:] or kwargs.get("timeout") is not None:
            return super().wait(gen, *args, **kwargs)  # a caller's own timeout (notifies) stays its own
        try:
            return super().wait(gen, *args, **{**kwargs, "timeout": bound})
        except psycopg.errors._WaitTimeout as error:  # raised by psycopg's wait functions (psycopg 3.3)
            self.pgconn.finish()
            raise DatabaseTimeout(f"the database did not answer within {bound:g} s") from error


def bounded_connection_class(seconds: float) -> type[BoundedConnection]:
    """A BoundedConnection class whose round trips end within `seconds`."""
    return type("BoundedConnection", (BoundedConnection,), {"round_trip_timeout": seconds})
