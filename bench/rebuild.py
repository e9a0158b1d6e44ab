"""Rebuild and storage: refresh_weekly_performance() over the district, per student, and bytes on disk."""

from __future__ import annotations

import time
from datetime import date, timedelta

import psycopg

from .common import Check, Section, checkpoint, fmt_ms, fmt_ratio, log, median, percentile, timed_ms
from .read import sample_students

TARGET_REFRESH = 2.5
TARGET_ONE_STUDENT_P99_MS = 5.0
REFRESH = "select refresh_weekly_performance()"
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
ONE_STUDENT = "select refresh_weekly_performance(%s, null, false)"
# What the CLI's backfill does by default: the last 12 weeks only.
ONE_STUDENT_12_WEEKS = "select refresh_weekly_performance(%s, %s, false)"
SEED_ESTIMATE_BYTES = 52
AFTER_FULL_CALLS = 8


def measure_refresh(conn: psycopg.Connection) -> tuple[dict[str, list[float]], int, float]:
    """The refresh once, between two runs of each baseline (a full refresh takes minutes at district scale)."""
    queries = {"refresh": REFRESH, "GROUP BY": GROUP_BY, "naive GROUP BY": NAIVE_GROUP_BY}
    seconds: dict[str, list[float]] = {label: [] for label in queries}
    written = 0
    for label in ("GROUP BY", "naive GROUP BY", "refresh", "naive GROUP BY", "GROUP BY"):
        start = time.perf_counter()
        result = conn.execute(queries[label]).fetchone()[0]
        seconds[label].append(time.perf_counter() - start)
        if label == "refresh":
            written += result
        log(f"rebuild {label}: {seconds[label][-1]:.2f} s")
    # The bare GROUP BY runs with parallel workers; the refresh's reads do too
    # (revision 0012), its writes cannot. One serial run of the GROUP BY shows
    # how much of the ratio parallelism is.
    with conn.transaction():
        conn.execute("set local max_parallel_workers_per_gather = 0")
        serial = timed_ms(conn, GROUP_BY) / 1000
    return seconds, written, serial


def storage(conn: psycopg.Connection) -> list[list[str]]:
    rows = []
    for table in ("student_weekly_performance", "course_weekly_performance", "quiz_attempt", "assignment_submission"):
        count, tuple_bytes, heap, total = conn.execute(
            f"select count(*), avg(pg_column_size(t.*)), pg_table_size('{table}'), pg_total_relation_size('{table}')"
            f"  from {table} t"
        ).fetchone()
        count = max(count, 1)
        rows.append(
            [
                f"`{table}`",
                f"{count:,}",
                f"{tuple_bytes or 0:,.0f} B",
                f"{heap / 2**20:,.1f} MiB",
                f"{(total - heap) / count:,.0f} B",
                f"{total / 2**20:,.1f} MiB",
                f"{total / count:,.0f} B",
            ]
        )
    size = conn.execute("select pg_database_size(current_database())").fetchone()[0]
    rows.append(["whole database", "", "", "", "", f"{size / 2**20:,.1f} MiB", ""])
    return rows


def run_rebuild(conn: psycopg.Connection, url: str, args, end: date) -> Section:
    since = end - timedelta(weeks=11, days=end.weekday())
    conn.execute("vacuum analyze")
    checkpoint(conn)
    log("rebuild: refresh vs GROUP BY")
    seconds, written, serial = measure_refresh(conn)
    students = sample_students(args.students, args.refresh_students, seed=5)
    log(f"rebuild: one student at a time, {len(students):,} students")
    # A fresh session, as a pooled web connection's is (the staff pages' Recalculate).
    with psycopg.connect(url, autocommit=True) as fresh:
        one = [timed_ms(fresh, ONE_STUDENT, (s,)) for s in students]
        recent = [timed_ms(fresh, ONE_STUDENT_12_WEEKS, (s, since)) for s in students]
    # The session that ran the full refreshes: PL/pgSQL's plan cache may have
    # settled on a generic plan for rebuild_weekly_rows (see the notes).
    # A handful: at district scale each generic-plan call scans whole tables.
    after_full = [timed_ms(conn, ONE_STUDENT, (s,)) for s in students[:AFTER_FULL_CALLS]]
    m = {label: median(v) for label, v in seconds.items()}
    p50, p99 = percentile(one, 50), percentile(one, 99)
    weekly_rows, class_rows, course_weeks = conn.execute(
        "select (select count(*) from student_weekly_performance),"
        "       (select count(*) from course_weekly_performance),"
        "       (select sum(student_count) from course_weekly_performance)"
    ).fetchone()
    weekly_bytes = conn.execute(
        "select pg_total_relation_size('student_weekly_performance')::float8 / greatest(count(*), 1)"
        "  from student_weekly_performance"
    ).fetchone()[0]
    section = Section(
        "rebuild",
        "Rebuild and storage",
        [
            "`select refresh_weekly_performance()` (every student and week, class view included) over the whole",
            "district, whose aggregates the triggers already keep exact, against a bare `GROUP BY` that computes the",
            "same weekly figures from the same rows (every counted score of both tables in its ISO week in the",
            "student's time zone; `bench/rebuild.py`, `GROUP_BY`): the refresh runs once, between two runs of",
            "each GROUP BY (their median is the figure).",
            "Beside it, no target: the first report's naive GROUP BY (UTC weeks, `quiz_attempt` only), cheaper and",
            "wrong for every student outside UTC. One student: `refresh_weekly_performance(id, null, false)` for",
            f"{len(students):,} random students with 3 years of history, one call each, client time.",
        ],
        ["measurement", "value", "against", "ratio", "target"],
    )
    section.rows += [
        [
            "refresh_weekly_performance() vs GROUP BY of the weekly figures",
            f"{m['refresh']:,.2f} s",
            f"{m['GROUP BY']:,.2f} s",
            fmt_ratio(m["refresh"] / m["GROUP BY"]),
            f"≤ {TARGET_REFRESH:g}×",
        ],
        [
            "refresh_weekly_performance() vs naive UTC GROUP BY",
            f"{m['refresh']:,.2f} s",
            f"{m['naive GROUP BY']:,.2f} s",
            fmt_ratio(m["refresh"] / m["naive GROUP BY"]),
            "—",
        ],
        [
            "refresh vs the GROUP BY run serially (parallel query off)",
            f"{m['refresh']:,.2f} s",
            f"{serial:,.2f} s",
            fmt_ratio(m["refresh"] / serial),
            "—",
        ],
        ["one student, p50", fmt_ms(p50), "", "", ""],
        ["one student, p99", fmt_ms(p99), "", "", f"< {TARGET_ONE_STUDENT_P99_MS:g} ms"],
        [
            f"one student, its last 12 weeks only (p_since {since.isoformat()}), p50",
            fmt_ms(percentile(recent, 50)),
            "",
            "",
            "",
        ],
        ["one student, its last 12 weeks only, p99", fmt_ms(percentile(recent, 99)), "", "", ""],
    ]
    # The plan cache decides after 5 calls; the last calls show which plan it kept.
    settled = median(after_full[5:] or after_full)
    generic = settled > 3 * p50
    section.checks += [
        Check(
            "rebuild",
            "refresh_weekly_performance() / GROUP BY of the weekly figures",
            m["refresh"] / m["GROUP BY"],
            TARGET_REFRESH,
            why=f"the refresh compares {weekly_rows:,} weekly groups with the stored rows, then"
            f" recomputes the class view ({class_rows:,} course weeks) from"
            f" {course_weeks or 0:,} student-course-week groups of the source rows; the"
            f" GROUP BY makes {weekly_rows:,} weekly groups",
        ),
        Check(
            "rebuild",
            "refresh_weekly_performance(id, null, false), p99",
            p99,
            TARGET_ONE_STUDENT_P99_MS,
            unit="ms",
            why=f"p50 {p50:.1f} ms: a fixed cost per call (locks, ~1 ms of planning) plus 3 years of rows"
            + (f"; after a full refresh in the same session a generic plan: {settled:,.0f} ms" if generic else ""),
        ),
    ]
    section.notes.append(
        "Each run, in seconds: "
        + "; ".join(f"{label}: " + ", ".join(f"{x:.2f}" for x in v) for label, v in seconds.items())
        + f". The full refreshes wrote {written} rows in all"
        + (" (the triggers had kept every row exact)." if written == 0 else ": the aggregates had drifted!")
    )
    section.notes.append(
        f"One student in the session that had just run the full refresh: {len(after_full)} calls took "
        + ", ".join(fmt_ms(x) for x in after_full)
        + (
            ". PL/pgSQL caches the plan of rebuild_weekly_rows' statement per session; after 5 calls it compares"
            " the generic plan with the average custom plan, which the full refresh made expensive, and keeps the"
            " generic plan, whose `(p_student_profile_id is null or ... = p_student_profile_id)` filters scan"
            " whole tables (see docs/benchmark-analysis.md)."
            if generic
            else ": no generic-plan penalty (the calls after the 5th cost what a fresh session's do)."
        )
    )
    section.notes.append("")
    section.notes.append(
        "Storage, after `VACUUM ANALYZE` (tuple = the average row's data and header, as"
        " `pg_column_size` counts it; table = heap and TOAST files; indexes per row; total = with"
        " every index):"
    )
    section.notes.append("")
    section.notes += [
        "| relation | rows | tuple | table | indexes per row | total | total per row |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    section.notes += ["| " + " | ".join(r) + " |" for r in storage(conn)]
    section.notes.append("")
    section.notes.append(
        f"A weekly row takes {weekly_bytes:,.0f} bytes on disk with its index (the seed estimated"
        f" ~{SEED_ESTIMATE_BYTES}, the bare values): the tuple header is 24 bytes, the exact numeric"
        " sums and two timestamps are kept beside the averages; the rest of the file is free space:"
        " fillfactor 80 (room for HOT updates) and the room left by the load's own updates (each"
        " week's row was written by the quiz COPY, the assignment COPY and the grading UPDATE),"
        " which VACUUM keeps for the next writes rather than returning it."
    )
    return section
