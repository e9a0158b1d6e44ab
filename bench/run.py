"""What the weekly-aggregate triggers cost writers, and what a full refresh costs.

    python -m bench.run [--rows 1000000] [--single 2000] [--students 2000]
                        [--database-url URL] [--quick]

Two databases on one server, migrated identically: bench_triggers keeps the
maintenance triggers, bench_plain has them disabled (DISABLE TRIGGER USER
keeps the foreign-key triggers, so only our triggers differ). Measured:

1. single-row autocommit INSERTs into quiz_attempt, as the app writes them;
2. one INSERT ... SELECT of --rows rows, as a bulk import writes them;
3. refresh_weekly_performance() over those rows, against a bare GROUP BY.

Prints a table and overwrites docs/benchmarks.md (or --output).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from web.cli import migrate
from web.embedded import PROJECT_ROOT

TRIGGERS_DB = "bench_triggers"
PLAIN_DB = "bench_plain"
VARIANTS = (TRIGGERS_DB, PLAIN_DB)
TIME_ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Tokyo")
COURSES = 50
SEED = 20251127
WARMUP_INSERTS = 20

TARGET_SINGLE = 1.3
TARGET_BULK = 1.6
TARGET_REFRESH = 3.0

COURSES_PER_STUDENT = 6
SCORES_PER_STUDENT_WEEK = 11  # the seed's school: ~8 quizzes and ~3 assignments a week
# A school's shape: each student in 6 of the courses, about 11 scores per
# student and week, the weeks running back from the week before the run's. Student s
# takes courses 1 + (7s + k) mod COURSES, k = 0..5.
BULK_INSERT = """
insert into quiz_attempt (student_profile_id, course_id, score, completed_at)
select s, 1 + (7 * s + floor(random() * %(per_student)s)::bigint) %% %(courses)s,
       round((random() * 100)::numeric, 2),
       %(last_monday)s::timestamptz - floor(random() * %(weeks)s) * interval '7 days' + random() * interval '5 days'
  from (select 1 + floor(random() * %(students)s)::bigint as s from generate_series(1, %(rows)s)) g
"""
# This week so far: 10 scores per student, written in time order as a week's
# writes arrive, so this week's aggregate rows were created this week.
THIS_WEEK_INSERT = """
insert into quiz_attempt (student_profile_id, course_id, score, completed_at)
select s, 1 + (7 * s + k %% %(per_student)s) %% %(courses)s, round((random() * 100)::numeric, 2),
       %(this_monday)s::timestamptz + k * interval '11 hours' + s * interval '1 second'
  from generate_series(0, 9) k, generate_series(1, %(students)s) s
 order by k, s
"""
SINGLE_INSERT = (
    "insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values (%s, %s, %s, %s)"
)
REFRESH = "select refresh_weekly_performance()"
# count(*) around it: the client must not spend the time fetching the groups.
# The weekly figures the refresh rebuilds, computed bare: every counted score
# of both tables in its student's ISO week, in the student's time zone.
# count(*) around it: the client must not spend the time fetching the groups.
GROUP_BY = """
select count(*) from (
  select s.student_profile_id, date_trunc('week', s.counted_at at time zone sp.time_zone)::date,
         sum(s.score), count(*)
    from (select student_profile_id, completed_at as counted_at, coalesce(teacher_score, score) as score
            from quiz_attempt
          union all
          select student_profile_id, coalesce(graded_at, submitted_at), case when is_graded then percentage end
            from assignment_submission) s
    join student_profile sp on sp.id = s.student_profile_id
   where s.counted_at is not null and s.score is not null
   group by 1, 2
) w
"""
# The first report's baseline: weeks in UTC, one table, no rules. Cheaper,
# and wrong for every student outside UTC; shown for comparison.
NAIVE_GROUP_BY = """
select count(*) from (
  select student_profile_id, date_trunc('week', completed_at), avg(score), count(*)
    from quiz_attempt
   group by 1, 2
) s
"""


@dataclass
class Row:
    name: str
    unit: str
    with_triggers: float
    without: float
    target: float | None  # None: shown for understanding, no target set
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.with_triggers / self.without

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio <= self.target


def log(message: str) -> None:
    # Progress goes to stderr so stdout holds only the result table.
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, help="rows of the bulk INSERT ... SELECT (default 1000000)")
    parser.add_argument("--single", type=int, help="single-row INSERTs per variant, over all rounds (default 2000)")
    parser.add_argument("--students", type=int, default=2000, help="students to seed (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement; medians are reported")
    parser.add_argument("--database-url", help="libpq URL of a superuser on a PostgreSQL 15+ server "
                        "(default: DATABASE_URL, else a throwaway embedded server); "
                        f"{TRIGGERS_DB} and {PLAIN_DB} on it are dropped and recreated")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100000 rows, 500 single inserts")
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md",
                        help="Markdown report to overwrite (default docs/benchmarks.md)")
    args = parser.parse_args(argv)
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    args.single = args.single or (500 if args.quick else 2000)
    if min(args.rows, args.single, args.students, args.rounds) < 1:
        parser.error("--rows, --single, --students and --rounds must be positive")
    if args.single < args.rounds:
        parser.error("--single must be at least --rounds")
    return args


def recreate_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return make_conninfo(admin_url, dbname=name)


def checkpoint(conn: psycopg.Connection) -> None:
    # Flushes the previous step's dirty pages now rather than during the next
    # timed statement. Needs superuser or pg_checkpoint; harmless to skip.
    try:
        conn.execute("checkpoint")
    except psycopg.errors.InsufficientPrivilege:
        pass


def seed(conn: psycopg.Connection, students: int) -> None:
    # Explicit ids (the columns are GENERATED BY DEFAULT) so the bulk INSERT
    # can draw 1..students and 1..COURSES without looking them up.
    conn.execute(
        "insert into student_profile (id, display_name, time_zone)"
        " select g, 'Student ' || g, (%s::text[])[1 + g %% %s] from generate_series(1, %s) g",
        (list(TIME_ZONES), len(TIME_ZONES), students),
    )
    conn.execute(
        "insert into course (id, name) select g, 'Course ' || g from generate_series(1, %s) g", (COURSES,)
    )


def reset_scores(conn: psycopg.Connection, with_triggers: bool) -> None:
    # TRUNCATE gives both variants the same fresh, unbloated files before each
    # bulk round. The trigger database refuses TRUNCATE (it would leave the
    # aggregates stale), so lift that one trigger and empty the aggregates too.
    with conn.transaction():
        if with_triggers:
            conn.execute("alter table quiz_attempt disable trigger _100_refuse_truncate")
        conn.execute("truncate quiz_attempt, student_weekly_performance, student_course_weekly_performance")
        if with_triggers:
            conn.execute("alter table quiz_attempt enable trigger _100_refuse_truncate")


def timed(conn: psycopg.Connection, query: str, params: dict | tuple | None = None) -> float:
    start = time.perf_counter()
    conn.execute(query, params)
    return time.perf_counter() - start


def round_order(round_number: int) -> tuple[str, ...]:
    # ABBA: neither variant always runs first (caches warm, a checkpoint due).
    return VARIANTS if round_number % 2 == 0 else VARIANTS[::-1]


def bulk_weeks(args) -> int:
    return max(1, args.rows // (args.students * SCORES_PER_STUDENT_WEEK))


def measure_bulk(conns: dict, args, last_monday: datetime) -> Row:
    params = {"students": args.students, "courses": COURSES, "per_student": COURSES_PER_STUDENT,
              "last_monday": last_monday, "weeks": bulk_weeks(args), "rows": args.rows}
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(args.rounds):
        for name in round_order(r):
            conn = conns[name]
            reset_scores(conn, name == TRIGGERS_DB)
            checkpoint(conn)
            # The same seed in both databases: identical rows, identical weeks.
            conn.execute("select setseed(%s)", (0.25,))
            seconds[name].append(timed(conn, BULK_INSERT, params))
            log(f"bulk round {r + 1}/{args.rounds} {name}: {seconds[name][-1]:.2f} s")
    return Row(f"bulk INSERT ... SELECT of {args.rows:,} rows", "s",
               statistics.median(seconds[TRIGGERS_DB]), statistics.median(seconds[PLAIN_DB]), TARGET_BULK,
               note=each_round(seconds))


def each_round(samples: dict[str, list[float]], fmt: str = "{:.2f}") -> str:
    labels = {TRIGGERS_DB: "with triggers", PLAIN_DB: "without"}
    return "; ".join(
        f"{labels.get(name, name)}: " + ", ".join(fmt.format(s) for s in values) for name, values in samples.items()
    )


def single_rows(rng: random.Random, count: int, students: int, week: datetime, weeks: int) -> list[tuple]:
    """count single inserts, each at a random student, one of their courses, in one of `weeks` weeks
    starting with the Monday `week` and going back."""
    return [
        (s, 1 + (7 * s + rng.randrange(COURSES_PER_STUDENT)) % COURSES, round(rng.uniform(0, 100), 2),
         week - timedelta(days=7 * rng.randrange(weeks), seconds=-rng.randrange(5 * 86400)))
        for s in (rng.randint(1, students) for _ in range(count))
    ]


def measure_single(urls: dict, args, label: str, week: datetime, weeks: int, target: float | None) -> tuple[Row, dict]:
    # The remainder goes to the first rounds, so exactly --single run per variant.
    sizes = [args.single // args.rounds + (r < args.single % args.rounds) for r in range(args.rounds)]
    rng = random.Random(SEED)
    warmup = single_rows(rng, WARMUP_INSERTS, args.students, week, weeks)
    micros: dict[str, list[float]] = {name: [] for name in VARIANTS}
    latencies: dict[str, list[float]] = {name: [] for name in VARIANTS}
    # One long-lived autocommit connection per variant, as an app's pool has:
    # PL/pgSQL compiles the trigger functions and psycopg prepares the INSERT
    # once per session, and the warm-up pays for both outside the timing.
    conns = {name: psycopg.connect(urls[name], autocommit=True) for name in VARIANTS}
    try:
        for name in VARIANTS:
            for values in warmup:
                conns[name].execute(SINGLE_INSERT, values)
        for r in range(args.rounds):
            rows = single_rows(rng, sizes[r], args.students, week, weeks)
            for name in round_order(r):
                conn = conns[name]
                round_latencies = []
                for values in rows:
                    t0 = time.perf_counter_ns()
                    conn.execute(SINGLE_INSERT, values)
                    round_latencies.append((time.perf_counter_ns() - t0) / 1000)
                micros[name].append(statistics.fmean(round_latencies))
                latencies[name].extend(round_latencies)
                log(f"single round {r + 1}/{args.rounds} {name}: {micros[name][-1]:.0f} µs/insert")
    finally:
        for conn in conns.values():
            conn.close()
    percentiles = {name: percentile_pair(values) for name, values in latencies.items()}
    row = Row(label, "µs", statistics.median(micros[TRIGGERS_DB]), statistics.median(micros[PLAIN_DB]), target,
              note=each_round(micros, fmt="{:.0f}"))
    return row, percentiles


def percentile_pair(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[94]


def measure_refresh(conn: psycopg.Connection, args) -> tuple[list[Row], int, float]:
    queries = {"refresh": REFRESH, "GROUP BY": GROUP_BY, "naive GROUP BY": NAIVE_GROUP_BY}
    seconds: dict[str, list[float]] = {label: [] for label in queries}
    written = 0
    for r in range(args.rounds):
        order = list(queries) if r % 2 == 0 else list(queries)[::-1]
        for label in order:
            start = time.perf_counter()
            result = conn.execute(queries[label]).fetchone()[0]
            seconds[label].append(time.perf_counter() - start)
            if label == "refresh":
                written += result
            log(f"refresh round {r + 1}/{args.rounds} {label}: {seconds[label][-1]:.2f} s")
    # The refresh cannot run in parallel (it writes); a bare GROUP BY can.
    # One serial run of it shows how much of the ratio that is.
    with conn.transaction():
        conn.execute("set local max_parallel_workers_per_gather = 0")
        serial = timed(conn, GROUP_BY)
    refresh = statistics.median(seconds["refresh"])
    rows = [
        Row("refresh_weekly_performance() vs GROUP BY of the weekly figures", "s",
            refresh, statistics.median(seconds["GROUP BY"]), TARGET_REFRESH, note=each_round(seconds)),
        Row("refresh_weekly_performance() vs naive GROUP BY (UTC weeks, quiz_attempt only)", "s",
            refresh, statistics.median(seconds["naive GROUP BY"]), None, note="the same rounds as above"),
    ]
    return rows, written, serial


def machine_info(conn: psycopg.Connection) -> dict[str, str]:
    meminfo = Path("/proc/meminfo")
    memory = "unknown"
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    settings = conn.execute(
        "select string_agg(name || '=' || current_setting(name), ', ' order by name) from pg_settings"
        " where name in ('shared_buffers', 'fsync', 'synchronous_commit', 'max_parallel_workers_per_gather', 'jit',"
        "                'work_mem', 'max_wal_size')"
    ).fetchone()[0]
    return {
        "CPUs (nproc)": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "memory": memory,
        "OS": platform.platform(),
        "PostgreSQL": conn.execute("select version()").fetchone()[0],
        "server settings": settings,
    }


def command_line(argv: list[str]) -> str:
    # The URL may carry a password; the report should not.
    shown, hide_next = [], False
    for arg in argv:
        if hide_next:
            shown.append("URL")
            hide_next = False
        elif arg == "--database-url":
            shown.append(arg)
            hide_next = True
        elif arg.startswith("--database-url="):
            shown.append("--database-url=URL")
        else:
            shown.append(shlex.quote(arg))
    return " ".join([".venv/bin/python -m bench.run", *shown])


def fmt_value(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if unit == "µs" else f"{value:,.2f} {unit}"


def table(rows: list[Row]) -> list[list[str]]:
    return [
        [row.name, fmt_value(row.with_triggers, row.unit), fmt_value(row.without, row.unit),
         f"{row.ratio:.2f}×", "—" if row.target is None else f"≤ {row.target:g}×",
         {None: "—", True: "yes", False: "NO"}[row.met]]
        for row in rows
    ]


HEADER = ["measurement", "with triggers", "without", "ratio", "target", "met?"]


def print_table(rows: list[Row]) -> None:
    cells = [HEADER, *table(rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    for n, line in enumerate(cells):
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def write_report(path: Path, args, rows: list[Row], extra: list[str], machine: dict, command: str,
                 started: datetime, elapsed: float) -> None:
    lines = [
        "# Benchmarks",
        "",
        "What the triggers that keep `student_weekly_performance` and `student_course_weekly_performance`",
        "exact (`_500_maintain_weekly_after_*` on `quiz_attempt`) cost the writers, and what a full",
        "`refresh_weekly_performance()` costs. Produced by `bench/run.py`; rerun with `make bench`",
        "(`BENCH_ARGS=...` passes options). Overwritten by every run.",
        "",
        "## What is measured",
        "",
        f"Two databases on one PostgreSQL server, both migrated to head: `{TRIGGERS_DB}` as migrated, and",
        f"`{PLAIN_DB}` with `alter table quiz_attempt disable trigger user` (and the same on",
        "`assignment_submission`), which keeps the foreign-key triggers, so the schemas differ only by our",
        f"triggers. Both are seeded identically with {args.students:,} students (time zones "
        + ", ".join(TIME_ZONES) + f") and {COURSES} courses, then `VACUUM ANALYZE`d.",
        "",
        f"1. **Single-row inserts**: {args.single:,} per variant and case, each its own autocommit",
        "   `INSERT ... VALUES` over one long-lived psycopg connection (prepared after the first few",
        "   executions, as the app's would be), identical in both databases, after",
        f"   {WARMUP_INSERTS} untimed warm-up inserts. Time is the client's round trip, commit included.",
        "   Measured after the bulk load, so the tables and aggregates are already large. Two cases:",
        "   *this week*, a random student and one of their courses in the run's week, which already",
        "   holds 10 scores per student, written in time order after the bulk load (so its aggregate rows",
        "   were created this week, as a school's are): the everyday write, and the one the target is for;",
        "   *an empty week*, a random week of the two years before the load: every insert creates",
        "   aggregate rows on pages no recent write touched (a late import; shown, no target).",
        f"2. **Bulk load**: one `INSERT INTO quiz_attempt (...) SELECT ... FROM generate_series(1, {args.rows:,})`",
        f"   shaped like a school: each student takes {COURSES_PER_STUDENT} of the {COURSES} courses and has about",
        f"   {SCORES_PER_STUDENT_WEEK} scores a week, over the {bulk_weeks(args)} weeks up to the run's week; score",
        "   0..100 with 2 decimals. `setseed()` makes the rows identical in both databases. Each round starts from",
        "   a truncated `quiz_attempt` (and empty aggregates) after a `CHECKPOINT`; the last round's rows",
        "   stay for the other measurements, and both databases are `VACUUM ANALYZE`d again.",
        "3. **Refresh**: `select refresh_weekly_performance()` (all students, all weeks, class view",
        f"   included) in `{TRIGGERS_DB}`, whose aggregates the triggers already keep exact, against a",
        "   bare `GROUP BY` that computes the same weekly figures from the same rows: every counted score of",
        "   both tables (`coalesce(teacher_score, score)`, graded percentages) in its ISO week in the",
        "   student's time zone (`bench/run.py`, `GROUP_BY`). Shown beside it, without a target: the first",
        "   report's baseline, `date_trunc('week', completed_at)` in UTC over `quiz_attempt` alone, which is",
        "   cheaper and puts the scores of every student outside UTC in the wrong weeks.",
        "",
        f"Each measurement runs {args.rounds} rounds, alternating which variant goes first; the table shows",
        "medians (for single inserts, the median of the rounds' mean latency).",
        "",
        "## Results",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(HEADER) - 1)) + "|",
        *("| " + " | ".join(line) + " |" for line in table(rows)),
        "",
        "Each round's figures, in order:",
        "",
        *(f"- {row.name}: {row.note}" for row in rows),
        *extra,
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine.items()),
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- total run time: {elapsed / 60:.1f} min",
        "",
        "## Command",
        "",
        "```",
        command,
        "```",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def run(args: argparse.Namespace, admin_url: str) -> int:
    started = datetime.now(timezone.utc)
    # Fixed for the run, so both databases see the same instants.
    # The Monday (UTC) of the run's week; the bulk load ends the week before.
    this_monday = (started - timedelta(days=started.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    last_monday = this_monday - timedelta(days=7)
    clock = time.perf_counter()

    urls = {}
    for name in VARIANTS:
        log(f"creating and migrating {name}")
        urls[name] = recreate_database(admin_url, name)
        migrate(urls[name])
    with psycopg.connect(urls[PLAIN_DB], autocommit=True) as conn:
        conn.execute("alter table quiz_attempt disable trigger user")
        conn.execute("alter table assignment_submission disable trigger user")

    conns = {name: psycopg.connect(urls[name], autocommit=True) for name in VARIANTS}
    try:
        for name, conn in conns.items():
            log(f"seeding {name}: {args.students:,} students, {COURSES} courses")
            seed(conn, args.students)
            conn.execute("vacuum analyze")

        log(f"bulk load: {args.rows:,} rows x {args.rounds} rounds per variant")
        bulk = measure_bulk(conns, args, last_monday)
        for conn in conns.values():
            conn.execute(THIS_WEEK_INSERT, {"students": args.students, "courses": COURSES,
                                            "per_student": COURSES_PER_STUDENT, "this_monday": this_monday})
            # Otherwise autovacuum would wake up on the fresh rows in the middle
            # of the next timings, in one database and not the other.
            conn.execute("vacuum analyze")
            checkpoint(conn)

        log(f"single-row inserts: {args.single:,} per variant over {args.rounds} rounds")
        single, percentiles = measure_single(
            urls, args, f"single-row INSERT into this week, 10+ scores a student ({args.single:,} per variant)",
            this_monday, 1, TARGET_SINGLE)
        # The worst case: a late import into weeks before the load, so every
        # insert creates aggregate rows, on pages no recent write touched.
        single_new, percentiles_new = measure_single(
            urls, args, f"single-row INSERT into an empty week ({args.single:,} per variant)",
            last_monday - timedelta(days=7 * bulk_weeks(args)), 104, None)

        conn = conns[TRIGGERS_DB]
        conn.execute("vacuum analyze")
        checkpoint(conn)
        log(f"refresh vs GROUP BY: {args.rounds} rounds")
        refresh_rows, written, serial_group_by = measure_refresh(conn, args)
        machine = machine_info(conn)
        source_rows = conn.execute("select count(*) from quiz_attempt").fetchone()[0]
        weekly_rows, course_rows = conn.execute(
            "select (select count(*) from student_weekly_performance),"
            "       (select count(*) from student_course_weekly_performance)"
        ).fetchone()
    finally:
        for conn in conns.values():
            conn.close()

    rows = [single, single_new, bulk, *refresh_rows]
    extra = [
        "",
        "Notes:",
        "",
        *(f"- single-row insert latency p50 / p95, {what}: with triggers {p[TRIGGERS_DB][0]:,.0f} /"
          f" {p[TRIGGERS_DB][1]:,.0f} µs, without {p[PLAIN_DB][0]:,.0f} / {p[PLAIN_DB][1]:,.0f} µs."
          for what, p in (("this week", percentiles), ("empty week", percentiles_new))),
        f"- the refresh ran over {source_rows:,} quiz attempts, {weekly_rows:,} weekly and {course_rows:,}"
        f" per-course weekly rows; it wrote {written} rows over all rounds"
        + (" (the triggers had kept them exact)." if written == 0 else ": the triggers had let them drift!"),
        f"- the GROUP BY of the weekly figures with parallel query off took {serial_group_by:.2f} s"
        f" (refresh ratio {refresh_rows[0].with_triggers / serial_group_by:.2f}× against it): the refresh writes, so it"
        " never runs in parallel.",
    ]
    elapsed = time.perf_counter() - clock
    command = command_line(sys.argv[1:])

    print()
    print_table(rows)
    print(*extra[2:], sep="\n")
    write_report(args.output, args, rows, extra, machine, command, started, elapsed)
    print(f"\nWrote {args.output} ({elapsed / 60:.1f} min).")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    admin_url = args.database_url or os.environ.get("DATABASE_URL")
    if admin_url:
        return run(args, admin_url)
    from web.embedded import start_server

    with tempfile.TemporaryDirectory(prefix="weekly-trends-bench-") as tmp:
        log(f"starting a throwaway embedded server in {tmp}")
        server = start_server(Path(tmp) / "data", cleanup_mode="delete")
        try:
            return run(args, server.get_uri())
        finally:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
