"""`weekly-trends serve` as an operator runs it (issue 24): one log line per event, /healthz naming each
database with its state, and `kill -HUP` starting workers on the code installed since."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from web import create_app
from web.db import close_pool

from live import free_port, wait_until_up

PACKAGE = Path(__file__).resolve().parent.parent / "web"
DOWN = "postgresql://nobody@/nodb?host=/nonexistent-socket-dir"  # a server that is not running


def start_serve(db_url: str, log_path: Path, cwd: Path | None = None, workers: int = 1) -> tuple:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "WEEKLY_TRENDS_SECRET_KEY": "s",
        "WEEKLY_TRENDS_LOG_FORMAT": "json",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if cwd is not None:
        env["PYTHONPATH"] = str(cwd)  # the copy's web package, before the installed one
    command = [sys.executable, "-m", "web.ops.cli", "serve", "--bind", f"127.0.0.1:{port}"]
    with open(log_path, "w") as log_file:  # a file, not a pipe: a full pipe would stall the workers
        server = subprocess.Popen(
            [*command, "--workers", str(workers), "--threads", "2"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, timeout=60)
    except AssertionError:
        server.kill()
        server.wait(30)
        raise AssertionError(log_path.read_text()) from None
    return server, base


def stop(server) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(30)


def test_one_request_gives_exactly_one_access_log_line_under_serve(db_url, tmp_path):
    log_path = tmp_path / "server.log"
    server, base = start_serve(db_url, log_path)
    try:
        request = urllib.request.Request(base + "/healthz", headers={"X-Request-ID": "one-line-please"})
        urllib.request.urlopen(request, timeout=10).close()
    finally:
        stop(server)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    mine = [line for line in lines if line["request_id"] == "one-line-please"]
    assert [line["logger"] for line in mine] == ["weekly_trends.access"]
    booting = [line for line in lines if "Booting worker" in line["message"]]
    assert len(booting) == 1  # the master's lines once too


def healthz(app) -> tuple[int, dict, dict]:
    response = app.test_client().get("/healthz")
    return response.status_code, response.get_json(force=True), response.headers


@pytest.mark.parametrize(
    ("primary", "standby", "status", "states"),
    [
        ("db", None, 200, {"primary": "up"}),
        ("db", "db", 200, {"primary": "up", "standby": "up"}),
        # The primary down, the standby up: sign-in, staff and the access log's writes fail.
        (DOWN, "db", 503, {"primary": "down", "standby": "up"}),
        # The standby down: the parents' reads fail (they do not fall back to the primary).
        ("db", DOWN, 503, {"primary": "up", "standby": "down"}),
    ],
)
def test_healthz_names_each_database_with_its_state(db_url, primary, standby, status, states):
    config = {"DATABASE_URL": db_url if primary == "db" else primary, "SECRET_KEY": "k", "POOL_OPEN_TIMEOUT": 1}
    if standby is not None:
        config["DATABASE_READ_URL"] = db_url if standby == "db" else standby
    app = create_app(config)
    try:
        code, body, headers = healthz(app)
    finally:
        close_pool(app)
    assert code == status
    assert {name: state["state"] for name, state in body["databases"].items()} == states
    if status == 503:
        assert headers["Retry-After"] == "30" and headers["Content-Type"] == "application/problem+json"
        down = [name for name, state in states.items() if state == "down"]
        assert body["detail"] == f"The database does not answer: {', '.join(down)}."
        assert body["databases"][down[0]]["error"]
    else:
        assert body["status"] == "ok"


def test_hup_starts_workers_on_the_code_installed_since(db_url, tmp_path):
    """An upgrade's roll-out: the package is replaced under a running `serve`, `kill -HUP` of the master,
    and the new workers answer with the new code (the master's imports are not inherited)."""
    copy = tmp_path / "release"
    shutil.copytree(PACKAGE, copy / "web", ignore=shutil.ignore_patterns("__pycache__"))
    log_path = tmp_path / "server.log"
    server, base = start_serve(db_url, log_path, cwd=copy, workers=2)
    try:
        assert "X-Release" not in urllib.request.urlopen(base + "/healthz", timeout=10).headers
        init = copy / "web" / "__init__.py"
        text = init.read_text()
        marker = '        response.headers.setdefault("X-Content-Type-Options", "nosniff")\n'
        assert marker in text
        init.write_text(text.replace(marker, marker + '        response.headers["X-Release"] = "next"\n'))
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
                    seen.append(response.headers.get("X-Release"))
            except (urllib.error.URLError, ConnectionError):
                seen.append("error")
            if seen[-4:] == ["next"] * 4:  # every worker: the old ones are gone
                break
            time.sleep(0.25)
        assert seen[-4:] == ["next"] * 4, f"after HUP: {seen[-12:]}\n{log_path.read_text()[-3000:]}"
        assert server.poll() is None  # the same master
    finally:
        stop(server)
