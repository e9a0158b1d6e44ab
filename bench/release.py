"""Head against a released revision: the parents' answer and the single-row INSERT, same data, one run.

Two copies of the district database (CREATE DATABASE ... TEMPLATE; the district itself stays as it is, for
the other sections and for --reuse): one is downgraded for real to BEFORE_REVISION by Alembic, with the
configuration `weekly-trends migrate` and `downgrade` use (its schema and functions, issues 24-27 undone);
the other stays at head. Both then take the same writes and the same reads, one statement a side in turn
(which side goes first alternates), each over long-lived connections of its own:

- the parents' answer (bench/read.py's ANSWER as the reader role) for the same district students;
- single-row INSERTs of a quiz score into a week already holding WEEK_SIZE scores, with our triggers on and
  off (common.use_variant: the "no triggers" schema), switched on both sides between blocks (ABBA by
  round). Where the score tables have course_work_id (head), every score is linked to a piece of work of
  its course, due that week, the student enrolled in the course: the path of writers that link scores,
  with its foreign-key checks and whatever head's triggers do with a linked score.

Nothing here assumes what head's triggers or functions are: it measures whatever the two copies hold.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from web.ops.cli import migrate

from .common import (
    OURS,
    PLAIN,
    Check,
    Section,
    checkpoint,
    fmt_ms,
    fmt_ratio,
    log,
    percentile,
    round_order,
    use_variant,
)
from .district import TIME_ZONES
from .pieces import clone, execution_ms
from .read import ANSWER, MIN_CLASS, WEEKS, sample_students

BEFORE_REVISION = "0014"  # the last revision released before issues 24-27 (revision 0015)
TITLE = f"Head against revision {BEFORE_REVISION}: the parents' answer and the single-row INSERT"
BEFORE, AFTER = f"revision {BEFORE_REVISION}", "head"
DATABASES = {BEFORE: "bench_release_before", AFTER: "bench_release_after"}
VARIANTS = (OURS, PLAIN)
WEEK_SIZE = 10  # scores already in the week each timed INSERT lands in: the in-place UPDATE path
WARMUP = 20
SERVER_SIDE = 200  # EXPLAIN ANALYZE samples per side, kind (and variant) and round
TARGET_ANSWER = 1.20  # issue 26: the answer's p50 may grow by at most 20%
COLUMNS = "student_profile_id, course_id, score, completed_at"
INSERT = f"insert into quiz_attempt ({COLUMNS}) values (%s, %s, %s, %s)"
INSERT_LINKED = f"insert into quiz_attempt ({COLUMNS}, course_work_id) values (%s, %s, %s, %s, %s)"
# The pieces of work (on a side that links scores) the writers' scores link to: the week's first WEEK_SIZE
# scores one each, then the timed INSERT, the warm-up one and the rolled-back EXPLAIN ANALYZE one.
TIMED, WARM, EXPLAINED = WEEK_SIZE, WEEK_SIZE + 1, WEEK_SIZE + 2


def downgrade(url: str, revision: str) -> None:
    """alembic downgrade, as `weekly-trends downgrade` runs it (db.migrations.alembic_config())."""
    from alembic import command

    from db.migrations import alembic_config

    command.downgrade(alembic_config(url), revision)


def links_scores(conn: psycopg.Connection) -> bool:
    """Whether this schema's quiz_attempt has course_work_id (the writer contract's link to course work)."""
    return (
        conn.execute(
            "select 1 from pg_attribute where attrelid = 'quiz_attempt'::regclass and attname = 'course_work_id'"
            " and not attisdropped"
        ).fetchone()
        is not None
    )


def make_writers(conn: psycopg.Connection, count: int, week: date, course: int, linked: bool) -> tuple[list, list]:
    """New students (spread over the district's time zones), each with a week already holding WEEK_SIZE
    scores, written with our triggers on; the same ids and rows on both sides. On a side that links scores
    also WEEK_SIZE + 3 pieces of work of the course due that week, each student enrolled in the course, and
    the week's scores linked one a piece. Returns the students and the pieces' ids (none when not linked)."""
    use_variant(conn, OURS)
    monday = datetime(week.year, week.month, week.day, tzinfo=UTC)
    ids = [
        r[0]
        for r in conn.execute(
            "insert into student_profile (display_name, time_zone)"
            " select 'Release ' || g, (%s::text[])[1 + g %% 4] from generate_series(1, %s) g returning id",
            (list(TIME_ZONES), count),
        ).fetchall()
    ]
    pieces: list[int] = []
    if linked:
        pieces = [
            r[0]
            for r in conn.execute(
                "insert into course_work (course_id, title, kind, due_at)"
                " select %s, 'Release piece ' || n, 'quiz', %s::timestamptz + interval '4 days 15 hours'"
                "   from generate_series(1, %s) n order by n returning id",
                (course, monday, WEEK_SIZE + 3),
            ).fetchall()
        ]
        conn.execute(
            "insert into enrollment (student_profile_id, course_id, start_on) select s, %s, %s"
            "  from unnest(%s::bigint[]) s",
            (course, week - timedelta(weeks=4), ids),
        )
    conn.execute(
        f"insert into quiz_attempt ({COLUMNS}{', course_work_id' if linked else ''})"
        " select s, %(course)s, 50 + (s * 7 + n) %% 50, %(monday)s::timestamptz + interval '10 hours'"
        "                                               + (n %% 5) * interval '1 day'"
        + (", (%(pieces)s::bigint[])[n]" if linked else "")
        + "   from unnest(%(ids)s::bigint[]) s, generate_series(1, %(size)s) n",
        {"course": course, "monday": monday, "ids": ids, "size": WEEK_SIZE, "pieces": pieces},
    )
    return ids, pieces


def without(value, keys: set[str]):
    """A parsed JSON value without the object keys in `keys`, at any depth."""
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def key_names(value, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        into.update(value)
        for v in value.values():
            key_names(v, into)
    elif isinstance(value, list):
        for v in value:
            key_names(v, into)
    return into


def weekly_digest(conn: psycopg.Connection, students: list[int]) -> str:
    return conn.execute(
        "select md5(string_agg((t.student_profile_id, t.week_start_date, t.quiz_sum, t.quiz_count,"
        " t.assignment_sum, t.assignment_count, t.quiz_average, t.assignment_average, t.overall_average)::text,"
        " ',' order by t.student_profile_id, t.week_start_date))"
        "  from student_weekly_performance t where student_profile_id = any(%s)",
        (students,),
    ).fetchone()[0]


def run_release(admin_url: str, template: str, args, end: date, week: date, course: int) -> Section:
    clock = time.perf_counter()
    section = Section(
        "release",
        TITLE,
        [
            f"Issues 24-27 shipped in revision 0015, after revision {BEFORE_REVISION}. Two copies of the district",
            f"database (CREATE DATABASE ... TEMPLATE, the district itself untouched): one downgraded to {BEFORE_REVISION}",
            "for real (`alembic downgrade`, as `weekly-trends downgrade` runs it: its schema and its functions; the",
            "course work, enrollments and excusals go with it), the other at head; the same data, the same writes",
            "and reads, one statement a side in turn, the first side alternating (`bench/release.py`).",
            f"The parents' answer: `weekly_trend_json()` as the reader role, {WEEKS} weeks to the district's last",
            "day, no access-log entry, the same students (a guardian and a token each, on both sides), client time.",
            f"Single-row INSERT: autocommit, a quiz score into a week holding {WEEK_SIZE} scores (the trigger's",
            "in-place UPDATE), client time, with our triggers (*ours*) and without them (*no triggers*: the",
            "maintaining triggers disabled, foreign keys kept), switched on both copies between blocks, ABBA by",
            "round. At head every score is linked to a piece of work of its course due that week (`course_work_id`,",
            "the student enrolled: the path of writers that link scores, foreign-key checks included); revision",
            f"{BEFORE_REVISION} has no such column. Server execution: EXPLAIN ANALYZE of the same statement",
            f"({SERVER_SIDE} a side and round, rolled back), without the round trip and the commit.",
        ],
        ["measure", BEFORE, AFTER, "head / before"],
    )
    rounds = args.rounds
    per_round = max(args.single // rounds, 50)
    reads_per_round = max(args.read_students // rounds, 50)
    students = sample_students(args.students, reads_per_round * rounds, seed=5)
    started = time.perf_counter()
    urls = {v: clone(admin_url, template, name) for v, name in DATABASES.items()}
    clone_seconds = time.perf_counter() - started
    # At head for sure (a no-op when the district was loaded by this checkout: a --reuse'd one may be older).
    migrate(urls[AFTER])
    log(f"release: downgrading {DATABASES[BEFORE]} to revision {BEFORE_REVISION}")
    started = time.perf_counter()
    downgrade(urls[BEFORE], BEFORE_REVISION)
    downgrade_seconds = time.perf_counter() - started
    admins, conns, readers, tokens, linked, revision = {}, {}, {}, {}, {}, {}
    groups: dict[str, dict[tuple[str, int], list[int]]] = {}
    pieces: dict[str, list[int]] = {}
    try:
        for v, url in urls.items():
            admins[v] = psycopg.connect(url, autocommit=True)
            revision[v] = admins[v].execute("select version_num from alembic_version").fetchone()[0]
            linked[v] = links_scores(admins[v])
            size = per_round + WARMUP
            ids, pieces[v] = make_writers(admins[v], size * len(VARIANTS) * rounds, week, course, linked[v])
            groups[v] = {
                (variant, r): ids[(i * rounds + r) * size : (i * rounds + r + 1) * size]
                for i, variant in enumerate(VARIANTS)
                for r in range(rounds)
            }
            from .http import issue_tokens  # noqa: PLC0415 - the same guardians and tokens as the read section

            tokens[v] = dict(issue_tokens(admins[v], students))
            admins[v].execute(
                "vacuum analyze quiz_attempt, student_weekly_performance, student_profile, guardian, guardian_student,"
                " guardian_token" + (", course_work, enrollment" if linked[v] else "")
            )
            checkpoint(admins[v])
            conns[v] = psycopg.connect(url, autocommit=True)
            readers[v] = psycopg.connect(url, autocommit=True)
            readers[v].execute("set role weekly_trends_reader")
        assert revision[BEFORE] == BEFORE_REVISION, revision
        assert groups[BEFORE] == groups[AFTER], "both copies must give the new students the same ids"

        def insert(v: str, s: int, score: float, hour: int, piece: int) -> tuple[str, tuple]:
            at = datetime(week.year, week.month, week.day, hour, tzinfo=UTC) + timedelta(days=2)
            if linked[v]:
                return INSERT_LINKED, (s, course, score, at, pieces[v][piece])
            return INSERT, (s, course, score, at)

        def answer_params(v: str, s: int) -> dict:
            return {"token": tokens[v][s], "student": s, "weeks": WEEKS, "end": end, "min_class": MIN_CLASS}

        inserts = {(v, variant): [] for v in urls for variant in VARIANTS}
        server = {(v, kind): [] for v in urls for kind in (*VARIANTS, "answer")}
        means = {(v, variant): [] for v in urls for variant in VARIANTS}
        reads: dict[str, list[float]] = {v: [] for v in urls}
        round_reads: dict[tuple[str, int], list[float]] = {(v, r): [] for v in urls for r in range(rounds)}
        answers: dict[str, dict[int, str]] = {v: {} for v in urls}
        for r in range(rounds):
            sides = round_order(r, (BEFORE, AFTER))
            rng = random.Random(r)
            for variant in round_order(r, VARIANTS):
                for v in sides:
                    use_variant(admins[v], variant)
                mine = groups[BEFORE][(variant, r)]
                # Warm-up after the switch (plans were invalidated), into the group's last students, which the
                # timed loop then skips.
                for s in mine[-WARMUP:]:
                    for v in sides:
                        conns[v].execute(*insert(v, s, 50, 11, WARM))
                # One statement a side in turn, the first side alternating: a change of the machine's load
                # (other processes, a checkpoint) falls on both sides alike.
                for n, s in enumerate(mine[:-WARMUP]):
                    score = round(rng.uniform(0, 100), 2)
                    for v in sides if n % 2 == 0 else sides[::-1]:
                        query, params = insert(v, s, score, 12, TIMED)
                        t0 = time.perf_counter_ns()
                        conns[v].execute(query, params)
                        inserts[(v, variant)].append((time.perf_counter_ns() - t0) / 1000)
                for v in sides:
                    means[(v, variant)].append(sum(inserts[(v, variant)][-per_round:]) / per_round)
                for n, s in enumerate(mine[:SERVER_SIDE]):
                    for v in sides if n % 2 == 0 else sides[::-1]:
                        server[(v, variant)].append(1000 * execution_ms(conns[v], *insert(v, s, 50, 13, EXPLAINED)))
            for v in sides:
                use_variant(admins[v], OURS)
            batch = students[r::rounds]
            for s in batch[:WARMUP]:
                for v in sides:
                    readers[v].execute(ANSWER, answer_params(v, s)).fetchall()
            for n, s in enumerate(batch):
                for v in sides if n % 2 == 0 else sides[::-1]:
                    t0 = time.perf_counter_ns()
                    answers[v][s] = readers[v].execute(ANSWER, answer_params(v, s)).fetchone()[0]
                    reads[v].append((time.perf_counter_ns() - t0) / 1e6)
                    round_reads[(v, r)].append(reads[v][-1])
            for n, s in enumerate(batch[:SERVER_SIDE]):
                for v in sides if n % 2 == 0 else sides[::-1]:
                    server[(v, "answer")].append(execution_ms(readers[v], ANSWER, answer_params(v, s)))
            log(
                f"release round {r + 1}/{rounds}: "
                + "; ".join(
                    f"{v} insert mean ours {means[(v, OURS)][-1]:.0f} µs, no triggers {means[(v, PLAIN)][-1]:.0f} µs"
                    f" ({means[(v, OURS)][-1] / means[(v, PLAIN)][-1]:.2f}×),"
                    f" answer p50 {percentile(round_reads[(v, r)], 50):.3f} ms"
                    for v in (BEFORE, AFTER)
                )
            )
        # The weekly rows our triggers wrote (the students written with them on) on the two sides.
        written = [s for r in range(rounds) for s in groups[BEFORE][(OURS, r)]]
        same_weeks = weekly_digest(admins[BEFORE], written) == weekly_digest(admins[AFTER], written)
    finally:
        for c in [*admins.values(), *conns.values(), *readers.values()]:
            c.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for name in DATABASES.values():
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    # The answers: head may add keys (missing_count, ...); compared without the keys only one side has.
    parsed = {v: {s: json.loads(a) for s, a in answers[v].items()} for v in urls}
    keys = {v: set().union(*(key_names(a, set()) for a in parsed[v].values())) for v in urls}
    added, gone = keys[AFTER] - keys[BEFORE], keys[BEFORE] - keys[AFTER]
    same_answers = sum(without(parsed[BEFORE][s], gone) == without(parsed[AFTER][s], added) for s in students)
    ratio = {
        (v, kind): measure(inserts[(v, OURS)] if kind != "server" else server[(v, OURS)])
        / measure(inserts[(v, PLAIN)] if kind != "server" else server[(v, PLAIN)])
        for v in urls
        for kind, measure in (
            ("mean", lambda xs: sum(xs) / len(xs)),
            ("p50", lambda xs: percentile(xs, 50)),
            ("server", lambda xs: percentile(xs, 50)),
        )
    }
    rows = [
        ("parents' answer, p50", lambda v: percentile(reads[v], 50), fmt_ms),
        ("parents' answer, p99", lambda v: percentile(reads[v], 99), fmt_ms),
        ("parents' answer, server execution p50", lambda v: percentile(server[(v, "answer")], 50), fmt_ms),
    ]
    micros = lambda x: f"{x:,.0f} µs"  # noqa: E731
    for variant in VARIANTS:
        rows += [
            (
                f"single-row INSERT, {variant}, mean",
                lambda v, k=variant: sum(inserts[(v, k)]) / len(inserts[(v, k)]),
                micros,
            ),
            (f"single-row INSERT, {variant}, p50", lambda v, k=variant: percentile(inserts[(v, k)], 50), micros),
            (f"single-row INSERT, {variant}, p99", lambda v, k=variant: percentile(inserts[(v, k)], 99), micros),
            (
                f"single-row INSERT, {variant}, server execution p50",
                lambda v, k=variant: percentile(server[(v, k)], 50),
                micros,
            ),
        ]
    rows += [
        ("single-row INSERT, ours / no triggers (means)", lambda v: ratio[(v, "mean")], fmt_ratio),
        ("single-row INSERT, ours / no triggers (p50s)", lambda v: ratio[(v, "p50")], fmt_ratio),
        ("single-row INSERT, ours / no triggers (server p50s)", lambda v: ratio[(v, "server")], fmt_ratio),
    ]
    for label, measure, shown in rows:
        before, after = measure(BEFORE), measure(AFTER)
        section.rows.append([label, shown(before), shown(after), fmt_ratio(after / before)])
    answer_ratio = percentile(reads[AFTER], 50) / percentile(reads[BEFORE], 50)
    section.checks.append(
        Check(
            "release",
            f"parents' answer p50, head / revision {BEFORE_REVISION} (same run, same students)",
            answer_ratio,
            TARGET_ANSWER,
            why=f"server execution p50 {percentile(server[(BEFORE, 'answer')], 50):.3f} ms at {BEFORE_REVISION},"
            f" {percentile(server[(AFTER, 'answer')], 50):.3f} ms at head",
        )
    )
    section.checks.append(
        Check(
            "release",
            "single-row INSERT, ours / no triggers (means), at head against revision"
            f" {BEFORE_REVISION}'s in the same run (rule: head's ratio ≤ {BEFORE_REVISION}'s)",
            ratio[(AFTER, "mean")],
            ratio[(BEFORE, "mean")],
            why=f"ours / no triggers by server execution p50: {ratio[(BEFORE, 'server')]:.2f}× at"
            f" {BEFORE_REVISION}, {ratio[(AFTER, 'server')]:.2f}× at head",
        )
    )
    section.checks.append(
        Check(
            "release",
            "single-row INSERT, ours / no triggers (server execution p50s), at head against revision"
            f" {BEFORE_REVISION}'s in the same run (rule: head's ratio ≤ {BEFORE_REVISION}'s)",
            ratio[(AFTER, "server")],
            ratio[(BEFORE, "server")],
            why=f"ours {percentile(server[(AFTER, OURS)], 50):,.0f} µs at head against"
            f" {percentile(server[(BEFORE, OURS)], 50):,.0f} µs at {BEFORE_REVISION}; no triggers"
            f" {percentile(server[(AFTER, PLAIN)], 50):,.0f} against {percentile(server[(BEFORE, PLAIN)], 50):,.0f} µs",
        )
    )
    elapsed = time.perf_counter() - clock
    section.notes.append(
        f"Revisions: {revision[BEFORE]} (two copies made in {clone_seconds:.1f} s, one downgraded from head in"
        f" {downgrade_seconds:.1f} s) against"
        f" {revision[AFTER]}. Per side: {len(inserts[(BEFORE, OURS)]):,} timed INSERTs with our triggers and"
        f" {len(inserts[(BEFORE, PLAIN)]):,} without, {len(reads[BEFORE]):,} answers, {rounds} rounds;"
        f" {sum(len(server[(BEFORE, k)]) for k in (*VARIANTS, 'answer')):,} statements under EXPLAIN ANALYZE."
        f" Scores linked to course work: {', '.join(v + (' yes' if linked[v] else ' no (no such column)') for v in urls)}."
        f" The weekly rows our triggers wrote were {'identical' if same_weeks else 'DIFFERENT'} on the two sides."
        f" Head's answers add the keys {', '.join(sorted(added)) or 'none'}"
        + (f" and lose {', '.join(sorted(gone))}" if gone else "")
        + f"; without them the answers were identical for {same_answers:,} of {len(students):,} students."
        f" The section took {elapsed / 60:.1f} min."
    )
    section.notes.append(
        "Two gauges of the INSERT's ratio, both checked: the client's mean (what a writer waits for, as the write"
        " section measures it) is mostly the round trip and the commit's WAL flush"
        f" ({percentile(server[(BEFORE, OURS)], 50):,.0f} µs of server execution in a"
        f" {sum(inserts[(BEFORE, OURS)]) / len(inserts[(BEFORE, OURS)]):,.0f} µs insert at {BEFORE_REVISION}), so"
        " it moves with the disk and the machine's load; the server execution's p50 is the triggers' own cost."
        " Head links its scores to course work, and its no-triggers variant pays those foreign-key checks too: a"
        " cost added to both terms of a ratio above 1 brings it towards 1, so compare the absolute times as well."
    )
    section.notes.append(
        "Per round (answer p50 ms; ours / no triggers, means): "
        + "; ".join(
            f"{v}: "
            + ", ".join(
                f"{percentile(round_reads[(v, i)], 50):.3f}/{means[(v, OURS)][i] / means[(v, PLAIN)][i]:.2f}×"
                for i in range(rounds)
            )
            for v in (BEFORE, AFTER)
        )
        + "; head's ratio / 0014's: "
        + ", ".join(
            f"{(means[(AFTER, OURS)][i] / means[(AFTER, PLAIN)][i]) / (means[(BEFORE, OURS)][i] / means[(BEFORE, PLAIN)][i]):.2f}"
            for i in range(rounds)
        )
        + " (the spread of these is the noise the INSERT's check on the means is within)."
    )
    return section
