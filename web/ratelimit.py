"""429 for a client address after repeated failed authentication.

Kept in process, per worker: a sliding window of failure times per address.
With N workers an address gets at most N x the limit before every worker
refuses it; enough to stop guessing (a token has 244 random bits) without a
shared store. Behind a reverse proxy, make request.remote_addr the client's
address (werkzeug's ProxyFix), or every client shares the proxy's.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from flask import current_app, request

from web.problems import ProblemError

_EXTENSION_KEY = "weekly_trends_auth_failures"


class FailureWindow:
    """Failure times per key within the last `window` seconds; locked out at `limit` of them."""

    # Addresses tracked at most: a flood of spoofed ones cannot grow memory without bound.
    MAX_KEYS = 100_000

    def __init__(self, limit: int, window: float, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it is not locked out."""
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if len(times) < self.limit:
                return 0
            # Locked out until enough failures leave the window to bring it under the limit.
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def record(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if key not in self._failures and len(self._failures) >= self.MAX_KEYS:
                self._failures.pop(next(iter(self._failures)))  # the oldest-inserted address
            times.append(now)
            self._failures[key] = times


def init_app(app) -> None:
    app.extensions[_EXTENSION_KEY] = FailureWindow(app.config["AUTH_FAILURE_LIMIT"], app.config["AUTH_FAILURE_WINDOW"])


def _window() -> FailureWindow:
    return current_app.extensions[_EXTENSION_KEY]


def _client() -> str:
    return request.remote_addr or "unknown"


def refuse_if_locked_out() -> None:
    seconds = _window().retry_after(_client())
    if seconds:
        raise ProblemError(
            429,
            "Too Many Requests",
            "Too many failed sign-in attempts from this address. Try again later.",
            {"Retry-After": str(seconds)},
        )


def record_failure() -> None:
    _window().record(_client())
