"""How every connection to PostgreSQL is opened: the web's pools (web/db.py) and the CLI's (connect()).

Each connection gets (a value the URL sets itself wins):
- connect_timeout (5 s): a server that accepts no connection fails the attempt instead of hanging it;
- TCP keepalives and tcp_user_timeout: a connection to a remote server whose host or network went
  silent breaks within about 25 s instead of never (libpq applies them to TCP only, and a kernel
  answers for a stopped server on its own machine: the web's connections are also bounded below);
- no server-side prepared statements (prepare_threshold=None): every connection works through a
  transaction-mode pooler such as PgBouncer, where the next transaction may run on another server
  connection (docs/operations.md; the cost, measured: docs/benchmarks.md);
- the CLI's: the access settings (WEEKLY_TRENDS_RIGHTS_AGE, _STUDENT_ACCESS: guardian_link_state() reads
  them; unset, the database says 18 and eligible) and statement_timeout (Settings.cli_statement_timeout, WEEKLY_TRENDS_CLI_STATEMENT_TIMEOUT,
  default 600 s, 0: none) as a startup option, unless Settings.db_pooler is 'transaction'
  (WEEKLY_TRENDS_DB_POOLER; PgBouncer refuses startup options).
  The web's requests set theirs in each transaction (web/db.py), which works behind a pooler too.

The client's bound: statement_timeout is enforced by the server, so a server that stopped (SIGSTOP, a
frozen VM, a host whose kernel still answers) never ends the query, and the client would wait on the
socket for as long. BoundedConnection (the web's pools) stops waiting on any round trip after a bound
of its own, with psycopg's wait timeout: the query fails (DatabaseTimeout, an OperationalError: a 503)
and the connection is closed, so its pool drops it.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from web.settings import Settings

CONNECT_TIMEOUT = 5  # seconds; libpq's whole-second setting
# A silent peer: probes after 10 s idle, every 5 s, 3 unanswered break it; unacknowledged data, after 25 s.
TCP = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25_000,
}


class DatabaseTimeout(psycopg.OperationalError):
    """The database did not answer within the bound: the connection was closed."""


def connection_kwargs(
    url: str,
    application_name: str,
    *,
    statement_timeout: float | None = None,
    pooler: str = "none",
    access_options: dict[str, str] | None = None,
) -> dict:
    """psycopg.connect()'s keyword arguments for url (see the module's text); statement_timeout in seconds
    (as a startup option, so never through a transaction-mode pooler: pooler="transaction")."""
    given = conninfo_to_dict(url)
    kwargs: dict = {"connect_timeout": CONNECT_TIMEOUT, **TCP, "application_name": application_name}
    kwargs = {key: value for key, value in kwargs.items() if key not in given}
    if "options" not in given and pooler != "transaction":
        options = [f"-c {name}={value}" for name, value in (access_options or {}).items()]
        if statement_timeout:
            options.insert(0, f"-c statement_timeout={round(statement_timeout * 1000)}")
        if options:
            kwargs["options"] = " ".join(options)
    kwargs["prepare_threshold"] = None
    return kwargs


def connect(settings: Settings, application_name: str, url: str | None = None, **kwargs) -> psycopg.Connection:
    """An autocommit connection of the CLI: settings' DATABASE_URL (else the embedded server) unless url is given."""
    url = url or settings.database_url
    if url is None:  # the CLI's main() resolves it (the embedded server's) before a command runs
        raise RuntimeError("DATABASE_URL is not set")
    return psycopg.connect(
        url,
        autocommit=True,
        **connection_kwargs(
            url,
            application_name,
            statement_timeout=settings.cli_statement_timeout,
            pooler=settings.db_pooler,
            access_options=settings.access_options,
        ),
        **kwargs,
    )


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
