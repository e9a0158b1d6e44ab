"""Benchmarks at school-district scale: ours against no triggers and the seed's design, with targets.

    python -m bench.run [--students 20000] [--only write,bulk,read,attention,http,rebuild,oneroster,release,pieces]
                        [--database-url URL] [--reuse] [--output docs/benchmarks.md]

Generates a synthetic district (bench/district.py) and loads it by COPY with
our triggers on, then measures, each section on one server in one run:

- read: the dashboard's 6 weeks from the weekly table vs a GROUP BY over the raw rows;
- attention: the teacher's list (staff_attention()) for teachers of 150 students, its p95 against 50 ms;
- http: the weekly-trend endpoint under gunicorn, loaded by wrk, vs a no-database endpoint;
- rebuild: refresh_weekly_performance() vs a bare GROUP BY, one student's refresh, bytes on disk;
- write: single-row, 500-row and 8-writer INSERTs with our triggers, without, and with the seed's;
- bulk: a --bulk-rows INSERT ... SELECT with each variant, in a database of its own;
- oneroster: the district as OneRoster CSV through `weekly-trends import oneroster`, in a database of its own;
- pieces (not in the default run: its old texts no longer fit head's signatures, and the report keeps its
  last figures): single-row INSERT and the parents' answer with issue 23's SQL splits against the functions
  before them, in two copies of the district;
- release: the parents' answer and the single-row INSERT's ratio to no triggers, head against revision 0014
  (issues 24-27 undone by a real Alembic downgrade), in two copies of the district.

Prints the tables. A run of every section overwrites docs/benchmarks.md (or --output); a run of some
(--only) rewrites only their sections and their rows of the targets table, keeping the rest of the report.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from web.ops.cli import migrate
from web.ops.embedded import PROJECT_ROOT

from . import district
from .common import (
    DEFAULT_STUDENTS,
    OURS,
    Section,
    checkpoint,
    install_seed_baseline,
    log,
    recreate_database,
    use_variant,
)

DISTRICT_DB = "bench_district"
BULK_DB = "bench_bulk"
ONEROSTER_DB = "bench_oneroster"
SECTIONS = ("read", "attention", "http", "rebuild", "write", "bulk", "oneroster", "pieces", "release")
# pieces is issue 23's record (the SQL splits against the functions before them, installed over head's):
# since revision 0015 changed weekly_trend_json()'s and 0016 weekly_trend_alerts()'s signatures, those old
# texts no longer fit head, so the default run leaves it out and the report keeps its last figures;
# release (head against revision 0014, downgraded for real) is the before-and-after that runs now.
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "pieces")
SMALL_BELOW = 10_000  # fewer students: shorter durations and samples (the "small mode")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--students",
        type=int,
        default=DEFAULT_STUDENTS,
        help=f"students of the district (default {DEFAULT_STUDENTS:,}; below {SMALL_BELOW:,}"
        " the small mode: shorter runs, smaller samples)",
    )
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma-separated sections to run, of {','.join(SECTIONS)} (default: all but pieces)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="ABBA rounds per write and HTTP measurement (default 3)")
    parser.add_argument("--seed", type=int, default=district.SEED, help="the generator's seed")
    parser.add_argument(
        "--bulk-rows",
        type=int,
        help="rows of the bulk INSERT ... SELECT (default 50 per student: 1,000,000 at 20,000 students)",
    )
    parser.add_argument(
        "--single", type=int, help="timed single-row INSERTs per variant and week size (default 1,000 a round)"
    )
    parser.add_argument("--statements", type=int, default=20, help="500-row statements per variant (default 20)")
    parser.add_argument("--writer-seconds", type=float, help="seconds per 8-writer run (default 10; small 3)")
    parser.add_argument(
        "--read-students", type=int, help="students sampled for the dashboard query (default 10,000; small 1,000)"
    )
    parser.add_argument(
        "--refresh-students", type=int, help="students refreshed one at a time (default 1,000; small 300)"
    )
    parser.add_argument("--http-seconds", type=float, help="seconds of load per endpoint (default 30; small 5)")
    parser.add_argument("--http-students", type=int, default=1000, help="students (with tokens) the load spreads over")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers (default 2: one per core)")
    parser.add_argument("--http-threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument(
        "--database-url",
        help="libpq URL of a superuser on a PostgreSQL 15+ server (default:"
        " DATABASE_URL, else a throwaway embedded server); "
        f"{DISTRICT_DB} and {BULK_DB} on it are dropped and recreated",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"keep {DISTRICT_DB} when it holds the same district"
        " (development: skips the load; needs --database-url or DATABASE_URL)",
    )
    parser.add_argument(
        "--load-writers",
        type=int,
        default=2,
        help="connections that COPY the district in parallel (default 2: one per core)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while loading")
    parser.add_argument(
        "--output",
        type=Path,
        default=PROJECT_ROOT / "docs" / "benchmarks.md",
        help="Markdown report to overwrite (default docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    small = args.students < SMALL_BELOW
    # ≥ 1,000 single-row inserts per variant, week size and round (issue 11: a round of 200 moved by ±0.2).
    defaults = {
        "bulk_rows": 50 * args.students,
        "single": 1000 * args.rounds,
        "writer_seconds": 3 if small else 10,
        "read_students": 1000 if small else 10_000,
        "refresh_students": 300 if small else 1000,
        "http_seconds": 5 if small else 30,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    if (
        min(
            args.students,
            args.rounds,
            args.bulk_rows,
            args.single,
            args.statements,
            args.read_students,
            args.refresh_students,
            args.http_students,
            args.http_workers,
            args.http_threads,
            args.load_writers,
        )
        < 1
    ):
        parser.error("counts must be positive")
    if args.students < 100:
        parser.error("--students must be at least 100")
    return args


def district_loaded(url: str, args) -> bool:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("select students, seed from bench_meta").fetchone()
    except psycopg.Error:
        return False
    return row == (args.students, args.seed)


def prepare_district(admin_url: str, args) -> tuple[str, dict]:
    url = make_conninfo(admin_url, dbname=DISTRICT_DB)
    shape = district.Shape(args.students, args.seed)
    if args.reuse and district_loaded(url, args):
        log(f"reusing {DISTRICT_DB}")
        with psycopg.connect(url) as conn:
            return url, conn.execute("select loaded from bench_meta").fetchone()[0]
    log(f"creating and migrating {DISTRICT_DB}")
    recreate_database(admin_url, DISTRICT_DB)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        log(
            f"generating and loading the district: {args.students:,} students, {len(shape.weeks)} school weeks,"
            f" {shape.courses:,} courses (COPY, our triggers on)"
        )
        stats = district.load(conn, shape, progress=not args.no_progress, writers=args.load_writers)
        log(
            f"loaded {stats.rows:,} rows in {stats.seconds:.1f} s: {stats.rows_per_second:,.0f} rows/s"
            f" ({stats.graded_later:,} graded afterwards by UPDATE)"
        )
        conn.execute("select refresh_course_weekly_performance()")
        started = time.perf_counter()
        install_seed_baseline(conn)
        seed_index_seconds = time.perf_counter() - started
        conn.execute("vacuum analyze")
        checkpoint(conn)
        loaded = {
            "students": args.students,
            "courses": shape.courses,
            "school_weeks": len(shape.weeks),
            "quiz_rows": stats.quiz_rows,
            "assignment_rows": stats.assignment_rows,
            "graded_later": stats.graded_later,
            "seconds": stats.seconds,
            "rows_per_second": stats.rows_per_second,
            "seed_index_seconds": seed_index_seconds,
            "writers": args.load_writers,
            "weekly_rows": conn.execute("select count(*) from student_weekly_performance").fetchone()[0],
            "class_view_rows": conn.execute("select count(*) from course_weekly_performance").fetchone()[0],
            "first_week": shape.weeks[0][1].isoformat(),
            "last_day": district.last_school_day().isoformat(),
            "course_work_rows": conn.execute("select count(*) from course_work").fetchone()[0],
            "enrollment_rows": conn.execute("select count(*) from enrollment").fetchone()[0],
            "excusal_rows": conn.execute("select count(*) from course_work_excusal").fetchone()[0],
            "work_set": conn.execute(
                "select count(*) from enrollment e join course_work w on w.course_id = e.course_id"
            ).fetchone()[0],
            "missing": stats.missing,
        }
        conn.execute("create table bench_meta (students integer, seed bigint, loaded jsonb)")
        conn.execute(
            "insert into bench_meta values (%s, %s, %s)", (args.students, args.seed, psycopg.types.json.Jsonb(loaded))
        )
    return url, loaded


def machine_info(conn: psycopg.Connection) -> dict[str, str]:
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
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
        "load average at the start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
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


def write_week(end: date) -> date:
    """The Monday the timed INSERTs write to: this week's (fresh weekly rows, as a new week's are, and the
    week writers write to: a score for a week more than two weeks back also notes the change for the
    teacher's list, alert_history_change), or the week after the district's last if that is later."""
    today = datetime.now(UTC).date()
    return max(end - timedelta(days=end.weekday()) + timedelta(weeks=1), today - timedelta(days=today.weekday()))


def run(args: argparse.Namespace, admin_url: str) -> int:
    from .report import print_sections, replace_sections, write_report

    started = datetime.now(UTC)
    clock = time.perf_counter()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        load_average = os.getloadavg()
        machine = machine_info(conn)
    url, loaded = prepare_district(admin_url, args)
    end = datetime.fromisoformat(loaded["last_day"]).date()
    sections: list[Section] = []
    with psycopg.connect(url, autocommit=True) as admin:
        if "read" in args.sections:
            from .read import run_read

            sections.append(run_read(url, args, end))
        if "attention" in args.sections:
            from .attention import run_attention

            sections.append(run_attention(url, args, end))
        if "http" in args.sections:
            from .http import run_http

            sections.append(run_http(admin, url, args, end))
        if "rebuild" in args.sections:
            from .rebuild import run_rebuild

            sections.append(run_rebuild(admin, url, args, end))
        if "write" in args.sections:
            from .write import run_write

            week = write_week(end)
            course = admin.execute("select max(id) from course").fetchone()[0]
            sections.append(run_write(admin, url, args, week, course))
            use_variant(admin, OURS)
    if "pieces" in args.sections:
        from .pieces import run_pieces

        with psycopg.connect(url) as conn:
            course = conn.execute("select max(id) from course").fetchone()[0]
        week = write_week(end)
        sections.append(run_pieces(admin_url, DISTRICT_DB, args, end, week, course))
    if "release" in args.sections:
        from .release import run_release

        with psycopg.connect(url) as conn:
            course = conn.execute("select max(id) from course").fetchone()[0]
        week = write_week(end)
        sections.append(run_release(admin_url, DISTRICT_DB, args, end, week, course))
    if "bulk" in args.sections:
        from .bulk import run_bulk

        bulk_url = recreate_database(admin_url, BULK_DB)
        log(f"bulk: creating and migrating {BULK_DB}")
        migrate(bulk_url)
        with psycopg.connect(bulk_url, autocommit=True) as conn:
            this_monday = (started - timedelta(days=started.weekday())).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            sections.append(run_bulk(conn, args, this_monday - timedelta(days=7)))
    if "oneroster" in args.sections:
        from .oneroster import run_oneroster

        oneroster_url = recreate_database(admin_url, ONEROSTER_DB)
        log(f"oneroster: creating and migrating {ONEROSTER_DB}")
        migrate(oneroster_url)
        with psycopg.connect(oneroster_url, autocommit=True) as conn:
            sections.append(run_oneroster(conn, args))
    elapsed = time.perf_counter() - clock
    machine["load average at the start"] = " ".join(f"{x:.2f}" for x in load_average)
    print_sections(sections)
    if not set(DEFAULT_SECTIONS) <= set(args.sections) and args.output.exists():
        # Some sections: each rewrites its own section of the report and its rows of the targets; the rest stays.
        replace_sections(args.output, sections, args, command_line(sys.argv[1:]))
    else:
        write_report(args.output, args, sections, loaded, machine, command_line(sys.argv[1:]), started, elapsed)
    print(f"\nWrote {args.output} ({elapsed / 60:.1f} min).")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    admin_url = args.database_url or os.environ.get("DATABASE_URL")
    if admin_url:
        return run(args, admin_url)
    if args.reuse:
        log("--reuse needs a server that outlives the run: give --database-url or DATABASE_URL")
    from web.ops.embedded import start_server

    with tempfile.TemporaryDirectory(prefix="weekly-trends-bench-") as tmp:
        log(f"starting a throwaway embedded server in {tmp}")
        server = start_server(Path(tmp) / "data", cleanup_mode="delete")
        try:
            return run(args, server.get_uri())
        finally:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
