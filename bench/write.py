"""Write path: what each variant (ours, no triggers, the seed's) costs the writers.

Every variant writes to students of its own, created after the district and
shaped alike (one week already holding 10 or 100 scores), so a variant that
leaves the weekly rows stale (no triggers) spoils nothing another measures.
The triggers are swapped on the one database between runs (use_variant).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg

from .common import (
    OURS,
    PLAIN,
    SEED_BASELINE,
    VARIANTS,
    Check,
    Section,
    fmt_ratio,
    log,
    median,
    percentile,
    round_order,
    use_variant,
)
from .district import TIME_ZONES

WEEK_SIZES = (10, 100)
CLASS = 25  # students per multi-row statement
ROWS_PER_STUDENT = 20  # of each multi-row statement: 25 x 20 = 500 rows
WRITERS = 8
WRITER_APP = "wt-bench-writer"
WARMUP = 20
SERVER_SIDE = 100  # EXPLAIN ANALYZE samples per variant, size and round
SINGLE_INSERT = "insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values (%s, %s, %s, %s)"
TARGET_SINGLE = 1.25  # and below the seed baseline's ratio in the same run
TARGET_CONCURRENT = 0.80  # and above the seed baseline's


@dataclass
class Writers:
    """Per variant and week size, the students whose week already holds that many scores."""

    week: date  # the Monday of the week they write into
    course: int
    groups: dict[tuple[str, int], list[int]]


def at(week: date, student: int, n: int) -> datetime:
    # A weekday school hour of that week; local or UTC, it stays in the same week.
    return datetime(week.year, week.month, week.day, 10, tzinfo=UTC) + timedelta(
        days=n % 5, minutes=(student * 7 + n) % 300
    )


def make_writers(conn: psycopg.Connection, per_group: int, week: date, course: int) -> Writers:
    """New students per (variant, size), their week filled with our triggers on, so its rows are exact."""
    use_variant(conn, OURS)
    groups = {}
    for variant in VARIANTS:
        for size in WEEK_SIZES:
            ids = [
                r[0]
                for r in conn.execute(
                    "insert into student_profile (display_name, time_zone)"
                    " select 'Writer ' || g, (%s::text[])[1 + g %% 4] from generate_series(1, %s) g returning id",
                    (list(TIME_ZONES), per_group),
                ).fetchall()
            ]
            groups[(variant, size)] = ids
            conn.execute(
                "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
                " select s, %s, round((random() * 100)::numeric, 2),"
                "        %s::timestamptz + (n %% 5) * interval '1 day' + (n * 7 %% 300) * interval '1 minute'"
                "   from unnest(%s::bigint[]) s, generate_series(1, %s) n",
                (course, datetime(week.year, week.month, week.day, 10, tzinfo=UTC), ids, size),
            )
    conn.execute("vacuum analyze quiz_attempt, student_weekly_performance")
    return Writers(week, course, groups)


def rounds_of(items: list, rounds: int) -> list[list]:
    return [items[r::rounds] for r in range(rounds)]


def measure_single(admin: psycopg.Connection, url: str, writers: Writers, rounds: int) -> dict:
    """µs per autocommit single-row INSERT into a week holding `size` scores, per (variant, size)."""
    rng = random.Random(1)
    latencies: dict[tuple[str, int], list[float]] = {key: [] for key in writers.groups}
    means: dict[tuple[str, int], list[float]] = {key: [] for key in writers.groups}
    server: dict[tuple[str, int], list[float]] = {key: [] for key in writers.groups}
    # One long-lived connection per variant, as an app's pool has: PL/pgSQL
    # compiles the trigger functions and psycopg prepares the INSERT once per session.
    conns = {v: psycopg.connect(url, autocommit=True) for v in VARIANTS}
    try:
        for r in range(rounds):
            for variant in round_order(r):
                use_variant(admin, variant)
                conn = conns[variant]
                for size in WEEK_SIZES:
                    students = rounds_of(writers.groups[(variant, size)], rounds)[r]
                    # Warm-up after the swap (plans were invalidated), into the last
                    # students of the round, which the timed loop then skips.
                    for s in students[-WARMUP:]:
                        conn.execute(SINGLE_INSERT, (s, writers.course, 50, at(writers.week, s, 1)))
                    sample = []
                    # One insert per student: each lands in a week holding exactly `size` scores.
                    for s in students[:-WARMUP]:
                        values = (s, writers.course, round(rng.uniform(0, 100), 2), at(writers.week, s, 3))
                        t0 = time.perf_counter_ns()
                        conn.execute(SINGLE_INSERT, values)
                        sample.append((time.perf_counter_ns() - t0) / 1000)
                    latencies[(variant, size)] += sample
                    means[(variant, size)].append(sum(sample) / len(sample))
                    server[(variant, size)] += server_side(conn, students[:SERVER_SIDE], writers)
                log(
                    f"single round {r + 1}/{rounds} {variant}: "
                    + ", ".join(f"{size} a week {means[(variant, size)][-1]:.0f} µs" for size in WEEK_SIZES)
                )
    finally:
        for conn in conns.values():
            conn.close()
    return {"means": means, "latencies": latencies, "server": server}


def server_side(conn: psycopg.Connection, students: list[int], writers: Writers) -> list[float]:
    """µs the server spends executing the INSERT and its triggers, without the round trip and the commit.

    EXPLAIN ANALYZE in a transaction rolled back: the weeks do not grow.
    """
    micros = []
    for s in students:
        with conn.transaction(force_rollback=True):
            plan = [
                row[0]
                for row in conn.execute(
                    "explain (analyze, timing off, costs off, summary) " + SINGLE_INSERT,
                    (s, writers.course, 50, at(writers.week, s, 4)),
                )
            ]
        micros.append(1000 * float(next(line for line in plan if line.startswith("Execution Time:")).split()[2]))
    return micros


def multi_row_values(students: list[int], writers: Writers, rng: random.Random) -> tuple[str, list]:
    rows, params = [], []
    for s in students:
        for n in range(ROWS_PER_STUDENT):
            rows.append("(%s, %s, %s, %s)")
            params += [s, writers.course, round(rng.uniform(0, 100), 2), at(writers.week, s, n)]
    return ", ".join(rows), params


def measure_statements(admin: psycopg.Connection, url: str, writers: Writers, statements: int, rounds: int) -> dict:
    """ms per 500-row multi-row INSERT into the current week, and per UPDATE moving those rows a week back."""
    rng = random.Random(2)
    ms = {(kind, v): [] for kind in ("insert", "update") for v in VARIANTS}
    with psycopg.connect(url, autocommit=True) as conn:
        for r in range(rounds):
            for variant in round_order(r):
                use_variant(admin, variant)
                classes = [writers.groups[(variant, 100)][i * CLASS : (i + 1) * CLASS] for i in range(statements)]
                for students in rounds_of(classes, rounds)[r]:
                    values, params = multi_row_values(students, writers, rng)
                    t0 = time.perf_counter()
                    ids = [
                        row[0]
                        for row in conn.execute(
                            "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
                            f" values {values} returning id",
                            params,
                        ).fetchall()
                    ]
                    ms[("insert", variant)].append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    conn.execute(
                        "update quiz_attempt set completed_at = completed_at - interval '7 days' where id = any(%s)",
                        (ids,),
                    )
                    ms[("update", variant)].append((time.perf_counter() - t0) * 1000)
                log(
                    f"500-row statements round {r + 1}/{rounds} {variant}: insert "
                    f"{median(ms[('insert', variant)]):.1f} ms, update {median(ms[('update', variant)]):.1f} ms"
                )
    return ms


def writer_thread(
    url: str,
    students: list[int],
    writers: Writers,
    stop: threading.Event,
    counts: list,
    index: int,
    start: threading.Barrier,
) -> None:
    with psycopg.connect(url, autocommit=True, application_name=WRITER_APP) as conn:
        n = 0
        conn.execute(SINGLE_INSERT, (students[0], writers.course, 50, at(writers.week, students[0], 2)))
        start.wait()
        while not stop.is_set():
            s = students[n % len(students)]
            conn.execute(SINGLE_INSERT, (s, writers.course, (n * 37) % 100, at(writers.week, s, n)))
            n += 1
        counts[index] = n


def sample_waits(url: str, stop: threading.Event, waits: Counter) -> None:
    """What the writers' backends are doing, every 20 ms: waiting on a lock, on I/O, or running (None)."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            for (kind,) in conn.execute(
                "select wait_event_type || ':' || wait_event from pg_stat_activity"
                " where application_name = %s and state = 'active'",
                (WRITER_APP,),
            ):
                waits[kind or "running"] += 1
            time.sleep(0.02)


def measure_concurrent(
    admin: psycopg.Connection, url: str, writers: Writers, seconds: float, rounds: int
) -> tuple[dict, dict]:
    """Total single-row INSERTs per second of 8 connections, each on students of its own."""
    per_second: dict[str, list[float]] = {v: [] for v in VARIANTS}
    waits: dict[str, Counter] = {v: Counter() for v in VARIANTS}
    wal: dict[str, list[float]] = {v: [] for v in VARIANTS}  # bytes per insert
    for r in range(rounds):
        for variant in round_order(r):
            use_variant(admin, variant)
            students = writers.groups[(variant, 10)]
            stop, counts = threading.Event(), [0] * WRITERS
            start = threading.Barrier(WRITERS + 1)
            threads = [
                threading.Thread(
                    target=writer_thread, args=(url, students[i::WRITERS], writers, stop, counts, i, start)
                )
                for i in range(WRITERS)
            ]
            for t in threads:
                t.start()
            sampler = threading.Thread(target=sample_waits, args=(url, stop, waits[variant]))
            start.wait()
            sampler.start()
            lsn = admin.execute("select pg_current_wal_lsn()").fetchone()[0]
            t0 = time.perf_counter()
            time.sleep(seconds)
            stop.set()
            for t in [*threads, sampler]:
                t.join()
            per_second[variant].append(sum(counts) / (time.perf_counter() - t0))
            wal[variant].append(
                admin.execute("select pg_current_wal_lsn() - %s::pg_lsn", (lsn,)).fetchone()[0] / max(sum(counts), 1)
            )
            log(f"{WRITERS} writers round {r + 1}/{rounds} {variant}: {per_second[variant][-1]:,.0f} inserts/s")
    return per_second, waits, wal


def run_write(admin: psycopg.Connection, url: str, args, week: date, course: int) -> Section:
    per_group = args.single // args.rounds * args.rounds + WARMUP * args.rounds
    statements = min(args.statements, per_group // CLASS)
    log(f"write path: {len(VARIANTS)} x {len(WEEK_SIZES)} groups of {per_group:,} writer students")
    writers = make_writers(admin, per_group, week, course)
    single = measure_single(admin, url, writers, args.rounds)
    stmts = measure_statements(admin, url, writers, statements, args.rounds)
    concurrent, waits, wal = measure_concurrent(admin, url, writers, args.writer_seconds, args.rounds)
    use_variant(admin, OURS)

    section = Section(
        "write",
        "Write path",
        [
            f"Each variant writes to {per_group:,} students of its own per case, created after the district, whose",
            f"week of {week.isoformat()} already holds 10 or 100 quiz scores (written with our triggers on). The",
            "variants are swapped on the one database (`ALTER TABLE ... ENABLE/DISABLE TRIGGER`) between runs, in",
            f"ABBA order over {args.rounds} rounds; *ours* = the statement triggers of db/functions; *no triggers* = none",
            "(foreign keys kept); *seed baseline* = bench/seed_baseline.sql, the seed's row-level",
            "recalculate_week_averages (indexed; its index exists in all variants' runs).",
            f"- single-row: autocommit `INSERT ... VALUES` over one long-lived connection per variant, {WARMUP} warm-up",
            "  inserts after each swap; one insert per student, so each lands in a week holding exactly 10 (or 100);",
            f"  then, for {SERVER_SIDE} of those students a round, the same INSERT under `EXPLAIN ANALYZE` in a",
            "  transaction rolled back: the server's own time, steadier than the round trip with its commit;",
            f"- 500-row: one `INSERT ... VALUES` of {CLASS} students x {ROWS_PER_STUDENT} scores into their week, then",
            "  one `UPDATE` moving those 500 rows a week back (the old and the new week change);",
            f"- {WRITERS} writers: {WRITERS} connections, each inserting single rows for students of its own, for",
            f"  {args.writer_seconds:g} s; total inserts per second.",
        ],
        ["measurement", OURS, PLAIN, SEED_BASELINE, "ours / no triggers", "seed / no triggers"],
    )
    growth = {v: median(single["means"][(v, 100)]) / median(single["means"][(v, 10)]) for v in VARIANTS}
    for size in WEEK_SIZES:
        m = {v: median(single["means"][(v, size)]) for v in VARIANTS}
        section.rows.append(
            [
                f"single-row INSERT, week holding {size} (mean µs)",
                *(f"{m[v]:,.0f} µs" for v in VARIANTS),
                fmt_ratio(m[OURS] / m[PLAIN]),
                fmt_ratio(m[SEED_BASELINE] / m[PLAIN]),
            ]
        )
        for p in (50, 99):
            q = {v: percentile(single["latencies"][(v, size)], p) for v in VARIANTS}
            section.rows.append(
                [
                    f"  p{p}",
                    *(f"{q[v]:,.0f} µs" for v in VARIANTS),
                    fmt_ratio(q[OURS] / q[PLAIN]),
                    fmt_ratio(q[SEED_BASELINE] / q[PLAIN]),
                ]
            )
        e = {v: median(single["server"][(v, size)]) for v in VARIANTS}
        section.rows.append(
            [
                "  server-side execution, median (no round trip, no commit)",
                *(f"{e[v]:,.0f} µs" for v in VARIANTS),
                fmt_ratio(e[OURS] / e[PLAIN]),
                fmt_ratio(e[SEED_BASELINE] / e[PLAIN]),
            ]
        )
        why = (
            f"the trigger's fixed cost: {e[OURS] - e[PLAIN]:,.0f} µs of server time a statement (median, EXPLAIN"
            f" ANALYZE; the seed's {e[SEED_BASELINE] - e[PLAIN]:,.0f} µs), against a {m[PLAIN]:,.0f} µs insert and"
            f" commit (ours from 10 to 100 a week: {growth[OURS]:.2f}×)"
        )
        section.checks.append(
            Check(
                "write",
                f"single-row INSERT at a week holding {size}, ours / no triggers",
                m[OURS] / m[PLAIN],
                TARGET_SINGLE,
                why=why,
            )
        )
        section.checks.append(
            Check(
                "write",
                f"single-row INSERT at a week holding {size}, ours / no triggers, against"
                " the seed baseline's ratio in the same run",
                m[OURS] / m[PLAIN],
                m[SEED_BASELINE] / m[PLAIN],
                why=why,
            )
        )
    section.notes.append(
        "From a week of 10 to a week of 100 scores, the single-row INSERT costs "
        + ", ".join(f"{v} {growth[v]:.2f}×" for v in VARIANTS)
        + "; server-side: "
        + ", ".join(
            f"{v} {median(single['server'][(v, 100)]) / median(single['server'][(v, 10)]):.2f}×" for v in VARIANTS
        )
        + " (ours must not grow with the week; the seed's rescans it)."
    )
    for kind, label in (
        ("insert", f"{CLASS * ROWS_PER_STUDENT}-row multi-row INSERT (ms)"),
        ("update", f"{CLASS * ROWS_PER_STUDENT}-row UPDATE moving rows a week (ms)"),
    ):
        m = {v: median(stmts[(kind, v)]) for v in VARIANTS}
        section.rows.append(
            [
                label,
                *(f"{m[v]:,.1f} ms" for v in VARIANTS),
                fmt_ratio(m[OURS] / m[PLAIN]),
                fmt_ratio(m[SEED_BASELINE] / m[PLAIN]),
            ]
        )
    t = {v: median(concurrent[v]) for v in VARIANTS}
    section.rows.append(
        [
            f"{WRITERS} concurrent writers (inserts/s, higher is better)",
            *(f"{t[v]:,.0f}/s" for v in VARIANTS),
            fmt_ratio(t[OURS] / t[PLAIN]),
            fmt_ratio(t[SEED_BASELINE] / t[PLAIN]),
        ]
    )
    lock_waits = sum(n for kind, n in waits[OURS].items() if kind.startswith("Lock:")) / max(
        sum(waits[OURS].values()), 1
    )
    flush_waits = sum(n for kind, n in waits[OURS].items() if kind in ("LWLock:WALWrite", "IO:WalSync")) / max(
        sum(waits[OURS].values()), 1
    )
    why = (
        f"no writer waits for another ({lock_waits:.0%} of samples in Lock waits); {flush_waits:.0%} are commits"
        f" waiting for the WAL flush, and ours writes {median(wal[OURS]):,.0f} WAL bytes per insert against"
        f" {median(wal[PLAIN]):,.0f} without triggers and {median(wal[SEED_BASELINE]):,.0f} with the seed's"
    )
    section.checks.append(
        Check(
            "write",
            f"{WRITERS} concurrent writers, throughput ours / no triggers",
            t[OURS] / t[PLAIN],
            TARGET_CONCURRENT,
            at_least=True,
            why=why,
        )
    )
    section.checks.append(
        Check(
            "write",
            f"{WRITERS} concurrent writers, ours / no triggers, against the seed baseline's ratio",
            t[OURS] / t[PLAIN],
            t[SEED_BASELINE] / t[PLAIN],
            at_least=True,
            why=why,
        )
    )
    section.checks.append(
        Check(
            "write",
            "WAL bytes per single-row insert (8 writers), ours against the seed baseline",
            median(wal[OURS]),
            median(wal[SEED_BASELINE]),
            unit="bytes",
            why=f"ours {median(wal[OURS]):,.0f} bytes, no triggers {median(wal[PLAIN]):,.0f}",
        )
    )
    section.notes.append(
        f"What the {WRITERS} writers' backends were doing, sampled every 20 ms (share of samples): "
        + "; ".join(
            f"{v}: "
            + ", ".join(f"{kind} {n / max(sum(waits[v].values()), 1):.0%}" for kind, n in waits[v].most_common())
            for v in VARIANTS
        )
        + ". `Lock:*` would be writers waiting for each other; `LWLock:WALWrite` and `IO:WALSync` are commits"
        " waiting for the WAL flush. WAL written per insert: "
        + ", ".join(f"{v} {median(wal[v]):,.0f} bytes" for v in VARIANTS)
        + "."
    )
    section.notes.append(f"500-row statements: {statements} per variant; each figure is the median.")
    section.notes.append(
        "Each round's figures (single-row mean µs; writers inserts/s): "
        + "; ".join(
            f"{v} {size}: " + ", ".join(f"{x:.0f}" for x in single["means"][(v, size)])
            for v in VARIANTS
            for size in WEEK_SIZES
        )
        + "; "
        + "; ".join(f"{v} writers: " + ", ".join(f"{x:,.0f}" for x in concurrent[v]) for v in VARIANTS)
        + "."
    )
    return section
