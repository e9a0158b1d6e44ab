"""`weekly-trends serve`: the app under gunicorn, with defaults sized from the machine."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from gunicorn.app.base import BaseApplication

from web.settings import Settings, cores


def default_options(bind: str, workers: int | None, threads: int, timeout: int, max_requests: int) -> dict:
    return {
        "bind": bind,
        # Requests mostly wait on PostgreSQL: a worker per core plus one, each with a few threads.
        "workers": workers or cores() + 1,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": timeout,
        "graceful_timeout": timeout,
        "keepalive": 5,
        # Recycle workers now and then (0: never), jittered so they do not all restart at once.
        "max_requests": max_requests,
        "max_requests_jitter": max_requests // 10,
        # The app logs one JSON access line per request, with its request id.
        "accesslog": None,
        "logconfig_dict": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": "web.observability.JsonFormatter"}},
            "filters": {
                "redact_tokens": {"()": "web.settings.RedactTokens"},
                "server_request_lines": {"()": "web.observability.ServerRequestLines"},
            },
            # The root's one JSON handler, named so that the app's configure_logging() adds no second one
            # (every line was written twice): the name is web.observability.JSON_HANDLER_NAME.
            "handlers": {
                "weekly_trends_json": {
                    "class": "logging.StreamHandler",
                    "formatter": "json",
                    "filters": ["redact_tokens", "server_request_lines"],
                }
            },
            # Every key replaces gunicorn's default of the same name: root and both loggers are named here.
            "root": {"level": "INFO", "handlers": ["weekly_trends_json"]},
            "loggers": {
                "gunicorn.error": {"handlers": ["weekly_trends_json"], "level": "INFO", "propagate": False},
                # Without the request id: the app writes its own access line (weekly_trends.access).
                "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            },
        },
        "child_exit": _child_exit,
        # One shared path per user: two servers on a machine would fight over it.
        "control_socket_disable": True,
    }


def _child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # its live gauges leave the sums


def fresh_app_modules() -> None:
    """Forget every web.* module this process imported, so that the next import reads the code on disk.

    Run in each worker as it loads the app: the master imported web.* (the CLI, the settings' checks) when
    it started, and a worker forked after `kill -HUP` would otherwise inherit that code, not the release
    installed since (an upgrade's workers then ran the old app against the new schema and settings)."""
    for name in [name for name in sys.modules if name == "web" or name.startswith("web.")]:
        del sys.modules[name]


class WeeklyTrendsServer(BaseApplication):
    def __init__(self, options: dict, settings: Settings, overrides: dict | None = None):
        self.options = options
        # Checked by the CLI before the master started (a bad one stops `serve` there). Each worker checks
        # the environment again with the code it runs (after a HUP, the new release's), with `overrides`
        # (by app.config key) over it: what `serve` decided (the database, the pool's size).
        self.settings = settings
        self.overrides = overrides or {}
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # control_socket_disable is new in gunicorn 24
                self.cfg.set(key, value)

    def load(self):
        # In the worker, after the fork: the app's code as installed now (never the master's copy).
        fresh_app_modules()
        from web import create_app
        from web.settings import Settings

        return create_app(config=Settings.load(overrides=self.overrides))


def serve(
    settings: Settings,
    bind: str,
    workers: int | None,
    threads: int,
    timeout: int,
    max_requests: int,
    pidfile: str | None = None,
) -> None:
    """gunicorn; pidfile: where the master writes its pid (for `kill -HUP`, the roll-out)."""
    # Each worker's pool needs at most one connection per thread (unless WEEKLY_TRENDS_POOL_MAX_SIZE says).
    if settings.pool_max_size is None:
        settings = settings.replace(pool_max_size=threads, pool_min_size=min(settings.pool_min_size, threads))
    overrides = {
        "DATABASE_URL": settings.database_url,  # the embedded server's, when the CLI started one
        "POOL_MAX_SIZE": settings.pool_max_size,
        "POOL_MIN_SIZE": settings.pool_min_size,
    }
    options = default_options(bind, workers, threads, timeout, max_requests)
    if pidfile is not None:
        options["pidfile"] = pidfile
    # Set before any worker imports prometheus_client: /metrics then sums every worker.
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        for stale in metrics_dir.glob("*.db"):  # a previous run's figures would be summed in
            stale.unlink()
    else:
        metrics_dir = Path(tempfile.mkdtemp(prefix="weekly-trends-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        # The master removes the directory it made when it exits (workers never run this hook).
        options["on_exit"] = lambda server: shutil.rmtree(metrics_dir, ignore_errors=True)
    logging.captureWarnings(True)
    WeeklyTrendsServer(options, settings, overrides).run()
