"""What operators see: a request id on every log line (JSON), and Prometheus metrics at /metrics.

The request id is the client's X-Request-ID when it is a sane token, else a
new one; it is echoed in the response. Metrics are per process; under
`weekly-trends serve` (several gunicorn workers) PROMETHEUS_MULTIPROC_DIR is
set and /metrics sums the workers' request figures.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import struct
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, abort, g, has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from web.settings import RedactTokens

REQUEST_ID_HEADER = "X-Request-ID"
# Echoed into logs and headers: only a short token of safe characters is taken as given.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_EXTENSION_KEY = "weekly_trends_metrics"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def request_id() -> str:
    return g.get("request_id", "-") if has_request_context() else "-"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (and the exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            # werkzeug colours some lines for a terminal; a JSON line has no terminal.
            "message": ANSI_ESCAPE.sub("", record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id(),
        }
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _install_record_factory() -> None:
    """Stamp each log record with the request id when it is made, in the request's thread:
    a handler may format it later, or elsewhere."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "stamps_request_id", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.request_id = request_id()
        return record

    factory.stamps_request_id = True
    logging.setLogRecordFactory(factory)


# The name of the root's JSON handler, whoever installed it: configure_logging(), or `weekly-trends serve`'s
# logging configuration in the gunicorn master (whose classes a worker that re-imported web.* does not share).
JSON_HANDLER_NAME = "weekly_trends_json"


class _JsonHandler(logging.StreamHandler):
    """Marks the handler configure_logging() installed, so that calling it again adds none."""


class ServerRequestLines(logging.Filter):
    """Drops the servers' own request lines (werkzeug's, gunicorn's): they are written after the
    request's context is gone, so without its id; the app's weekly_trends.access line replaces them."""

    def filter(self, record: logging.LogRecord) -> bool:
        # werkzeug logs f'{address} - - [{date}] "%s" %s %s' (the request line, status, size).
        werkzeug_line = record.name == "werkzeug" and str(record.msg).rstrip().endswith('"%s" %s %s')
        return not (werkzeug_line or record.name == "gunicorn.access")


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for every logger (the app's, werkzeug's, gunicorn's through the root)."""
    root = logging.getLogger()
    # One JSON handler on the root, or every line is written twice (under `serve`, gunicorn's
    # logging configuration installs it first).
    if not any(isinstance(h, _JsonHandler) or h.get_name() == JSON_HANDLER_NAME for h in root.handlers):
        handler = _JsonHandler()
        handler.set_name(JSON_HANDLER_NAME)
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RedactTokens())
        handler.addFilter(ServerRequestLines())
        root.addHandler(handler)
    root.setLevel(level)


class PoolCollector:
    """Pool size and waits from psycopg_pool's get_stats(), read at scrape time."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from web.db import pool_stats

        # A worker opens its pool on its first request: until then, an empty primary pool.
        stats = pool_stats(self.app) or {"primary": {}}
        for name, key, help_text in [
            ("weekly_trends_pool_size", "pool_size", "Connections in the pool (in use or idle)."),
            ("weekly_trends_pool_available", "pool_available", "Idle connections in the pool."),
            ("weekly_trends_pool_requests_waiting", "requests_waiting", "Requests waiting for a connection now."),
            (
                "weekly_trends_pool_requests_waits_total",
                "requests_waits",
                "Requests that had to wait for a connection.",
            ),
            (
                "weekly_trends_pool_requests_wait_ms_total",
                "requests_wait_ms",
                "Milliseconds requests spent waiting for a connection.",
            ),
            (
                "weekly_trends_pool_requests_errors_total",
                "requests_errors",
                "Requests that failed to get a connection.",
            ),
        ]:
            family = GaugeMetricFamily(name, help_text + " Per worker process.", labels=["pool", "pid"])
            for pool_name, values in stats.items():
                family.add_metric([pool_name, str(os.getpid())], values.get(key, 0))
            yield family


def metrics_networks(raw: str | None) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """METRICS_ALLOW_FROM: comma-separated addresses or CIDR networks (empty: none)."""
    try:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in (raw or "").split(",") if part.strip()]
    except ValueError as error:
        raise ValueError(f"WEEKLY_TRENDS_METRICS_ALLOW_FROM: {error}") from None


def metrics_reader_allowed(app: Flask) -> bool:
    """The scraper presents METRICS_TOKEN as a bearer token, or comes from a METRICS_ALLOW_FROM network."""
    token = app.config.get("METRICS_TOKEN")
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in metrics_networks(app.config.get("METRICS_ALLOW_FROM")))


def init_app(app: Flask) -> None:
    metrics_networks(app.config.get("METRICS_ALLOW_FROM"))  # a bad setting fails at start, not at the first scrape
    _install_record_factory()
    # A registry per app: tests create many apps in one process.
    registry = CollectorRegistry(auto_describe=True)
    latency = Histogram(
        "weekly_trends_request_duration_seconds",
        "Request latency by endpoint.",
        ["method", "endpoint"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    )
    responses = Counter(
        "weekly_trends_responses",
        "Responses by endpoint and status.",
        ["method", "endpoint", "status"],
        registry=registry,
    )
    registry.register(PoolCollector(app))
    app.extensions[_EXTENSION_KEY] = registry
    access_log = logging.getLogger("weekly_trends.access")

    @app.before_request
    def start_request():
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = request_id()
        # The route pattern, not the path: one series per endpoint, not per student id.
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("request_started", time.perf_counter())
        latency.labels(request.method, endpoint).observe(elapsed)
        responses.labels(request.method, endpoint, str(response.status_code)).inc()
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response


def metrics_response(app: Flask) -> Response:
    """/metrics (web/operators.py): the scrape, for METRICS_TOKEN or METRICS_ALLOW_FROM only."""
    registry = app.extensions[_EXTENSION_KEY]
    if not metrics_reader_allowed(app):
        # Off unless configured, and the same 404 as an unknown path to everyone else.
        abort(404)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        body = generate_latest(registry)
    else:
        # Every worker's request figures, summed; the pool figures are this worker's.
        target = CollectorRegistry()
        MultiProcessCollector(target)
        target.register(PoolCollector(app))
        for attempt in range(3):
            try:
                body = generate_latest(target)
                break
            except struct.error:  # a worker starting just now has created its file, not yet sized it
                if attempt == 2:
                    raise
                time.sleep(0.05)
    return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
