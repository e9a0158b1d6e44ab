"""What giving up server-side prepared statements costs (issue 22): the parents' answer, weekly_trend_json(),
through the app (in-process, its pool, its role and access log) over a direct connection, with psycopg's
default (a statement prepared on the server after 5 executions) and with prepare_threshold=None (what
every connection uses, so that a transaction-mode pooler works). Rounds alternate the two, so that a
drift of the machine falls on both.

    python -m bench.prepared [--students 40] [--rounds 10] [--requests 500]   # DATABASE_URL, else (WEEKLY_TRENDS_EMBEDDED_DB=1) the embedded server
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from web.ops.embedded import PROJECT_ROOT

from .common import log, recreate_database
from .report import PREPARED_SECTION, replace_section

MODES = {"prepared after 5 executions (psycopg's default)": 5, "no prepared statements (prepare_threshold=None)": None}


def seed(url: str, students: int) -> list[tuple[int, str]]:
    """Students with a school year of quizzes and assignments, one guardian each; their tokens."""
    rng = random.Random(22)
    start = datetime(2024, 9, 2, 8, tzinfo=UTC)
    families = []
    with psycopg.connect(url, autocommit=True) as conn:
        courses = [
            conn.execute("insert into course (name) values (%s) returning id", (f"C{n}",)).fetchone()[0]
            for n in range(4)
        ]
        for n in range(students):
            sid = conn.execute(
                "insert into student_profile (display_name, time_zone) values (%s, 'Europe/London') returning id",
                (f"S{n}",),
            ).fetchone()[0]
            gid = conn.execute(
                "insert into guardian (email) values (%s) returning id", (f"g{n}@example.org",)
            ).fetchone()[0]
            conn.execute("insert into guardian_student (guardian_id, student_profile_id) values (%s, %s)", (gid, sid))
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values (%s, %s, %s, %s)",
                    [
                        (
                            sid,
                            rng.choice(courses),
                            rng.randrange(40, 101),
                            start + timedelta(days=d, hours=rng.randrange(8)),
                        )
                        for d in range(0, 280, 2)
                    ],
                )
                cur.executemany(
                    "insert into assignment_submission (student_profile_id, course_id, percentage, is_graded, graded_at)"
                    " values (%s, %s, %s, true, %s)",
                    [
                        (sid, rng.choice(courses), rng.randrange(40, 101), start + timedelta(days=d))
                        for d in range(0, 280, 7)
                    ],
                )
            families.append((sid, conn.execute("select issue_guardian_token(%s)", (gid,)).fetchone()[0]))
    return families


def run(url: str, families: list[tuple[int, str]], rounds: int, requests: int) -> tuple[dict, dict]:
    """Per mode: the requests' seconds, and how many statements the server connection had prepared."""
    import logging
    import os

    os.environ["WEEKLY_TRENDS_LOG_FORMAT"] = "text"
    logging.getLogger("weekly_trends.access").setLevel(logging.WARNING)  # no line per request in the timing
    import web.db
    from web import create_app
    from web.connection import connection_kwargs
    from web.db import close_pool

    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    counts: dict[str, int] = {}
    rounds_p50: dict[str, list[float]] = {mode: [] for mode in MODES}
    for r in range(rounds):
        for mode, threshold in MODES.items() if r % 2 == 0 else reversed(MODES.items()):
            web.db.connection_kwargs = lambda *a, t=threshold, **k: {
                **connection_kwargs(*a, **k),
                "prepare_threshold": t,
            }
            app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "POOL_MIN_SIZE": 1, "POOL_MAX_SIZE": 1})
            client = app.test_client()
            try:
                for i in range(requests + 20):  # the first 20: warm-up (the pool, the plans, the preparing)
                    sid, token = families[i % len(families)]
                    started = time.perf_counter()
                    response = client.get(
                        f"/api/v1/students/{sid}/weekly-trend?end=2025-06-08&weeks=12",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    elapsed = time.perf_counter() - started
                    assert response.status_code == 200, response.get_data(as_text=True)
                    if i >= 20:
                        times[mode].append(elapsed)
                with app.test_request_context(), web.db.reader() as conn:
                    statements = [r["statement"] for r in conn.execute("select statement from pg_prepared_statements")]
                    prepared = len(statements)
                counts.setdefault("statements", set()).update(statements)
                counts[mode] = max(counts.get(mode, 0), prepared)
                rounds_p50[mode].append(statistics.median(times[mode][-requests:]))
                log(
                    f"round {r + 1}, {mode}: p50 {statistics.median(times[mode][-requests:]) * 1000:.3f} ms,"
                    f" {prepared} statement(s) prepared on the server connection"
                )
            finally:
                close_pool(app)
    web.db.connection_kwargs = connection_kwargs
    counts["rounds"] = rounds_p50
    return times, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=500, help="per mode and round")
    args = parser.parse_args()
    from web.ops.cli import migrate
    from web.ops.embedded import database_url

    url = recreate_database(database_url(), "weekly_trends_bench_prepared")
    log("migrating and seeding")
    migrate(url)
    families = seed(url, args.students)
    started = datetime.now(UTC)
    times, counts = run(url, families, args.rounds, args.requests)
    table = ["| connections | requests | p50 ms | p90 ms | p99 ms | mean ms |", "|---|---:|---:|---:|---:|---:|"]
    for mode, values in times.items():
        q = statistics.quantiles(values, n=100)
        table.append(
            f"| {mode} | {len(values):,} | {statistics.median(values) * 1000:.3f} | {q[89] * 1000:.3f} |"
            f" {q[98] * 1000:.3f} | {statistics.fmean(values) * 1000:.3f} |"
        )
    print("\n".join(table))
    (prepared, values_p), (unprepared, values_u) = times.items()
    ratio = statistics.median(values_u) / statistics.median(values_p)
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()[0]
    section = [
        PREPARED_SECTION,
        "",
        "Every connection of the app and the CLI runs with psycopg's `prepare_threshold=None` (no server-side",
        "prepared statements), so that it works through a transaction-mode pooler (docs/operations.md). What",
        "that costs on a direct connection: the parents' answer (`GET /api/v1/students/<id>/weekly-trend`,",
        "12 weeks: authentication, weekly_trend_json(), the access log) through the app in-process, one pooled",
        f"connection, {args.students} students with a school year of scores each, {args.rounds} alternating rounds of",
        f"{args.requests} requests per mode (after 20 unmeasured). Produced by `python -m bench.prepared` (not by",
        "`make bench`, which carries this section over).",
        "",
        *table,
        "",
        f"Without prepared statements the median request takes {ratio:.2f}× the time it takes with them. Round by",
        "round (p50 without / p50 with, each pair measured back to back): "
        + ", ".join(f"{u / p:.2f}×" for p, u in zip(counts["rounds"][prepared], counts["rounds"][unprepared]))
        + ".",
        "The answer is one function call per request (the SQL inside the functions is planned and cached by the",
        f"server either way): with psycopg's default it prepared {counts[prepared]} statement(s) on the connection"
        f" ({'; '.join(f'`{t}`' for t in sorted(counts.get('statements', ())))}), without, {counts[unprepared]}:"
        " what preparing saves is that one statement's parse, plan and description at each call.",
        f"PostgreSQL {version}, psycopg {psycopg.__version__}, {os.cpu_count()} CPUs shared with other work;"
        f" {started:%Y-%m-%d %H:%M UTC}.",
    ]
    replace_section(PROJECT_ROOT / "docs" / "benchmarks.md", PREPARED_SECTION, section)


if __name__ == "__main__":
    main()
