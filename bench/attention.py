"""The teacher's list (issue 27): staff_attention() for teachers of 150 students, at district scale."""

from __future__ import annotations

import random
from datetime import date

import psycopg

from .common import Check, Section, fmt_ms, log, percentile, timed_ms

COURSES_PER_TEACHER = 6  # six classes of about 25: 150 students
TARGET_P95_MS = 50.0
# The call /staff/ and GET /api/v1/staff/attention make (web/staff/attention.py), with the district's last
# school day as "today" and no access-log entries (p_endpoint null): the list's one database call.
CALL = (
    "select body from staff_attention(sha256(convert_to(%(token)s, 'UTF8')), null, null, 'UTC', 60, 2, 10, 2,"
    " %(today)s, null)"
)


def teachers(conn: psycopg.Connection, shape, count: int, seed: int = 11) -> list[str]:
    """count teachers, each of 6 classes of the district's last school year from 6 different class groups
    (150 different students), with a staff token each."""
    year = len(shape.cohorts) - 1
    groups = shape.classes_per_year // COURSES_PER_TEACHER
    r = random.Random(seed)
    tokens = []
    with conn.transaction():
        for n in range(count):
            member = conn.execute(
                "insert into staff_member (email) values (%s) on conflict (email) do update set email = excluded.email"
                " returning id",
                (f"teacher.{n}@bench.example",),
            ).fetchone()[0]
            conn.execute("delete from course_teacher where staff_member_id = %s", (member,))
            for g, group in enumerate(r.sample(range(groups), min(COURSES_PER_TEACHER, groups))):
                course = year * shape.classes_per_year + group * COURSES_PER_TEACHER + g + 1
                conn.execute(
                    "insert into course_teacher (staff_member_id, course_id) values (%s, %s)", (member, course)
                )
            tokens.append(conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0])
    return tokens


def run_attention(url: str, args, end: date) -> Section:
    from . import district

    shape = district.Shape(args.students, args.seed)
    count = 20 if args.students < 10_000 else 50
    rounds = 5
    with psycopg.connect(url, autocommit=True) as admin, psycopg.connect(url, autocommit=True) as staff:
        tokens = teachers(admin, shape, count)
        sizes = [
            admin.execute(
                "select count(distinct student_profile_id) from quiz_attempt q join course_teacher t"
                " on t.course_id = q.course_id join staff_token k on k.staff_member_id = t.staff_member_id"
                " where k.token_hash = sha256(convert_to(%s, 'UTF8'))",
                (token,),
            ).fetchone()[0]
            for token in tokens
        ]
        log(f"attention: {count} teachers of {min(sizes)} to {max(sizes)} students, {rounds} rounds, today {end}")
        staff.execute("set role weekly_trends_staff")  # as the app's requests run
        ms, listed = [], []
        for token in tokens:  # a first call each: the plans and pages warm, not timed
            body = staff.execute(CALL, {"token": token, "today": end}).fetchone()[0]
            listed.append(sum(len(c["students"]) for c in body["courses"]))
        for _ in range(rounds):
            for token in tokens:
                ms.append(timed_ms(staff, CALL, {"token": token, "today": end}))
    p50, p95, p99 = (percentile(ms, p) for p in (50, 95, 99))
    section = Section(
        "attention",
        "The teacher's list (issue 27)",
        [
            "`staff_attention()` as the staff role, the one database call of `/staff/` and `GET /api/v1/staff/attention`,",
            f"for {count} teachers of 6 classes of the district's last school year (6 class groups: {min(sizes)} to",
            f'{max(sizes)} students each), "today" the district\'s last school day ({end}), {rounds} rounds after one',
            "untimed call each; without the access-log entries (p_endpoint null). Time is the client's.",
        ],
        ["teachers", "calls", "students listed (mean)", "p50", "p95", "p99"],
    )
    section.rows.append(
        [str(count), str(len(ms)), f"{sum(listed) / len(listed):.1f}", fmt_ms(p50), fmt_ms(p95), fmt_ms(p99)]
    )
    section.checks.append(
        Check(
            "attention",
            "teacher's list p95 (150 students)",
            p95,
            TARGET_P95_MS,
            unit="ms",
            why="the courses' scores of 9 weeks, missing work, the decline walked from each student's kept state"
            " (alert_walk_checkpoint) and the list's JSON are each a few milliseconds; a first call after a"
            " kept state went stale walks that student's whole history",
        )
    )
    return section
