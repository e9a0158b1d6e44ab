"""Measures what one school year costs in PostgreSQL: rows and bytes per table (docs/scaling.md).

    .venv/bin/python scripts/measure_sizes.py [--students 2000] [--weeks 38]

Creates (and finally drops) the database wt_sizing on DATABASE_URL's server (else the embedded
one), migrates it, writes a school year through the triggers in one INSERT ... SELECT per table
(each student: 3 quizzes and 2 graded assignments a week, over 5 courses; two access-log
entries a week), VACUUMs, and prints
pg_total_relation_size per relation. Not a benchmark: it times nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from web.ops.cli import migrate  # noqa: E402
from web.ops.embedded import database_url  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TABLES = [
    "quiz_attempt",
    "assignment_submission",
    "student_weekly_performance",
    "course_weekly_performance",
    "access_log",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--weeks", type=int, default=38)
    args = parser.parse_args()
    admin_url = database_url()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("drop database if exists wt_sizing with (force)")
        admin.execute("create database wt_sizing")
    url = make_conninfo(admin_url, dbname="wt_sizing")
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("insert into course (name) select 'Course ' || n from generate_series(1, 5) n")
            conn.execute(
                "insert into student_profile (display_name, time_zone)"
                " select 'Student ' || n, 'Europe/London' from generate_series(1, %s) n",
                (args.students,),
            )
            conn.execute("select setseed(0.5)")
            # Scores inside the school weeks, each student's spread over the 5 courses.
            conn.execute(
                """
                insert into quiz_attempt (student_profile_id, course_id, score, completed_at)
                select s.id, 1 + (s.id + q) %% 5, round((40 + random() * 60)::numeric, 2),
                       timestamptz '2025-09-01 08:00Z' + make_interval(weeks => w, days => q, hours => (random() * 8)::int)
                  from student_profile s, generate_series(0, %s - 1) w, generate_series(0, 2) q
                """,
                (args.weeks,),
            )
            conn.execute(
                """
                insert into assignment_submission (student_profile_id, course_id, percentage, is_graded, submitted_at, graded_at)
                select s.id, 1 + (s.id + a + 3) %% 5, round((40 + random() * 60)::numeric, 2), true,
                       timestamptz '2025-09-01 08:00Z' + make_interval(weeks => w, days => a + 1),
                       timestamptz '2025-09-01 08:00Z' + make_interval(weeks => w, days => a + 3)
                  from student_profile s, generate_series(0, %s - 1) w, generate_series(0, 1) a
                """,
                (args.weeks,),
            )
            # The access log of a parent who opens the figures twice a week.
            conn.execute(
                """
                insert into access_log (occurred_at, guardian_id, student_profile_id, endpoint)
                select timestamptz '2025-09-01 18:00Z' + make_interval(weeks => w, days => r * 3), s.id, s.id,
                       'GET /api/v1/students/<student_id>/weekly-trend'
                  from student_profile s, generate_series(0, %s - 1) w, generate_series(0, 1) r
                """,
                (args.weeks,),
            )
            conn.execute("select refresh_course_weekly_performance()")
            for table in TABLES:
                conn.execute(sql.SQL("vacuum (analyze) {}").format(sql.Identifier(table)))
            print(f"{args.students} students, {args.weeks} weeks; PostgreSQL {conn.info.server_version}")
            print(f"{'relation':36} {'rows':>10} {'total bytes':>14} {'bytes/row':>10} {'rows/student-year':>18}")
            for table in TABLES:
                rows = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table))).fetchone()[0]
                size = conn.execute("select pg_total_relation_size(%s::regclass)", (table,)).fetchone()[0]
                per_row = size / rows if rows else 0
                print(f"{table:36} {rows:>10} {size:>14} {per_row:>10.0f} {rows / args.students:>18.1f}")
            assert conn.execute("select count(*) from check_weekly_performance()").fetchone()[0] == 0
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("drop database if exists wt_sizing with (force)")


if __name__ == "__main__":
    main()
