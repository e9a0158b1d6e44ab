"""The cost of missing work on the parents' answer (issue 26): weekly_trend_json() with three texts of
db/functions/240_missing_work.sql on identical data, calls interleaved.

    python -m bench.missing_ab --database-url URL [--template bench_district] [--before-ref main]
                               [--students 1000] [--rounds 4]

Three copies (CREATE DATABASE ... TEMPLATE) of a district loaded by `python -m bench.run --database-url URL`
(its course work, enrollments and excusals): "none" with student_missing_work() returning nothing (the answer
without missing work), "before" with 240_missing_work.sql as at --before-ref, "after" with the worktree's.
Each student's answer is timed on the three in turn, the order rotating per student, each over a long-lived
connection as the reader role (6 weeks to the district's last, no access-log entry: bench/read.py's ANSWER).
Prints p50 and p90 of each, the ratios, and whether "before" and "after" gave identical answers.

Kept for isolating one file's cost (the rest of the schema at head on all three). Head against the released
revision 0014 as a whole, the issue's "before", is `python -m bench.run --only release` (bench/release.py).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import date

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from web.ops.embedded import PROJECT_ROOT

from .http import issue_tokens
from .read import ANSWER, MIN_CLASS, WEEKS, sample_students

FILE = "db/functions/240_missing_work.sql"
# No missing work: the same signature, no rows (what the answer cost before issue 26's missing work).
NONE = """
create or replace function student_missing_work(p_student_profile_id bigint, p_from date default null,
                                                p_until date default null)
returns table (course_work_id bigint, course_id bigint, course_name text, title text, kind text,
               due_at timestamptz, week_start_date date)
language sql stable parallel safe
as $$ select null::bigint, null::bigint, null::text, null::text, null::text, null::timestamptz, null::date
       where false $$;
"""
SIDES = ("none", "before", "after")


def clone(admin_url: str, template: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("create database {} template {} strategy file_copy").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return make_conninfo(admin_url, dbname=name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.missing_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="superuser URL of the server holding the district")
    parser.add_argument("--template", default="bench_district")
    parser.add_argument("--before-ref", default="main", help="git ref whose 240_missing_work.sql is 'before'")
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    texts = {
        "none": NONE,
        "before": subprocess.run(
            ["git", "show", f"{args.before_ref}:{FILE}"], cwd=PROJECT_ROOT, check=True, capture_output=True, text=True
        ).stdout,
        "after": (PROJECT_ROOT / FILE).read_text(),
    }
    with psycopg.connect(make_conninfo(args.database_url, dbname=args.template)) as conn:
        total, end = conn.execute(
            "select (loaded->>'students')::int, (loaded->>'last_day')::date from bench_meta"
        ).fetchone()
    students = sample_students(total, args.students, seed=11)
    urls = {side: clone(args.database_url, args.template, f"bench_missing_{side}") for side in SIDES}
    conns, tokens = {}, {}
    for side, url in urls.items():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(texts[side])
            tokens[side] = dict(issue_tokens(conn, students))
            conn.execute("vacuum analyze guardian, guardian_student, guardian_token")
        conns[side] = psycopg.connect(url, autocommit=True)
        conns[side].execute("set role weekly_trends_reader")

    def call(side: str, student: int) -> tuple[float, str]:
        params = {
            "token": tokens[side][student],
            "student": student,
            "weeks": WEEKS,
            "end": end,
            "min_class": MIN_CLASS,
        }
        t0 = time.perf_counter_ns()
        answer = conns[side].execute(ANSWER, params).fetchone()[0]
        return (time.perf_counter_ns() - t0) / 1e6, answer

    times: dict[str, list[float]] = {side: [] for side in SIDES}
    same = differ = 0
    try:
        for student in students[:100]:  # warm: plans, caches
            for side in SIDES:
                call(side, student)
        for r in range(args.rounds):
            for n, student in enumerate(students):
                k = (n + r) % 3
                order = SIDES[k:] + SIDES[:k]
                got = {side: call(side, student) for side in (order if n % 2 == 0 else order[::-1])}
                for side, (ms, _) in got.items():
                    times[side].append(ms)
                if r == 0:
                    if got["before"][1] == got["after"][1]:
                        same += 1
                    else:
                        differ += 1
    finally:
        for conn in conns.values():
            conn.close()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            for side in SIDES:
                conn.execute(
                    sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(f"bench_missing_{side}"))
                )

    def q(values: list[float], p: int) -> float:
        return statistics.quantiles(values, n=100)[p - 1]

    p50 = {side: statistics.median(times[side]) for side in SIDES}
    for side in SIDES:
        print(f"{side:7} p50 {p50[side]:.3f} ms  p90 {q(times[side], 90):.3f} ms  p99 {q(times[side], 99):.3f} ms")
    print(
        f"before/none p50 {p50['before'] / p50['none']:.2f}x; after/none {p50['after'] / p50['none']:.2f}x;"
        f" after/before {p50['after'] / p50['before']:.2f}x"
    )
    print(
        f"answers before == after: {same} of {same + differ} students"
        f" ({len(students)} students x {args.rounds} rounds, end {date.isoformat(end)}, interleaved)"
    )
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
