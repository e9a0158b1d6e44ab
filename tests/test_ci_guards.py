"""CI cannot skip a pass silently: the server is the one chosen (or the session stops), a missing
browser fails under CI=true, and .ci/run forces each pass's server with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from web.ops.embedded import PROJECT_ROOT

INHERITED = (
    "CI",
    "WEEKLY_TRENDS_TEST_SERVER",
    "WEEKLY_TRENDS_TEST_SERVER_VERSION",
    "TEST_DATABASE_URL",
    "DATABASE_URL",
    "WEEKLY_TRENDS_CHROMIUM",
)


def pytest_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    """A pytest session of its own, in an environment stripped of the settings under test."""
    clean = {k: v for k, v in os.environ.items() if k not in INHERITED and not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=PROJECT_ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_under_ci_an_unchosen_server_stops_the_session():
    result = pytest_run("tests/test_chart.py", CI="true", TEST_DATABASE_URL="postgresql://inherited.invalid/x")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout
    assert "set WEEKLY_TRENDS_TEST_SERVER" in result.stdout + result.stderr


def test_an_unknown_choice_stops_the_session():
    result = pytest_run("tests/test_chart.py", WEEKLY_TRENDS_TEST_SERVER="sqlite")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "must be one of embedded, url, docker" in result.stdout + result.stderr


def test_an_explicit_embedded_choice_ignores_an_inherited_url():
    result = pytest_run(
        "tests/test_chart.py",
        CI="true",
        WEEKLY_TRENDS_TEST_SERVER="embedded",
        TEST_DATABASE_URL="postgresql://inherited.invalid/x",
    )
    assert result.returncode == 0, result.stdout
    assert "weekly-trends test server: embedded (CI)" in result.stdout


def test_url_without_a_url_fails_instead_of_falling_back():
    result = pytest_run(
        "tests/test_migrations.py::test_migrations_honour_database_url", WEEKLY_TRENDS_TEST_SERVER="url"
    )
    assert result.returncode != 0
    assert "TEST_DATABASE_URL is not set" in result.stdout + result.stderr


def test_a_wrong_server_version_stops_the_session(server_url):
    result = pytest_run(
        "tests/test_migrations.py::test_migrations_honour_database_url",
        WEEKLY_TRENDS_TEST_SERVER="url",
        TEST_DATABASE_URL=server_url,
        WEEKLY_TRENDS_TEST_SERVER_VERSION="9",
    )
    assert result.returncode != 0
    assert "WEEKLY_TRENDS_TEST_SERVER_VERSION=9 but the url server is PostgreSQL" in result.stdout + result.stderr


def test_under_ci_a_missing_browser_fails_and_outside_ci_it_skips():
    in_ci = pytest_run(
        "tests/test_browser.py",
        CI="true",
        WEEKLY_TRENDS_TEST_SERVER="embedded",
        WEEKLY_TRENDS_CHROMIUM="/nonexistent/chromium",
    )
    assert (
        in_ci.returncode != 0 and "CI=true" in in_ci.stdout and "no Chromium at /nonexistent/chromium" in in_ci.stdout
    )
    outside = pytest_run(
        "tests/test_browser.py",
        "-rs",
        WEEKLY_TRENDS_CHROMIUM="/nonexistent/chromium",
        WEEKLY_TRENDS_TEST_SERVER="embedded",
    )
    assert outside.returncode == 0 and " skipped" in outside.stdout and " passed" not in outside.stdout


def test_under_ci_the_digests_browser_test_fails_without_chromium_and_outside_ci_it_skips():
    args = ("tests/test_digest.py", "-k", "renders_in_chromium", "-rs")
    in_ci = pytest_run(
        *args, CI="true", WEEKLY_TRENDS_TEST_SERVER="embedded", WEEKLY_TRENDS_CHROMIUM="/nonexistent/chromium"
    )
    assert in_ci.returncode != 0 and "2 failed" in in_ci.stdout, in_ci.stdout[-2000:]
    assert "CI=true" in in_ci.stdout and "no Chromium at /nonexistent/chromium" in in_ci.stdout
    outside = pytest_run(*args, WEEKLY_TRENDS_CHROMIUM="/nonexistent/chromium", WEEKLY_TRENDS_TEST_SERVER="embedded")
    assert outside.returncode == 0 and "2 skipped" in outside.stdout and " passed" not in outside.stdout


def test_ci_run_forces_each_pass_and_unsets_inherited_settings():
    script = (PROJECT_ROOT / ".ci" / "run").read_text()
    unset = next(line.split()[1:] for line in script.splitlines() if line.startswith("unset "))
    assert {"TEST_DATABASE_URL", "DATABASE_URL", "DATABASE_READ_URL", "WEEKLY_TRENDS_TEST_SERVER"} <= set(unset)
    assert 'PG*|WEEKLY_TRENDS_*) unset "$name"' in script
    assert "export CI=true" in script
    assert "WEEKLY_TRENDS_TEST_SERVER=embedded WEEKLY_TRENDS_TEST_SERVER_VERSION=18 make test" in script
    assert "WEEKLY_TRENDS_TEST_SERVER=url WEEKLY_TRENDS_TEST_SERVER_VERSION=15" in script
