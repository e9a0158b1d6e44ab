"""Named pieces: the hot paths with the SQL functions before and after issue 23's split, same data, one run.

Two copies of the district database (CREATE DATABASE ... TEMPLATE): one keeps head's functions, the other
gets the texts of 210_source_triggers.sql, 430_weekly_trend_json.sql and 600_weekly_trend_alerts.sql as they
were before the split (git show BEFORE_REF:db/functions/...). Both then take the same writes and the same reads,
alternating which goes first (ABBA), each over long-lived connections of its own.
"""

from __future__ import annotations

import random
import subprocess
import time
from datetime import UTC, date, datetime

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from web.ops.embedded import PROJECT_ROOT

from .common import Section, checkpoint, fmt_ms, log, percentile, round_order
from .read import ANSWER, MIN_CLASS, WEEKS, sample_students
from .report import PIECES_SECTION as TITLE

# The last commit whose db/functions held the three functions whole (issue 23's split came after it).
BEFORE_REF = "be2e8e8"
SPLIT_FILES = ("210_source_triggers.sql", "430_weekly_trend_json.sql", "600_weekly_trend_alerts.sql")
BEFORE, AFTER = "before (whole)", "after (named pieces)"
DATABASES = {BEFORE: "bench_pieces_before", AFTER: "bench_pieces_after"}
WEEK_SIZE = 10  # scores already in the week each timed INSERT lands in: the in-place UPDATE path
WARMUP = 20
SERVER_SIDE = 200  # EXPLAIN ANALYZE samples per side, kind and round
INSERT = "insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values (%s, %s, %s, %s)"


def previous_texts() -> list[str] | None:
    try:
        return [
            subprocess.run(
                ["git", "show", f"{BEFORE_REF}:db/functions/{name}"],
                cwd=PROJECT_ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            for name in SPLIT_FILES
        ]
    except (OSError, subprocess.CalledProcessError):
        return None


def clone(admin_url: str, template: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("create database {} template {} strategy file_copy").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return make_conninfo(admin_url, dbname=name)


def make_students(conn: psycopg.Connection, count: int, week: date, course: int) -> list[int]:
    """New students, each with a week already holding WEEK_SIZE scores (the same in both databases)."""
    ids = [
        r[0]
        for r in conn.execute(
            "insert into student_profile (display_name, time_zone)"
            " select 'Piece ' || g, 'Europe/London' from generate_series(1, %s) g returning id",
            (count,),
        ).fetchall()
    ]
    conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, score, completed_at)"
        " select s, %s, 50 + (s * 7 + n) %% 50, %s::timestamptz + (n %% 5) * interval '1 day'"
        "   from unnest(%s::bigint[]) s, generate_series(1, %s) n",
        (course, datetime(week.year, week.month, week.day, 10, tzinfo=UTC), ids, WEEK_SIZE),
    )
    conn.execute("vacuum analyze quiz_attempt, student_weekly_performance")
    return ids


def execution_ms(conn: psycopg.Connection, query: str, params) -> float:
    """The server's execution time of one statement (its triggers and functions included), without the
    round trip and the commit: EXPLAIN ANALYZE in a transaction rolled back, so nothing grows."""
    with conn.transaction(force_rollback=True):
        plan = [row[0] for row in conn.execute("explain (analyze, timing off, costs off, summary) " + query, params)]
    return float(next(line for line in plan if line.startswith("Execution Time:")).split()[2])


def run_pieces(admin_url: str, template: str, args, end: date, week: date, course: int) -> Section:
    section = Section(
        "pieces",
        TITLE[3:],
        [
            "Issue 23 split `tg_score_source__maintain_weekly()`, `weekly_trend_json()` and `weekly_trend_alerts()`",
            "into named helpers (SQL-language where the planner can inline them). Two copies of the district",
            f"database: one with head's functions, one with the three files as they were at {BEFORE_REF} (before",
            "the split), the same data, the same writes and reads, one statement a side in turn (which side goes",
            f"first alternates; `bench/pieces.py`). Single-row INSERT: autocommit, into a week holding {WEEK_SIZE} scores (the",
            "trigger's in-place UPDATE), client time. The parents' answer: `weekly_trend_json()` as the reader",
            f"role, {WEEKS} weeks, no access-log entry, client time. Server execution: EXPLAIN ANALYZE of the",
            f"same statement ({SERVER_SIDE} a side and round, rolled back), without the round trip and the commit.",
        ],
        ["measure", BEFORE, AFTER, "after / before"],
    )
    texts = previous_texts()
    if texts is None:
        section.skipped = f"Skipped: `git show {BEFORE_REF}:db/functions/...` failed (not a checkout?)."
        return section
    urls = {v: clone(admin_url, template, name) for v, name in DATABASES.items()}
    with psycopg.connect(urls[BEFORE], autocommit=True) as conn:
        for text in texts:
            conn.execute(text)
    rounds = args.rounds
    per_round = max(args.single // rounds, 50)
    reads_per_round = max(args.read_students // rounds, 50)
    students = sample_students(args.students, reads_per_round * rounds, seed=5)
    writers, tokens, conns, readers = {}, {}, {}, {}
    try:
        for v, url in urls.items():
            conns[v] = psycopg.connect(url, autocommit=True)
            readers[v] = psycopg.connect(url, autocommit=True)
            writers[v] = make_students(conns[v], (per_round + WARMUP) * rounds, week, course)
            from .http import issue_tokens  # noqa: PLC0415 - the same guardians and tokens as the read section

            tokens[v] = dict(issue_tokens(readers[v], students))
            readers[v].execute("set role weekly_trends_reader")
            checkpoint(conns[v])
        assert writers[BEFORE] == writers[AFTER], "both copies must give the new students the same ids"
        inserts: dict[str, list[float]] = {v: [] for v in urls}
        reads: dict[str, list[float]] = {v: [] for v in urls}
        server: dict[tuple[str, str], list[float]] = {(v, k): [] for v in urls for k in ("insert", "answer")}
        answers: dict[str, dict[int, str]] = {v: {} for v in urls}
        for r in range(rounds):
            mine = writers[BEFORE][r * (per_round + WARMUP) : (r + 1) * (per_round + WARMUP)]
            batch = students[r * reads_per_round : (r + 1) * reads_per_round]
            sides = round_order(r, (BEFORE, AFTER))
            for v in sides:
                for s in mine[-WARMUP:]:
                    at = datetime(week.year, week.month, week.day, 11, tzinfo=UTC)
                    conns[v].execute(INSERT, (s, course, 50, at))
                for s in batch[:WARMUP]:
                    reader_params = {"token": tokens[v][s], "student": s, "weeks": WEEKS, "end": end}
                    readers[v].execute(ANSWER, reader_params | {"min_class": MIN_CLASS}).fetchall()
            # One statement a side in turn, the first side alternating: a change of the machine's load
            # (other processes, a checkpoint) falls on both sides alike.
            rng = random.Random(r)
            for n, s in enumerate(mine[:-WARMUP]):
                values = (
                    s,
                    course,
                    round(rng.uniform(0, 100), 2),
                    datetime(week.year, week.month, week.day, 12, tzinfo=UTC),
                )
                for v in sides if n % 2 == 0 else sides[::-1]:
                    t0 = time.perf_counter_ns()
                    conns[v].execute(INSERT, values)
                    inserts[v].append((time.perf_counter_ns() - t0) / 1000)
            for n, s in enumerate(batch):
                for v in sides if n % 2 == 0 else sides[::-1]:
                    params = {"token": tokens[v][s], "student": s, "weeks": WEEKS, "end": end, "min_class": MIN_CLASS}
                    t0 = time.perf_counter_ns()
                    answers[v][s] = readers[v].execute(ANSWER, params).fetchone()[0]
                    reads[v].append((time.perf_counter_ns() - t0) / 1e6)
            for n, s in enumerate(mine[:SERVER_SIDE]):
                at = datetime(week.year, week.month, week.day, 13, tzinfo=UTC)
                for v in sides if n % 2 == 0 else sides[::-1]:
                    server[(v, "insert")].append(1000 * execution_ms(conns[v], INSERT, (s, course, 50, at)))
            for n, s in enumerate(batch[:SERVER_SIDE]):
                for v in sides if n % 2 == 0 else sides[::-1]:
                    params = {"token": tokens[v][s], "student": s, "weeks": WEEKS, "end": end, "min_class": MIN_CLASS}
                    server[(v, "answer")].append(execution_ms(readers[v], ANSWER, params))
            log(
                f"pieces round {r + 1}/{rounds}: "
                + "; ".join(
                    f"{v} insert p50 {percentile(inserts[v][-per_round:], 50):.0f} µs,"
                    f" server {percentile(server[(v, 'insert')][-SERVER_SIDE:], 50):.0f} µs,"
                    f" answer p50 {percentile(reads[v][-len(batch) :], 50):.3f} ms,"
                    f" server {percentile(server[(v, 'answer')][-SERVER_SIDE:], 50):.3f} ms"
                    for v in (BEFORE, AFTER)
                )
            )
        same_answers = sum(answers[BEFORE][s] == answers[AFTER][s] for s in students)
        same_weeks = (
            conns[BEFORE]
            .execute(
                "select md5(string_agg((t.student_profile_id, t.week_start_date, t.year, t.week_number, t.quiz_sum, t.quiz_count,"
                " t.assignment_sum, t.assignment_count, t.quiz_average, t.assignment_average, t.overall_average)::text,"
                " ',' order by t.student_profile_id, t.week_start_date))"
                "  from student_weekly_performance t where student_profile_id = any(%s)",
                (writers[BEFORE],),
            )
            .fetchone()[0]
            == conns[AFTER]
            .execute(
                "select md5(string_agg((t.student_profile_id, t.week_start_date, t.year, t.week_number, t.quiz_sum, t.quiz_count,"
                " t.assignment_sum, t.assignment_count, t.quiz_average, t.assignment_average, t.overall_average)::text,"
                " ',' order by t.student_profile_id, t.week_start_date))"
                "  from student_weekly_performance t where student_profile_id = any(%s)",
                (writers[AFTER],),
            )
            .fetchone()[0]
        )
    finally:
        for c in [*conns.values(), *readers.values()]:
            c.close()
    rows = [
        ("single-row INSERT, mean", lambda v: sum(inserts[v]) / len(inserts[v]), "µs"),
        ("single-row INSERT, p50", lambda v: percentile(inserts[v], 50), "µs"),
        ("single-row INSERT, p99", lambda v: percentile(inserts[v], 99), "µs"),
        ("single-row INSERT, server execution p50", lambda v: percentile(server[(v, "insert")], 50), "µs"),
        ("parents' answer, p50", lambda v: percentile(reads[v], 50), "ms"),
        ("parents' answer, p99", lambda v: percentile(reads[v], 99), "ms"),
        ("parents' answer, server execution p50", lambda v: percentile(server[(v, "answer")], 50), "ms"),
    ]
    for label, measure, unit in rows:
        before, after = measure(BEFORE), measure(AFTER)
        shown = (lambda x: f"{x:,.0f} µs") if unit == "µs" else fmt_ms
        section.rows.append([label, shown(before), shown(after), f"{after / before:.2f}×"])
    section.notes.append(
        f"{len(inserts[BEFORE]):,} timed INSERTs and {len(reads[BEFORE]):,} answers per side over {rounds} rounds."
        f" The answers of the two sides were identical for {same_answers:,} of {len(students):,} students, and"
        f" the written weekly rows {'identical' if same_weeks else 'DIFFERENT'}."
        " Per round (insert p50 µs; answer p50 ms): "
        + "; ".join(
            f"{v}: "
            + ", ".join(
                f"{percentile(inserts[v][i * per_round : (i + 1) * per_round], 50):.0f}"
                f"/{percentile(reads[v][i * reads_per_round : (i + 1) * reads_per_round], 50):.3f}"
                for i in range(rounds)
            )
            for v in (BEFORE, AFTER)
        )
        + "."
    )
    for name in DATABASES.values():
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    return section
