"""The cost of the access decision on the parents' answer (issue 25): weekly_trend_json() at revision 0014
against head, on identical data in two databases of one server, calls interleaved (each round alternates
which database goes first), so load on a shared machine falls on both alike.

    python -m bench.access_ab [--students 400] [--rounds 5]

Each student has a guardian with a token, 8 courses, scores on 5 school days of 12 weeks, a birth date
that keeps the link active (the common case: the decision must be computed, then lets the read through).
Prints p50 and p90 of each and the median of the paired differences.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from web.ops.cli import migrate
from web.ops.embedded import start_server

DATA = """
insert into course (name) select 'Course ' || c from generate_series(1, 8) c;
insert into student_profile (display_name, time_zone)
select 'Student ' || s, 'Europe/London' from generate_series(1, %(students)s) s;
insert into guardian (email) select 'g' || s || '@example.org' from generate_series(1, %(students)s) s;
insert into guardian_student (guardian_id, student_profile_id) select s, s from generate_series(1, %(students)s) s;
insert into guardian_token (guardian_id, token_hash, expires_at)
select s, sha256(convert_to('wt_' || lpad(s::text, 64, '0'), 'UTF8')), now() + interval '1 day'
  from generate_series(1, %(students)s) s;
insert into quiz_attempt (student_profile_id, course_id, score, completed_at)
select s, 1 + (s + d) %% 8, 50 + (s * 7 + d * 13) %% 50, timestamptz '2026-09-07 10:00+00' + make_interval(days => d)
  from generate_series(1, %(students)s) s, generate_series(0, 83) d
 where extract(isodow from date '2026-09-07' + d) < 6;
select refresh_course_weekly_performance();
analyze;
"""
CALL = (
    "select answer from weekly_trend_json(sha256(convert_to(%s, 'UTF8')), null, %s, 6, date '2026-11-23', 10,"
    " 'bench', false)"
)


def timed(conn: psycopg.Connection, student: int) -> float:
    token = "wt_" + str(student).rjust(64, "0")
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        conn.execute(CALL, (token, student)).fetchone()
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.access_ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="weekly-trends-ab-") as tmp:
        server = start_server(Path(tmp) / "data", cleanup_mode="delete")
        try:
            admin = server.get_uri()
            urls = {}
            with psycopg.connect(admin, autocommit=True) as conn:
                for name in ("before", "after"):
                    conn.execute(f"create database ab_{name}")
            for name, revision in (("before", "0014"), ("after", "head")):
                url = psycopg.conninfo.make_conninfo(admin, dbname=f"ab_{name}")
                urls[name] = url
                migrate(url, revision)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(DATA.replace("%(students)s", str(args.students)).replace("%%", "%"))
                    if revision == "head":  # a birth date: the decision is computed, and lets the read through
                        conn.execute("update student_profile set birth_date = date '2012-01-01' + id::integer")
            conns = {name: psycopg.connect(url, autocommit=True) for name, url in urls.items()}
            times: dict[str, list[float]] = {"before": [], "after": []}
            diffs = []
            for student in range(1, min(args.students, 50) + 1):  # warm both: plans, caches
                for name in conns:
                    timed(conns[name], student)
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for student in range(1, args.students + 1):
                    got = {name: timed(conns[name], student) for name in order}
                    for name, ms in got.items():
                        times[name].append(ms)
                    diffs.append(got["after"] - got["before"])
            for conn in conns.values():
                conn.close()
        finally:
            server.cleanup()

    def q(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100)[p - 1]

    for name in ("before", "after"):
        print(f"{name:7} p50 {statistics.median(times[name]):.3f} ms  p90 {q(times[name], 90):.3f} ms")
    ratio = statistics.median(times["after"]) / statistics.median(times["before"])
    print(f"after/before p50 {ratio:.3f}x; median paired difference {statistics.median(diffs) * 1000:.0f} µs")
    print(f"({args.students} students x {args.rounds} rounds, interleaved; each call its own transaction)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
