"""A small demo school: two families, a class of thirteen, eight weeks of scores, a staff member."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg

DEMO_PARENT_EMAIL = "parent@demo.school"
OTHER_PARENT_EMAIL = "other.parent@demo.school"
DEMO_STAFF_EMAIL = "staff@demo.school"
CLASSMATES = 10
WEEKS = 8
SCIENCE_STUDENTS = 6


def load_demo_school(conn: psycopg.Connection, *, seed: int = 7) -> bool:
    """Insert the demo school unless it is there; True when it was inserted."""
    if conn.execute("select 1 from guardian where email = %s", (DEMO_PARENT_EMAIL,)).fetchone():
        return False
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with conn.transaction():
        courses = [
            conn.execute("insert into course (name) values (%s) returning id", (name,)).fetchone()[0]
            for name in ("Mathematics", "English", "Science")
        ]
        students = []
        for name, tz in [
            ("Alex Demo", "Europe/London"),
            ("Sam Demo", "Europe/London"),
            ("Robin Other", "America/New_York"),
        ] + [(f"Classmate {n}", "Europe/London") for n in range(1, CLASSMATES + 1)]:
            sid = conn.execute(
                "insert into student_profile (display_name, time_zone) values (%s, %s) returning id", (name, tz)
            ).fetchone()[0]
            students.append(sid)
        parent = conn.execute(
            "insert into guardian (email, display_name) values (%s, 'Demo Parent') returning id", (DEMO_PARENT_EMAIL,)
        ).fetchone()[0]
        other = conn.execute(
            "insert into guardian (email, display_name) values (%s, 'Other Parent') returning id", (OTHER_PARENT_EMAIL,)
        ).fetchone()[0]
        conn.execute(
            "insert into guardian_student (guardian_id, student_profile_id) values (%s, %s), (%s, %s), (%s, %s)",
            (parent, students[0], parent, students[1], other, students[2]),
        )
        maths, english, science = courses
        # Science has few students: its class average stays hidden (below the threshold).
        science_students = set(students[:SCIENCE_STUDENTS])
        quizzes, assignments = [], []

        def when(week: int) -> datetime:
            return min(now - timedelta(weeks=WEEKS - 1 - week, days=rng.random() * 4), now)

        for index, sid in enumerate(students):
            level = 70 + rng.random() * 20
            drift = 1.5 if index == 0 else rng.uniform(-1, 1)  # Alex improves week by week
            for week in range(WEEKS):
                if sid == students[1] and week == WEEKS - 3:
                    continue  # Sam has an empty week: a gap in the chart
                week_level = level + drift * week
                # Everyone sits the weekly maths quiz: 10+ students, so its class average shows.
                quizzes.append((sid, maths, round(max(0, min(100, rng.gauss(week_level, 6))), 2), when(week)))
                if index != 0 and rng.random() < 0.1:
                    continue  # absent for the rest of the week
                for _ in range(rng.randint(1, 3)):
                    quizzes.append((sid, english, round(max(0, min(100, rng.gauss(week_level, 6))), 2), when(week)))
                course = science if sid in science_students else english
                assignments.append((sid, course, round(max(0, min(100, rng.gauss(week_level + 2, 5))), 2), when(week)))
        with conn.cursor() as cur:
            cur.executemany(
                "insert into quiz_attempt (student_profile_id, course_id, score, completed_at) values (%s, %s, %s, %s)",
                quizzes,
            )
            cur.executemany(
                "insert into assignment_submission (student_profile_id, course_id, percentage, is_graded, submitted_at, graded_at)"
                " values (%s, %s, %s, true, %s, %s)",
                [(s, c, p, at, at) for s, c, p, at in assignments],
            )
        add_course_work(conn, students, courses, science_students, now)
        conn.execute("select refresh_course_weekly_performance()")
    return True


def add_course_work(conn: psycopg.Connection, students: list[int], courses: list[int], science: set[int], now) -> None:
    """Who is in which course, and work set in the last two weeks: every classmate handed everything in
    (a score linked to it), Alex missed the maths worksheet, Sam the English reading log and poem draft,
    and Robin is excused from the reading log. Missing work then shows on the parents' page and in the
    digest."""
    maths, english, science_course = courses
    start = (now - timedelta(weeks=WEEKS)).date()
    for sid in students:
        for course in (maths, english) + ((science_course,) if sid in science else ()):
            conn.execute(
                "insert into enrollment (student_profile_id, course_id, start_on) values (%s, %s, %s)",
                (sid, course, start),
            )
    alex, sam, robin = students[:3]
    pieces = [
        (maths, "Fractions worksheet", "assignment", now - timedelta(days=3), {alex}),
        (english, "Reading log", "assignment", now - timedelta(days=9), {sam}),
        (english, "Poem: first draft", "assignment", now - timedelta(days=2), {sam}),
        (english, "Spelling quiz", "quiz", now - timedelta(days=5), set()),
        (maths, "Homework for next week", "assignment", now + timedelta(days=4), set(students)),  # not due yet
    ]
    for course, title, kind, due, missed in pieces:
        work = conn.execute(
            "insert into course_work (course_id, title, kind, due_at) values (%s, %s, %s, %s) returning id",
            (course, title, kind, due),
        ).fetchone()[0]
        for index, sid in enumerate(students):
            if sid in missed:
                continue
            if title == "Reading log" and sid == robin:
                conn.execute(
                    "insert into course_work_excusal (course_work_id, student_profile_id) values (%s, %s)", (work, sid)
                )
                continue
            score = 60 + (index * 7) % 40
            if kind == "quiz":
                conn.execute(
                    "insert into quiz_attempt (student_profile_id, course_id, course_work_id, score, completed_at)"
                    " values (%s, %s, %s, %s, %s)",
                    (sid, course, work, score, due - timedelta(hours=2)),
                )
            else:
                conn.execute(
                    "insert into assignment_submission (student_profile_id, course_id, course_work_id, percentage,"
                    " is_graded, submitted_at, graded_at) values (%s, %s, %s, %s, true, %s, %s)",
                    (sid, course, work, score, due - timedelta(hours=2), min(due + timedelta(days=1), now)),
                )


def demo_student_ids(conn: psycopg.Connection) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "select gs.student_profile_id from guardian_student gs join guardian g on g.id = gs.guardian_id"
            " where g.email = %s order by 1",
            (DEMO_PARENT_EMAIL,),
        )
    ]


def demo_staff_member(conn: psycopg.Connection) -> int:
    """The demo staff member's id, created on first use (also for a school loaded before staff existed)."""
    conn.execute(
        "insert into staff_member (email, display_name) values (%s, 'Demo Staff') on conflict (email) do nothing",
        (DEMO_STAFF_EMAIL,),
    )
    return conn.execute("select id from staff_member where email = %s", (DEMO_STAFF_EMAIL,)).fetchone()[0]
