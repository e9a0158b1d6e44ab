"""Read path over HTTP: the weekly-trend endpoint under gunicorn, loaded by wrk from a second process.

Against /healthz, the cheapest answer that touches the database (one `select 1` through the same pool
and role), on the same server and settings: the bar. Beside it /bench/ceiling (bench/wsgi.py), an
endpoint that reads no database: the stack's own ceiling, reported, not a bar.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

import psycopg

from .common import Check, Section, fmt_ratio, log
from .read import sample_students

WRK_SCRIPT = Path(__file__).with_name("wrk_trend.lua")
CLIENTS = 32
TARGET_THROUGHPUT = 0.5
TARGET_P99 = 2.0
ENDPOINTS = ("ceiling", "healthz", "trend")
# Measured (docs/benchmark-analysis.md): one round trip either way; the answer's SQL is the difference.
CPU_BOUND = (
    "both answers are one round trip through the same pool and role; weekly_trend_json() costs the"
    " database ~1 ms of CPU (authentication, link, access-log insert and commit, weeks, per-course weeks"
    " from the source rows, class averages, JSON) against `select 1`, on 2 cores shared with gunicorn"
    " and wrk"
)


def issue_tokens(conn: psycopg.Connection, students: list[int]) -> list[tuple[int, str]]:
    """A guardian per student, linked, with a fresh token each."""
    with conn.transaction():
        conn.execute(
            "insert into guardian (email) select 'parent.' || s || '@bench.example' from unnest(%s::bigint[]) s"
            " on conflict (email) do nothing",
            (students,),
        )
        conn.execute(
            "insert into guardian_student (guardian_id, student_profile_id)"
            " select g.id, s from unnest(%s::bigint[]) s join guardian g on g.email = 'parent.' || s || '@bench.example'"
            " on conflict do nothing",
            (students,),
        )
        return conn.execute(
            "select gs.student_profile_id, issue_guardian_token(gs.guardian_id)"
            "  from guardian_student gs join guardian g on g.id = gs.guardian_id"
            " where g.email like 'parent.%%@bench.example' and gs.student_profile_id = any(%s)"
            " order by 1",
            (students,),
        ).fetchall()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/bench/ceiling", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer in time")


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(entry.name))
    return pids


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_wrk(base: str, targets: Path, seconds: float, path: str, query: str) -> dict:
    env = os.environ | {"WT_BENCH_TARGETS": str(targets), "WT_BENCH_PATH": path, "WT_BENCH_QUERY": query}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CLIENTS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(WRK_SCRIPT), base],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    result = json.loads(line.removeprefix("WRKJSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return result


def skipped(reason: str) -> Section:
    return Section("http", "Read path: the HTTP endpoint", [], [], skipped=reason)


def run_http(admin: psycopg.Connection, url: str, args, end: date) -> Section:
    if shutil.which("wrk") is None:
        reason = (
            "wrk is not installed (`apt-get install -y wrk`; `make bench` installs it when it runs as root):"
            " the HTTP section was skipped."
        )
        log(reason)
        return skipped(reason)
    students = sample_students(args.students, args.http_students, seed=4)
    tokens = issue_tokens(admin, students)
    query = f"?end={end.isoformat()}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "DATABASE_URL": url,
        "WEEKLY_TRENDS_SECRET_KEY": "bench-only-secret",
        "WEEKLY_TRENDS_POOL_MAX_SIZE": str(args.http_threads),
        "WEEKLY_TRENDS_POOL_MIN_SIZE": str(args.http_threads),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(args.http_workers),
        "--threads",
        str(args.http_threads),
        "--worker-class",
        "gthread",
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "256",
        "--reuse-port",
        "--log-level",
        "warning",
        "bench.wsgi:app",
    ]
    runs: dict[str, list[dict]] = {path: [] for path in ENDPOINTS}
    with tempfile.TemporaryDirectory(prefix="wt-bench-http-") as tmp:
        targets = Path(tmp) / "targets.txt"
        targets.write_text("".join(f"{sid} {token}\n" for sid, token in tokens))
        log(
            f"http: gunicorn {args.http_workers} workers x {args.http_threads} threads (--reuse-port), wrk {CLIENTS}"
            f" clients, {args.rounds} rounds of {args.http_seconds:g} s per endpoint, {len(tokens):,} students"
        )
        server = subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parent.parent)
        try:
            wait_until_up(base, server)
            # Warm-up: every worker opens its pool and its connections prepare.
            for path in ENDPOINTS:
                run_wrk(base, targets, min(3, args.http_seconds), path, query)
            # The endpoints alternate over the rounds (ABC, CBA, ...): a burst of load from the other
            # agents on this machine, or an uneven split of wrk's connections, hits each alike.
            for r in range(args.rounds):
                for path in ENDPOINTS if r % 2 == 0 else ENDPOINTS[::-1]:
                    runs[path].append(run_wrk(base, targets, args.http_seconds, path, query))
                    x = runs[path][-1]
                    log(
                        f"http round {r + 1}/{args.rounds} {path}: {x['rps']:,.0f} req/s, p50 {x['p50_us'] / 1000:.1f}"
                        f" ms, p99 {x['p99_us'] / 1000:.1f} ms, {x['errors']} errors"
                    )
            workers = worker_pids(server.pid)
            rss = sorted((peak_rss_mib(pid) for pid in workers), reverse=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    results = {path: combined(rs) for path, rs in runs.items()}
    c, h, t = results["ceiling"], results["healthz"], results["trend"]
    section = Section(
        "http",
        "Read path: the HTTP endpoint",
        [
            f"`gunicorn bench.wsgi:app --reuse-port` with {args.http_workers} workers x {args.http_threads} threads",
            "(gthread; one worker per core, threads to overlap database waits; each worker its own listening socket,",
            f"so the kernel spreads wrk's connections evenly), each worker's pool holding {args.http_threads} connections.",
            f"`wrk -t1 -c{CLIENTS}` in a second process (`bench/wrk_trend.lua`) spreads the requests over",
            f"{len(tokens):,} students, each with its parent's Bearer token:",
            f"`GET /api/v1/students/<id>/weekly-trend{query}` (6 weeks with data, courses and class averages).",
            "The bar is `GET /healthz` on the same server (one `select 1` through the same pool and role); the",
            "no-database ceiling `GET /bench/ceiling` (Flask, headers, JSON; bench-only) is shown beside it.",
            f"{args.rounds} rounds of {args.http_seconds:g} s per endpoint, the endpoints alternating (ABC, CBA, ...)",
            "after a 3 s warm-up of each; throughput over all rounds, p50 and p99 the median of the rounds'.",
            "Latency is wrk's (from the request's send).",
        ],
        ["endpoint", "requests/s", "p50", "p99", "errors", "ratio to /healthz", "ratio to the ceiling"],
    )
    for name, r in (("no-database ceiling", c), ("/healthz (select 1)", h), ("weekly-trend", t)):
        section.rows.append(
            [
                name,
                f"{r['rps']:,.0f}",
                f"{r['p50_us'] / 1000:,.1f} ms",
                f"{r['p99_us'] / 1000:,.1f} ms",
                str(r["errors"]),
                f"throughput {fmt_ratio(r['rps'] / h['rps'])}, p99 {fmt_ratio(r['p99_us'] / h['p99_us'])}",
                f"throughput {fmt_ratio(r['rps'] / c['rps'])}, p99 {fmt_ratio(r['p99_us'] / c['p99_us'])}",
            ]
        )
    section.notes.append(
        "Peak resident memory (VmHWM) of the web workers after the load: "
        + ", ".join(f"{m:,.0f} MiB" for m in rss)
        + "."
    )
    section.notes.append(
        "Each round (requests/s): "
        + "; ".join(f"{path} " + ", ".join(f"{x['rps']:,.0f}" for x in runs[path]) for path in ENDPOINTS)
        + "."
    )
    section.notes.append(
        f"Requests: ceiling {c['requests']:,}, /healthz {h['requests']:,}, weekly-trend"
        f" {t['requests']:,}; errors by kind (connect/read/write/status/timeout): weekly-trend"
        f" {t['connect']}/{t['read']}/{t['write']}/{t['status']}/{t['timeout']}."
    )
    section.checks += [
        Check(
            "http",
            "weekly-trend throughput / /healthz",
            t["rps"] / h["rps"],
            TARGET_THROUGHPUT,
            at_least=True,
            why=CPU_BOUND,
        ),
        Check(
            "http",
            "weekly-trend p99 / /healthz p99",
            t["p99_us"] / h["p99_us"],
            TARGET_P99,
            why=f"queueing of {CLIENTS} clients on {args.http_workers} x {args.http_threads} threads behind that CPU",
        ),
        Check("http", "weekly-trend errors", t["errors"], 0, unit="errors"),
    ]
    return section


def combined(rounds: list[dict]) -> dict:
    """One endpoint's rounds as one: requests over the total duration; p50 and p99 the median of the rounds'."""
    total = {
        key: sum(r[key] for r in rounds)
        for key in ("requests", "duration_us", "connect", "read", "write", "status", "timeout", "errors")
    }
    total["rps"] = total["requests"] / (total["duration_us"] / 1e6)
    for key in ("p50_us", "p99_us"):
        total[key] = statistics.median(r[key] for r in rounds)
    return total
