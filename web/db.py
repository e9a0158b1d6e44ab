"""psycopg connection pools, one per process, opened on first use (after a pre-fork server forks).

The primary pool serves everything by default. With DATABASE_READ_URL set (a
read replica), a second pool serves the parents' reads; what they write (the
access log) still goes to the primary.

A database that stops answering (down, frozen, unreachable) costs a request at most
POOL_TIMEOUT + STATEMENT_TIMEOUT + GRACE (1 s), then a 503: waiting for a connection is bounded by
POOL_TIMEOUT; each statement by STATEMENT_TIMEOUT (set in its transaction, enforced by the server);
and each round trip on the connection, the pool's check of it included, by STATEMENT_TIMEOUT + GRACE
on the client (web/connection.py's BoundedConnection), for a server that enforces nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from flask import Flask, current_app, request
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from web.connection import bounded_connection_class, connection_kwargs
from web.settings import NO_DATABASE_URL

_EXTENSION_KEY = "weekly_trends_pools"
PRIMARY, REPLICA = "primary", "replica"
# The setting the row-level security policies and log_access() read, and the role that may set it.
ROLE_OF_SETTING = {
    "app.guardian_id": "READER_ROLE",
    "app.student_id": "READER_ROLE",
    "app.staff_member_id": "STAFF_ROLE",
}
# Seconds after STATEMENT_TIMEOUT that a round trip the server has not answered is given up (the connection closed).
GRACE = 1.0


_DEFAULT_URL_KEY = "weekly_trends_default_database_url"


def init_app(app: Flask, default_url: Callable[[], str] | None = None) -> None:
    """Pools for app, opened on first use; default_url() gives the primary's URL when DATABASE_URL is
    unset (the app factory passes the embedded server's, which it starts only then)."""
    app.extensions[_EXTENSION_KEY] = None
    app.extensions[_DEFAULT_URL_KEY] = default_url


def _pools(app: Flask) -> dict[str, ConnectionPool]:
    entry = app.extensions.get(_EXTENSION_KEY)
    # Pools inherited across fork() would share sockets with the parent.
    if entry is None or entry[0] != os.getpid():
        entry = (os.getpid(), {})
        app.extensions[_EXTENSION_KEY] = entry
    return entry[1]


def primary_default_url(app: Flask) -> str:
    default_url = app.extensions.get(_DEFAULT_URL_KEY)
    if default_url is None:
        raise RuntimeError(NO_DATABASE_URL)
    return default_url()


def _pool(which: str = PRIMARY) -> ConnectionPool:
    app = current_app
    pools = _pools(app)
    if which == REPLICA and not app.config.get("DATABASE_READ_URL"):
        which = PRIMARY
    if which not in pools:
        url = (
            app.config["DATABASE_READ_URL"]
            if which == REPLICA
            else (app.config["DATABASE_URL"] or primary_default_url(app))
        )
        pool = ConnectionPool(
            url,
            min_size=app.config["POOL_MIN_SIZE"],
            max_size=app.config["POOL_MAX_SIZE"],
            kwargs={"row_factory": dict_row, "autocommit": True, **connection_kwargs(url, "weekly-trends-web")},
            connection_class=bounded_connection_class(app.config["STATEMENT_TIMEOUT"] + GRACE),
            check=ConnectionPool.check_connection,  # a round trip too: bounded likewise
            open=False,
            timeout=app.config["POOL_TIMEOUT"],  # then a 503 (web/problems.py), not a request that hangs
            name=f"weekly-trends-{which}",
        )
        pool.open(wait=True, timeout=app.config["POOL_OPEN_TIMEOUT"])  # a bad DSN fails here, loudly
        pools[which] = pool
    return pools[which]


@contextmanager
def _as_role(config_key: str, which: str = PRIMARY) -> Iterator[psycopg.Connection]:
    """A connection in a transaction running as the role named by the app setting config_key, its
    statements bounded by STATEMENT_TIMEOUT (see the module's text)."""
    config = current_app.config
    # Both settings are the transaction's own (set local): nothing outlives it on a pooler's connection.
    # And the access settings guardian_link_state() reads (WEEKLY_TRENDS_RIGHTS_AGE, _STUDENT_ACCESS), in the
    # same round trip.
    setup = sql.SQL("set local role {}; set local statement_timeout = {}; {}").format(
        sql.Identifier(config[config_key]),
        sql.Literal(max(1, round(config["STATEMENT_TIMEOUT"] * 1000))),
        sql.SQL(" ").join(
            sql.SQL("set local {} = {};").format(sql.Identifier(*name.split(".")), sql.Literal(value))
            for name, value in config["SETTINGS"].access_options.items()
        ),
    )
    with _pool(which).connection() as conn, conn.transaction():
        conn.execute(setup)
        yield conn


def reader() -> Iterator[psycopg.Connection]:
    """As the read-only role of the parents' side; on the read replica when one is configured."""
    return _as_role("READER_ROLE", REPLICA)


def reader_primary() -> Iterator[psycopg.Connection]:
    """As the parents' role on the primary: for what a parent saves (their language, their mail preference)."""
    return _as_role("READER_ROLE")


def staff() -> Iterator[psycopg.Connection]:
    """As the staff pages' role: their reads, and refresh_weekly_performance(). Always the primary."""
    return _as_role("STAFF_ROLE")


def serving_databases() -> list[tuple[str, str]]:
    """The databases the app serves from, as /healthz names them, with their pool: the primary, and the
    standby (DATABASE_READ_URL) when one is set."""
    return [("primary", PRIMARY)] + ([("standby", REPLICA)] if reads_on_replica() else [])


def check_database(which: str) -> None:
    """One round trip on a pooled connection of `which` (PRIMARY or REPLICA), within the pool's bounds;
    raises when the database cannot be reached."""
    with _pool(which).connection() as conn:
        conn.execute("select 1")


def reads_on_replica() -> bool:
    """Whether reader() connections go to a read replica, which takes no writes (the access log)."""
    return bool(current_app.config.get("DATABASE_READ_URL"))


def log_access(conn: psycopg.Connection, student_id: int, endpoint: str) -> None:
    """An access-log entry for the guardian or staff member conn's transaction acts for, in that
    transaction (a primary's: staff() connections, or reader() ones without a replica)."""
    conn.execute("select log_access(%s, %s)", (student_id, endpoint))


def log_access_on_primary(setting: str, owner_id: int, student_id: int, endpoint: str) -> None:
    """An access-log entry for a read made on the replica: in a transaction of the primary's, acting for
    owner_id (setting: app.guardian_id or app.staff_member_id)."""
    with _as_role(ROLE_OF_SETTING[setting]) as primary:
        primary.execute("select set_config(%s, %s, true)", (setting, str(owner_id)))
        primary.execute("select log_access(%s, %s)", (student_id, endpoint))


def pool_stats(app: Flask) -> dict[str, dict]:
    """get_stats() of this process's pools, by pool."""
    return {which: pool.get_stats() for which, pool in _pools(app).items()}


def close_pool(app: Flask) -> None:
    entry = app.extensions.get(_EXTENSION_KEY)
    if entry is not None and entry[0] == os.getpid():
        for pool in entry[1].values():
            pool.close()
    app.extensions[_EXTENSION_KEY] = None


def endpoint_name() -> str:
    return f"{request.method} {request.url_rule.rule}"


def log_read(conn: psycopg.Connection, student_id: int) -> None:
    """One access-log entry for this request's read of a student's figures, in conn's transaction:
    no figures leave without their entry."""
    log_access(conn, student_id, endpoint_name())


def guardian_children(conn: psycopg.Connection, guardian_id: int) -> list[dict]:
    """A guardian's children (id, display_name) whose link gives access now (guardian_link_states(), the one
    home of that decision: the rights age, sharing, a dependant's record, a restriction), by name: the one
    query of them in Python, for the
    parents' API (as the reader role, under row-level security), the digest and the invitations (as
    the owner). The parents' page reads the same list inside weekly_trend_json() (its "children")."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """
            select sp.id, sp.display_name
              from guardian_link_states(%s) gs
              join student_profile sp on sp.id = gs.student_profile_id
             where gs.gives_access
             order by sp.display_name, sp.id
            """,
            (guardian_id,),
        ).fetchall()


def student_guardians(conn: psycopg.Connection, student_id: int) -> list[dict]:
    """A student's linked guardians (id, email, display_name, preferred_language, and the link's state and
    whether it gives access now: student_link_states()), by email: the staff page's list and
    `weekly-trends invite --student-id`."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select g.id, g.email, g.display_name, g.preferred_language, s.state, s.gives_access"
            "  from student_link_states(%s) s join guardian g on g.id = s.guardian_id"
            " order by g.email, g.id",
            (student_id,),
        ).fetchall()
