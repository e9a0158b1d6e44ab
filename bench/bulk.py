"""Bulk load: one INSERT ... SELECT of --bulk-rows rows into an emptied quiz_attempt, per variant.

A database of its own (students and courses only), so each round can start
from truncated tables: the same fresh files for every variant.
"""

from __future__ import annotations

import time
from datetime import datetime

import psycopg

from .common import (
    OURS,
    PLAIN,
    SEED_BASELINE,
    Check,
    Section,
    checkpoint,
    fmt_ratio,
    install_seed_baseline,
    log,
    median,
    round_order,
    use_variant,
)
from .district import TIME_ZONES

BULK_STUDENTS = 2000
COURSES = 50
COURSES_PER_STUDENT = 6
SCORES_PER_STUDENT_WEEK = 11
TARGET_BULK = 1.3  # issue 11
# A school's shape: each student in 6 of the courses, about 11 scores per
# student and week, the weeks running back from `last_monday`. Student s
# takes courses 1 + (7s + k) mod COURSES, k = 0..5.
BULK_INSERT = """
insert into quiz_attempt (student_profile_id, course_id, score, completed_at)
select s, 1 + (7 * s + floor(random() * %(per_student)s)::bigint) %% %(courses)s,
       round((random() * 100)::numeric, 2),
       %(last_monday)s::timestamptz - floor(random() * %(weeks)s) * interval '7 days' + random() * interval '5 days'
  from (select 1 + floor(random() * %(students)s)::bigint as s from generate_series(1, %(rows)s)) g
"""


def prepare(conn: psycopg.Connection) -> None:
    conn.execute(
        "insert into student_profile (id, display_name, time_zone)"
        " select g, 'Student ' || g, (%s::text[])[1 + g %% %s] from generate_series(1, %s) g",
        (list(TIME_ZONES), len(TIME_ZONES), BULK_STUDENTS),
    )
    conn.execute("insert into course (id, name) select g, 'Course ' || g from generate_series(1, %s) g", (COURSES,))
    install_seed_baseline(conn)
    conn.execute("vacuum analyze")


def reset(conn: psycopg.Connection) -> None:
    # TRUNCATE is refused while rows feed the aggregates: lift that trigger for the reset.
    with conn.transaction():
        conn.execute("alter table quiz_attempt disable trigger _100_refuse_truncate")
        conn.execute("truncate quiz_attempt, student_weekly_performance")
        conn.execute("alter table quiz_attempt enable trigger _100_refuse_truncate")


def run_bulk(conn: psycopg.Connection, args, last_monday: datetime) -> Section:
    weeks = max(1, args.bulk_rows // (BULK_STUDENTS * SCORES_PER_STUDENT_WEEK))
    params = {
        "students": BULK_STUDENTS,
        "courses": COURSES,
        "per_student": COURSES_PER_STUDENT,
        "last_monday": last_monday,
        "weeks": weeks,
        "rows": args.bulk_rows,
    }
    prepare(conn)
    seconds: dict[str, list[float]] = {OURS: [], PLAIN: [], SEED_BASELINE: []}
    # The seed's row trigger takes minutes per million rows: one run, after the ABBA rounds.
    plan = [(r, v) for r in range(args.rounds) for v in round_order(r, (OURS, PLAIN))] + [(0, SEED_BASELINE)]
    for r, variant in plan:
        reset(conn)
        use_variant(conn, variant)
        checkpoint(conn)
        conn.execute("select setseed(0.25)")  # identical rows for every variant
        start = time.perf_counter()
        conn.execute(BULK_INSERT, params)
        seconds[variant].append(time.perf_counter() - start)
        log(f"bulk round {r + 1} {variant}: {seconds[variant][-1]:.2f} s")
    use_variant(conn, OURS)
    m = {v: median(s) for v, s in seconds.items()}
    section = Section(
        "bulk",
        "Bulk load",
        [
            f"One `INSERT INTO quiz_attempt (...) SELECT ... FROM generate_series(1, {args.bulk_rows:,})` in a database",
            f"of its own ({BULK_STUDENTS:,} students, {COURSES} courses): each student takes {COURSES_PER_STUDENT} courses and",
            f"has about {SCORES_PER_STUDENT_WEEK} scores a week over {weeks} weeks; `setseed()` makes the rows identical",
            "for every variant. Each run starts from truncated tables after a `CHECKPOINT`; ours and no triggers",
            f"alternate over {args.rounds} rounds (medians), the seed baseline runs once (its row trigger is slow).",
        ],
        ["measurement", OURS, PLAIN, SEED_BASELINE, "ours / no triggers", "seed / no triggers"],
    )
    section.rows.append(
        [
            f"INSERT ... SELECT of {args.bulk_rows:,} rows",
            *(f"{m[v]:,.2f} s" for v in seconds),
            fmt_ratio(m[OURS] / m[PLAIN]),
            fmt_ratio(m[SEED_BASELINE] / m[PLAIN]),
        ]
    )
    section.rows.append(["rows per second", *(f"{args.bulk_rows / m[v]:,.0f}/s" for v in seconds), "", ""])
    section.checks.append(
        Check(
            "bulk",
            f"bulk INSERT ... SELECT of {args.bulk_rows:,} rows, ours / no triggers",
            m[OURS] / m[PLAIN],
            TARGET_BULK,
        )
    )
    section.notes.append(
        "Each run, in seconds: "
        + "; ".join(f"{v}: " + ", ".join(f"{x:.2f}" for x in s) for v, s in seconds.items())
        + "."
    )
    return section
