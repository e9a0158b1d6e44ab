"""`weekly-trends serve`: the app under gunicorn, with defaults sized from the machine."""

from __future__ import annotations

import logging
import os
import shutil
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
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
            # Every key replaces gunicorn's default of the same name: root and both loggers are named here.
            "root": {"level": "INFO", "handlers": ["stderr"]},
            "loggers": {
                "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
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


class WeeklyTrendsServer(BaseApplication):
    def __init__(self, options: dict, settings: Settings):
        self.options = options
        self.settings = settings  # checked by the CLI before the master started: every worker gets these
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # control_socket_disable is new in gunicorn 24
                self.cfg.set(key, value)

    def load(self):
        from web import create_app

        return create_app(config=self.settings)


def serve(settings: Settings, bind: str, workers: int | None, threads: int, timeout: int, max_requests: int) -> None:
    # Each worker's pool needs at most one connection per thread (unless WEEKLY_TRENDS_POOL_MAX_SIZE says).
    if settings.pool_max_size is None:
        settings = settings.replace(pool_max_size=threads, pool_min_size=min(settings.pool_min_size, threads))
    options = default_options(bind, workers, threads, timeout, max_requests)
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
    WeeklyTrendsServer(options, settings).run()
