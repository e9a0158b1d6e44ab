"""A synthetic school district, generated deterministically and loaded through the normal write path.

Three school years (autumn 2023 to summer 2026) with holidays; each student
in six courses of about 25 students a year (new classes each year), enrolled
for the school year. Each course sets 1 to 3 pieces of work a week (course_work,
due on a weekday; 8 in 11 of them quizzes): about 11 pieces per student and
school week. A student hands in each piece (a score linked to it), except 1.5%
not handed in and every piece of an absent week (5% of weeks: excused); 5% of
quizzes carry a teacher override; 10% of the scores are ungraded when written,
three quarters of that graded later by an UPDATE (the rest, never graded, is
missing too: about 4% of the pieces set are missing in all). Students
live in four time zones; the times are local school hours (homework also in
the evening and at weekends), stored in UTC.

Rows go in by COPY into quiz_attempt and assignment_submission with whatever
triggers the database has enabled, one transaction per chunk of students.
The same --students and seed give the same rows, whatever the chunk size.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from queue import Queue
from zoneinfo import ZoneInfo

import psycopg

SEED = 20251127
TIME_ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Tokyo")
CLASS_SIZE = 25
COURSES_PER_STUDENT = 6
SUBJECTS = ("Mathematics", "English", "Science", "History", "Languages", "Arts")
SCHOOL_YEARS = (2023, 2024, 2025)  # the autumn each starts in
WEEKS_PER_YEAR = 41  # calendar weeks from early September to mid-June
ABSENT_WEEK = 0.05
ABSENT_DAY = 0.04
OVERRIDE = 0.05
UNGRADED = 0.10
EXTRA_CREDIT = 0.005
CHUNK_STUDENTS = 100
NOT_HANDED_IN = 0.015  # of the pieces of work a student is set
GRADED_LATER = UNGRADED * 0.75  # the ungraded scores graded later; the rest stay ungraded (missing)
QUIZ_SHARE = 8 / 11  # of the pieces of work: quizzes (the rest assignments)
MAX_PIECES = 3  # per course and week

QUIZ_COLUMNS = ("id", "student_profile_id", "course_id", "score", "teacher_score", "completed_at", "course_work_id")
ASSIGNMENT_COLUMNS = (
    "id",
    "student_profile_id",
    "course_id",
    "percentage",
    "is_graded",
    "submitted_at",
    "graded_at",
    "course_work_id",
)


def first_monday(year: int) -> date:
    start = date(year, 9, 1)
    return start + timedelta(days=(7 - start.weekday()) % 7)


def is_holiday(monday: date) -> bool:
    """Autumn half-term, the weeks of Christmas and new year, February break, spring break."""
    days = [monday + timedelta(days=n) for n in range(7)]
    if any((d.month, d.day) in ((12, 25), (1, 1)) for d in days):
        return True
    return (
        (monday.month == 10 and 21 <= monday.day <= 27)
        or (monday.month == 2 and 15 <= monday.day <= 21)
        or (monday.month == 4 and monday.day <= 7)
    )


def school_weeks() -> list[tuple[int, date]]:
    """(school year index, Monday) of every teaching week, oldest first."""
    weeks = []
    for index, year in enumerate(SCHOOL_YEARS):
        monday = first_monday(year)
        for n in range(WEEKS_PER_YEAR):
            week = monday + timedelta(weeks=n)
            if not is_holiday(week):
                weeks.append((index, week))
    return weeks


def last_school_day() -> date:
    return school_weeks()[-1][1] + timedelta(days=4)


@dataclass
class Shape:
    """The district's size and the precomputed tables that make row generation cheap."""

    students: int
    seed: int = SEED
    weeks: list[tuple[int, date]] = field(init=False)
    classes_per_year: int = field(init=False)
    cohorts: list[list[int]] = field(init=False)  # per year: student index -> class group
    _work: dict = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.weeks = school_weeks()
        groups = -(-self.students // CLASS_SIZE)
        self.classes_per_year = groups * COURSES_PER_STUDENT
        self.cohorts = []
        for year in range(len(SCHOOL_YEARS)):
            order = list(range(self.students))
            random.Random(self.seed * 31 + year).shuffle(order)
            cohort = [0] * self.students
            for position, student in enumerate(order):
                cohort[student] = position // CLASS_SIZE
            self.cohorts.append(cohort)

    @property
    def courses(self) -> int:
        return self.classes_per_year * len(SCHOOL_YEARS)

    def student_courses(self, student_index: int, year: int) -> list[int]:
        """Course ids (1-based) of one student's six classes in one school year."""
        base = year * self.classes_per_year + self.cohorts[year][student_index] * COURSES_PER_STUDENT
        return [base + k + 1 for k in range(COURSES_PER_STUDENT)]

    def time_zone(self, student_index: int) -> str:
        return TIME_ZONES[random.Random(self.seed * 7 + student_index).randrange(len(TIME_ZONES))]

    def work(self, course: int, week_index: int) -> list[tuple[int, bool, int]]:
        """The pieces of work a course sets in a school week: (course_work id, is a quiz, day of the week
        it is due, 0-4). Ids are dense per course and week, MAX_PIECES apart; the same for every student."""
        key = (course, week_index)
        if key not in self._work:
            r = random.Random(self.seed * 1_000_033 + course * 1_009 + week_index)
            pieces = 1 + (r.random() < 0.5) + (r.random() < 1 / 3)  # 1.83 a course-week: 11 a student-week
            first = ((course - 1) * len(self.weeks) + week_index) * MAX_PIECES + 1
            self._work[key] = [(first + k, r.random() < QUIZ_SHARE, int(r.random() * 5)) for k in range(pieces)]
        return self._work[key]

    def due_at(self, clock: Clock, monday: date, day: int, piece_id: int) -> int:
        """A piece's due instant: a weekday afternoon, 14:00 to 17:00 UTC (in every district zone the same
        ISO week)."""
        return clock.monday_epoch("UTC", monday) + day * 86400 + 50400 + (piece_id * 7919) % 10800


class Clock:
    """UTC text of local instants, from precomputed tables (datetime formatting per row is slow)."""

    def __init__(self, weeks: list[tuple[int, date]]) -> None:
        first, last = weeks[0][1] - timedelta(days=3), weeks[-1][1] + timedelta(days=14)
        self.epoch_day0 = (first - date(1970, 1, 1)).days
        self.days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
        self.hms = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
        self._monday_utc: dict[tuple[str, date], int] = {}

    def monday_epoch(self, time_zone: str, monday: date) -> int:
        """Epoch seconds of local midnight starting `monday` in time_zone."""
        key = (time_zone, monday)
        if key not in self._monday_utc:
            local = datetime(monday.year, monday.month, monday.day, tzinfo=ZoneInfo(time_zone))
            self._monday_utc[key] = int(local.timestamp())
        return self._monday_utc[key]

    def text(self, epoch: int) -> str:
        day, second = divmod(epoch, 86400)
        return f"{self.days[day - self.epoch_day0]} {self.hms[second]}+00"


def score_text(ability: float, r: random.Random) -> str:
    # About normal around the student's level; a few extra-credit scores above 100.
    value = ability + (r.random() + r.random() + r.random() - 1.5) * 20
    if r.random() < EXTRA_CREDIT:
        value = 100 + r.random() * 5
    return f"{min(max(value, 0.0), 110.0):.2f}"


@dataclass
class Chunk:
    quizzes: list[str]
    assignments: list[str]
    # Work ungraded at load time and graded afterwards by an UPDATE.
    quiz_grades: list[tuple[int, str]]
    assignment_grades: list[tuple[int, str, str]]
    excusals: list[str] = field(default_factory=list)
    missing: int = 0  # pieces not handed in


def school_time(monday: int, present: list[int], r: random.Random) -> int:
    """An instant of school hours (08:00 to 15:30 local) on a day of the week the student was there."""
    return monday + present[int(r.random() * len(present))] * 86400 + 28800 + int(r.random() * 27000)


def take_id(ids: list[int], kind: int) -> int:
    ids[kind] += 1
    return ids[kind] - 1


def student_rows(shape: Shape, clock: Clock, student_index: int, ids: list[int]) -> Chunk:
    """One student's three years of work; ids = [next quiz id, next assignment id], advanced in place."""
    r = random.Random(shape.seed * 1_000_003 + student_index)
    sid = student_index + 1
    tz = shape.time_zone(student_index)
    ability = 60 + r.random() * 30
    out = Chunk([], [], [], [])
    for week_index, (year, monday) in enumerate(shape.weeks):
        courses = shape.student_courses(student_index, year)
        work = [(course, piece) for course in courses for piece in shape.work(course, week_index)]
        if r.random() < ABSENT_WEEK:
            out.excusals += [f"{piece[0]}\t{sid}\n" for _, piece in work]
            continue
        base = clock.monday_epoch(tz, monday)
        present = [d for d in range(5) if r.random() >= ABSENT_DAY]
        if not present:
            out.excusals += [f"{piece[0]}\t{sid}\n" for _, piece in work]
            continue
        for course, (work_id, is_quiz, _day) in work:
            if r.random() < NOT_HANDED_IN:
                out.missing += 1
                continue
            if is_quiz:
                at = clock.text(school_time(base, present, r))
                qid, roll = take_id(ids, 0), r.random()
                if roll < UNGRADED:
                    # An open answer waiting for the teacher: no score yet (missing until graded).
                    out.quizzes.append(f"{qid}\t{sid}\t{course}\t\\N\t\\N\t{at}\t{work_id}\n")
                    if roll < GRADED_LATER:
                        out.quiz_grades.append((qid, score_text(ability, r)))
                    else:
                        out.missing += 1
                    continue
                score = score_text(ability, r)
                teacher = score_text(ability, r) if r.random() < OVERRIDE else "\\N"
                out.quizzes.append(f"{qid}\t{sid}\t{course}\t{score}\t{teacher}\t{at}\t{work_id}\n")
                continue
            if r.random() < 0.3:
                # Homework: evenings, weekends included (Sunday night is next to Monday in UTC).
                offset = int(r.random() * 7) * 86400 + 61200 + int(r.random() * 24000)
            else:
                offset = school_time(0, present, r)
            submitted = base + offset
            graded = submitted + 86400 + int(r.random() * 4 * 86400)  # graded 1 to 5 days later
            aid, roll = take_id(ids, 1), r.random()
            if roll < UNGRADED:
                out.assignments.append(f"{aid}\t{sid}\t{course}\t\\N\tf\t{clock.text(submitted)}\t\\N\t{work_id}\n")
                if roll < GRADED_LATER:
                    out.assignment_grades.append((aid, score_text(ability, r), clock.text(graded)))
                else:
                    out.missing += 1
                continue
            out.assignments.append(
                f"{aid}\t{sid}\t{course}\t{score_text(ability, r)}\tt\t{clock.text(submitted)}"
                f"\t{clock.text(graded)}\t{work_id}\n"
            )
    return out


def chunks(shape: Shape, chunk_students: int = CHUNK_STUDENTS) -> Iterator[Chunk]:
    clock = Clock(shape.weeks)
    ids = [1, 1]
    for start in range(0, shape.students, chunk_students):
        merged = Chunk([], [], [], [])
        for student_index in range(start, min(start + chunk_students, shape.students)):
            one = student_rows(shape, clock, student_index, ids)
            merged.quizzes += one.quizzes
            merged.assignments += one.assignments
            merged.quiz_grades += one.quiz_grades
            merged.assignment_grades += one.assignment_grades
            merged.excusals += one.excusals
            merged.missing += one.missing
        yield merged


def copy_text(conn: psycopg.Connection, table: str, columns: tuple[str, ...], lines: list[str]) -> None:
    with conn.cursor() as cur, cur.copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
        copy.write("".join(lines))


def load_people(conn: psycopg.Connection, shape: Shape) -> None:
    """Students and courses, with explicit ids (identity columns are BY DEFAULT)."""
    with conn.transaction():
        copy_text(
            conn,
            "student_profile",
            ("id", "display_name", "time_zone"),
            [f"{i + 1}\tStudent {i + 1}\t{shape.time_zone(i)}\n" for i in range(shape.students)],
        )
        names = []
        for year, autumn in enumerate(SCHOOL_YEARS):
            for n in range(shape.classes_per_year):
                names.append(
                    f"{year * shape.classes_per_year + n + 1}\t{autumn}-{(autumn + 1) % 100:02d}"
                    f" {SUBJECTS[n % COURSES_PER_STUDENT]} {n // COURSES_PER_STUDENT + 1}\n"
                )
        copy_text(conn, "course", ("id", "name"), names)
        clock = Clock(shape.weeks)
        work = []
        for week_index, (year, monday) in enumerate(shape.weeks):
            for n in range(shape.classes_per_year):
                course = year * shape.classes_per_year + n + 1
                for work_id, is_quiz, day in shape.work(course, week_index):
                    kind = "quiz" if is_quiz else "assignment"
                    due = clock.text(shape.due_at(clock, monday, day, work_id))
                    work.append(f"{work_id}\t{course}\t{kind.title()} {work_id}\t{kind}\t{due}\n")
        copy_text(conn, "course_work", ("id", "course_id", "title", "kind", "due_at"), work)
        enrollments = []
        for year in range(len(SCHOOL_YEARS)):
            mondays = [monday for y, monday in shape.weeks if y == year]
            start, end = mondays[0], mondays[-1] + timedelta(days=4)
            for i in range(shape.students):
                enrollments += [f"{i + 1}\t{c}\t{start}\t{end}\n" for c in shape.student_courses(i, year)]
        copy_text(conn, "enrollment", ("student_profile_id", "course_id", "start_on", "end_on"), enrollments)
        for table in ("student_profile", "course", "course_work"):
            conn.execute(f"select setval(pg_get_serial_sequence('{table}', 'id'), (select max(id) from {table}))")


def grade_later(conn: psycopg.Connection, chunk: Chunk) -> int:
    """The ungraded-then-graded share: one UPDATE per table, through the triggers."""
    if chunk.quiz_grades:
        ids, scores = zip(*chunk.quiz_grades)
        conn.execute(
            "update quiz_attempt q set teacher_score = g.s from unnest(%s::bigint[], %s::numeric[]) g(id, s)"
            " where q.id = g.id",
            (list(ids), list(scores)),
        )
    if chunk.assignment_grades:
        ids, scores, at = zip(*chunk.assignment_grades)
        conn.execute(
            "update assignment_submission a set is_graded = true, percentage = g.p, graded_at = g.at"
            "  from unnest(%s::bigint[], %s::numeric[], %s::timestamptz[]) g(id, p, at) where a.id = g.id",
            (list(ids), list(scores), list(at)),
        )
    return len(chunk.quiz_grades) + len(chunk.assignment_grades)


@dataclass
class LoadStats:
    quiz_rows: int
    assignment_rows: int
    graded_later: int
    seconds: float
    missing: int = 0  # pieces of work not handed in or never graded

    @property
    def rows(self) -> int:
        return self.quiz_rows + self.assignment_rows

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def load(
    conn: psycopg.Connection,
    shape: Shape,
    *,
    progress: bool = True,
    chunk_students: int = CHUNK_STUDENTS,
    writers: int = 1,
) -> LoadStats:
    """Generate and COPY the district into an empty, migrated database (autocommit connection).

    One thread generates the chunks; `writers` connections COPY them in
    parallel (chunks hold distinct students, so they never wait for each other).
    """
    from tqdm import tqdm

    start = time.perf_counter()
    load_people(conn, shape)
    # An estimate for the bar: 11 items a week, fewer for absences.
    expected = int(shape.students * len(shape.weeks) * 11 * (1 - ABSENT_WEEK) * (1 - ABSENT_DAY))
    totals = [0, 0, 0, 0]  # quiz rows, assignment rows, graded later, missing
    queue: Queue = Queue(maxsize=2 * writers)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def write(connection: psycopg.Connection, bar) -> None:
        while (chunk := queue.get()) is not None:
            try:
                if not failures:
                    with connection.transaction():
                        copy_text(connection, "quiz_attempt", QUIZ_COLUMNS, chunk.quizzes)
                        copy_text(connection, "assignment_submission", ASSIGNMENT_COLUMNS, chunk.assignments)
                        copy_text(
                            connection, "course_work_excusal", ("course_work_id", "student_profile_id"), chunk.excusals
                        )
                        graded = grade_later(connection, chunk)
                    with lock:
                        totals[0] += len(chunk.quizzes)
                        totals[1] += len(chunk.assignments)
                        totals[2] += graded
                        totals[3] += chunk.missing
                        bar.update(len(chunk.quizzes) + len(chunk.assignments))
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                failures.append(error)

    def own_connection(bar) -> None:
        with psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True) as connection:
            write(connection, bar)

    with tqdm(
        total=expected,
        unit=" rows",
        unit_scale=True,
        disable=not progress,
        file=sys.stderr,
        desc="COPY district",
        smoothing=0.1,
    ) as bar:
        threads = [
            threading.Thread(target=own_connection if n else write, args=(bar,) if n else (conn, bar))
            for n in range(writers)
        ]
        for thread in threads:
            thread.start()
        for chunk in chunks(shape, chunk_students):
            if failures:
                break
            queue.put(chunk)
        for _ in threads:
            queue.put(None)
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    for table in ("quiz_attempt", "assignment_submission"):
        conn.execute(f"select setval(pg_get_serial_sequence('{table}', 'id'), (select max(id) from {table}))")
    return LoadStats(totals[0], totals[1], totals[2], time.perf_counter() - start, totals[3])
