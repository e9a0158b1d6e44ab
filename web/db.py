"""One psycopg connection pool per process, opened on first use (after a pre-fork server forks)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from flask import Flask, current_app
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .embedded import database_url

_EXTENSION_KEY = "weekly_trends_pool"


def init_app(app: Flask) -> None:
    app.extensions[_EXTENSION_KEY] = None


def _pool() -> ConnectionPool:
    app = current_app
    entry = app.extensions.get(_EXTENSION_KEY)
    # A pool inherited across fork() would share sockets with the parent.
    if entry is None or entry[0] != os.getpid():
        url = app.config["DATABASE_URL"] or database_url()
        pool = ConnectionPool(
            url,
            min_size=app.config["POOL_MIN_SIZE"],
            max_size=app.config["POOL_MAX_SIZE"],
            kwargs={"row_factory": dict_row, "autocommit": True, "application_name": "weekly-trends-web"},
            check=ConnectionPool.check_connection,
            open=False,
            name="weekly-trends",
        )
        pool.open(wait=True, timeout=app.config["POOL_OPEN_TIMEOUT"])  # a bad DSN fails here, loudly
        entry = (os.getpid(), pool)
        app.extensions[_EXTENSION_KEY] = entry
    return entry[1]


@contextmanager
def _as_role(config_key: str) -> Iterator[psycopg.Connection]:
    """A connection in a transaction running as the role named by the app setting config_key."""
    with _pool().connection() as conn, conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(current_app.config[config_key])))
        yield conn


def reader() -> Iterator[psycopg.Connection]:
    """As the read-only role of the parents' side."""
    return _as_role("READER_ROLE")


def staff() -> Iterator[psycopg.Connection]:
    """As the staff pages' role: their reads, and refresh_weekly_performance()."""
    return _as_role("STAFF_ROLE")


def close_pool(app: Flask) -> None:
    entry = app.extensions.get(_EXTENSION_KEY)
    if entry is not None and entry[0] == os.getpid():
        entry[1].close()
    app.extensions[_EXTENSION_KEY] = None
