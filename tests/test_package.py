"""The package as a school installs it: the wheel, built from the source alone, installed in a virtualenv
outside the checkout, run from a directory of its own with only DATABASE_URL set, migrates a new database,
rolls back a revision and forward again, loads the demo school, writes the demo mail, checks and serves
(slow: some 30 s). Its files are the source's: migrations and their frozen SQL, templates, compiled
catalogs, static files, openapi.json."""

from __future__ import annotations

import json
import mailbox
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from pathlib import Path

import psycopg
import pytest

from web.ops.embedded import PROJECT_ROOT

from conftest import create_database, drop_database
from live import free_port, wait_until_up


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=240, **kwargs)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of what the package is made of (pyproject.toml, README.md, web/, db/), so nothing
    else in the checkout (a stale build/, a local .pgdata) can reach it. Offline: setuptools is in the
    test extra, hence --no-build-isolation."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    for name in ("web", "db"):
        shutil.copytree(PROJECT_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    pip_wheel = ("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", out, source)
    run(sys.executable, "-m", "pip", *pip_wheel)
    (built,) = out.glob("weekly_trends-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A virtualenv of its own with the wheel installed; the dependencies it reads from this one's
    site-packages (a .pth line, written after the install: no network, and pip never sees this
    environment's editable weekly-trends). The checkout's code stays out of reach: .pth files of a
    directory added that way are not run, so the editable install's finder is not."""
    directory = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", directory)
    python = directory / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)
    target = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (target / "weekly_trends_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return directory


@pytest.fixture
def workdir(tmp_path) -> Path:
    directory = tmp_path / "school"
    directory.mkdir()
    return directory


def environment(**settings: str) -> dict[str, str]:
    """This one's, without anything that would choose a database, a setting or a path for it."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WEEKLY_TRENDS_", "PG", "PYTHON", "DATABASE_", "MAIL", "SMTP_", "PUBLIC_BASE_URL"))
        and k not in ("SECRET_KEY", "VIRTUAL_ENV", "PORT")
    }
    return clean | settings


@pytest.mark.slow
def test_the_wheel_holds_the_migrations_templates_catalogs_and_openapi(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    source = [
        *(PROJECT_ROOT / "db" / "migrations").glob("*.py"),
        PROJECT_ROOT / "db" / "migrations" / "script.py.mako",
        *(PROJECT_ROOT / "db" / "migrations" / "versions").glob("*.py"),
        *(PROJECT_ROOT / "db" / "migrations" / "versions").glob("*/*.sql"),
        *(p for p in (PROJECT_ROOT / "web").rglob("*") if p.is_file() and "__pycache__" not in p.parts),
    ]
    missing = sorted(str(p.relative_to(PROJECT_ROOT)) for p in source if str(p.relative_to(PROJECT_ROOT)) not in names)
    assert not missing, f"not in the wheel: {missing}"
    # the kinds the app cannot run without, named: a glob above that matched nothing would hide them
    assert {"db/migrations/versions/0001_core.py", "db/migrations/versions/0001/000_core_schema.sql"} <= names
    assert {"db/__init__.py", "db/migrations/__init__.py", "db/migrations/env.py", "db/migrations/sqlfiles.py"} <= names
    assert "web/openapi.json" in names and "web/static/app.css" in names and "web/templates/base.html" in names
    assert {"web/translations/es/LC_MESSAGES/messages.mo", "web/translations/ar/LC_MESSAGES/messages.mo"} <= names
    assert any(n.startswith("web/templates/mail/") for n in names)


@pytest.mark.slow
def test_installed_outside_the_checkout_it_migrates_runs_its_commands_and_serves(venv, workdir, server_url):
    bin_dir = venv / "bin"
    # the code is the wheel's, not the checkout's
    where = run(
        bin_dir / "python",
        "-c",
        "import web, db.migrations.sqlfiles as s; print(web.__file__); print(s.__file__)",
        cwd=workdir,
        env=environment(),
    )
    assert all(line.startswith(str(venv)) for line in where.stdout.split()), where.stdout

    name = f"wt_package_{os.getpid()}"
    url = create_database(server_url, name)
    try:
        env = environment(DATABASE_URL=url)

        def cli(*args: str) -> subprocess.CompletedProcess:
            return run(bin_dir / "weekly-trends", *args, cwd=workdir, env=env)

        def revision() -> str:
            with psycopg.connect(url) as conn:
                return conn.execute("select version_num from alembic_version").fetchone()[0]

        head = max(p.name.split("_")[0] for p in (PROJECT_ROOT / "db/migrations/versions").glob("*.py"))
        migrated = cli("migrate")
        assert revision() == head and "Running upgrade  -> 0001" in migrated.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from pg_proc where proname = 'weekly_trend_json'").fetchone()[0]
        # a release rolled back and forward again: the previous revision's frozen SQL is in the wheel too
        previous = f"{int(head) - 1:04d}"
        cli("downgrade", previous)
        assert revision() == previous
        cli("migrate")
        assert revision() == head
        assert "Demo school loaded." in cli("demo-data").stdout
        # the demo mail renders the mail templates into the default maildir: the current directory's
        cli("demo-mail")
        assert len(mailbox.Maildir(workdir / "maildir", create=False)) >= 2
        assert "No drift" in cli("check").stdout
        assert "Refreshed" in cli("refresh", "--quiet").stdout
        assert "Dry run" in cli("backfill", "--dry-run").stdout
        # the embedded server's data, when no DATABASE_URL: the current directory's too (never started here)
        stopped = run(bin_dir / "weekly-trends", "stop-db", cwd=workdir, env=environment())
        assert str(workdir / ".pgdata") in stopped.stdout

        port = free_port()
        server = subprocess.Popen(
            [bin_dir / "weekly-trends", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base, timeout=60)
            with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
                assert response.status == 200
            with urllib.request.urlopen(base + "/api/openapi.json", timeout=10) as response:
                assert json.load(response)["paths"]["/healthz"]
            with urllib.request.urlopen(base + "/static/app.css", timeout=10) as response:
                assert response.status == 200 and response.read()
            # a page from a template, in a language of a compiled catalog
            request = urllib.request.Request(base + "/login", headers={"Accept-Language": "es"})
            with urllib.request.urlopen(request, timeout=10) as response:
                page = response.read().decode()
            assert response.status == 200 and 'lang="es"' in page and "Iniciar sesión" in page
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                _, err = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                _, err = server.communicate()
        assert server.returncode == 0, err[-3000:]
        # no WEEKLY_TRENDS_SECRET_KEY: the key Flask's instance folder keeps is the virtualenv's (README)
        assert (venv / "var" / "web-instance" / "secret_key").read_text().strip()
    finally:
        drop_database(server_url, name)


@pytest.mark.parametrize("command", ["migrate", "downgrade"])
def test_an_unknown_revision_is_a_message_and_exit_status_1(db_url, monkeypatch, capsys, command):
    from web.ops.cli import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main([command, "9999"]) == 1
    assert f"weekly-trends {command}:" in capsys.readouterr().err
