"""Read path: the dashboard's 6 weeks of one student, from the weekly table against the seed's "before"."""

from __future__ import annotations

import random
from datetime import date, timedelta

import psycopg
from psycopg.rows import dict_row

from .common import Section, fmt_ms, fmt_ratio, log, percentile, timed_ms

WEEKS = 6
# The seed's dashboard query: the student's last 6 weekly rows, by index.
WEEKLY_TABLE = """
select week_start_date, year, week_number, quiz_average, quiz_count, assignment_average, assignment_count,
       overall_average
  from student_weekly_performance
 where student_profile_id = %(student)s and week_start_date between %(first)s and %(last)s
 order by week_start_date
"""
# The seed's "before": the same 6 weeks computed on the fly from the raw rows
# (the same rules, the student's time zone), each table read through its
# index on (student, instant); 2 days either side cover any UTC offset.
RAW_GROUP_BY = """
select s.week_start_date, date_part('isoyear', s.week_start_date) as year, date_part('week', s.week_start_date) as week,
       round(avg(s.score) filter (where s.is_quiz), 2) as quiz_average, count(*) filter (where s.is_quiz) as quiz_count,
       round(avg(s.score) filter (where not s.is_quiz), 2) as assignment_average,
       count(*) filter (where not s.is_quiz) as assignment_count, round(avg(s.score), 2) as overall_average
  from (select local_iso_week_start(q.completed_at, sp.time_zone) as week_start_date,
               coalesce(q.teacher_score, q.score) as score, true as is_quiz
          from quiz_attempt q join student_profile sp on sp.id = q.student_profile_id
         where q.student_profile_id = %(student)s
           and q.completed_at >= %(first)s::date - 2 and q.completed_at < %(last)s::date + 9
        union all
        select local_iso_week_start(coalesce(a.graded_at, a.submitted_at), sp.time_zone),
               case when a.is_graded then a.percentage end, false
          from assignment_submission a join student_profile sp on sp.id = a.student_profile_id
         where a.student_profile_id = %(student)s
           and coalesce(a.graded_at, a.submitted_at) >= %(first)s::date - 2
           and coalesce(a.graded_at, a.submitted_at) < %(last)s::date + 9) s
 where s.score is not null and s.week_start_date between %(first)s and %(last)s
 group by s.week_start_date
 order by s.week_start_date
"""
MIN_CLASS = 10  # the app's default CLASS_AVERAGE_MIN_STUDENTS
# The endpoint's whole answer (authentication, link, weeks, per-course weeks, class averages, JSON), without
# the access-log entry: the call web.students.student_trend makes.
ANSWER = (
    "select answer from weekly_trend_json(sha256(convert_to(%(token)s, 'UTF8')), null, %(student)s, %(weeks)s,"
    " %(end)s, %(min_class)s, 'bench', false)"
)


def sample_students(students: int, count: int, seed: int = 3) -> list[int]:
    return random.Random(seed).sample(range(1, students + 1), min(count, students))


def run_read(url: str, args, end: date) -> Section:
    first = end - timedelta(days=end.weekday(), weeks=WEEKS - 1)
    last = end - timedelta(days=end.weekday())
    students = sample_students(args.students, args.read_students)
    log(f"read path: {len(students):,} students, weeks {first} to {last}")
    ms: dict[str, list[float]] = {"weekly": [], "raw": [], "stats": []}
    with (
        psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn,
        psycopg.connect(url, autocommit=True) as reader,
    ):
        from .http import issue_tokens  # noqa: PLC0415 - the same guardians and tokens as the HTTP section

        tokens = dict(issue_tokens(reader, students))
        reader.execute("set role weekly_trends_reader")  # as the app's requests run
        for n, student in enumerate(students):
            params = {"student": student, "first": first, "last": last}
            # Alternate which goes first: neither always finds the other's pages cached.
            order = ("weekly", "raw") if n % 2 == 0 else ("raw", "weekly")
            for kind in order:
                ms[kind].append(timed_ms(conn, WEEKLY_TABLE if kind == "weekly" else RAW_GROUP_BY, params))
            ms["stats"].append(
                timed_ms(
                    reader,
                    ANSWER,
                    {"token": tokens[student], "student": student, "weeks": WEEKS, "end": end, "min_class": MIN_CLASS},
                )
            )
    q = {kind: (percentile(v, 50), percentile(v, 99)) for kind, v in ms.items()}
    section = Section(
        "read",
        "Read path: the dashboard query",
        [
            f"For {len(students):,} random students of the district (3 school years of history each), the 6 ISO weeks",
            f"ending {last.isoformat()} (the district's last school week): the seed's dashboard query (6 rows of",
            "`student_weekly_performance` by its key) against the seed's \"before\", a GROUP BY over the student's",
            "raw quiz and assignment rows of those weeks (same rules, time zone included; `bench/read.py`),",
            "alternating which runs first. Time is the client's: execute and fetch over one connection. Shown",
            "beside them: the endpoint's whole answer, `weekly_trend_json()` as the reader role (authentication, the",
            "link, the weeks, the per-course weeks from the source rows and the class averages, as JSON; no",
            "access-log entry), per student.",
        ],
        ["query", "p50", "p99", "p50 ratio", "p99 ratio"],
    )
    for kind, label in (
        ("weekly", "weekly table (seed's dashboard query)"),
        ("raw", 'GROUP BY over the raw rows (the seed\'s "before")'),
        ("stats", "weekly_trend_json() (the whole answer)"),
    ):
        section.rows.append(
            [
                label,
                fmt_ms(q[kind][0]),
                fmt_ms(q[kind][1]),
                fmt_ratio(q[kind][0] / q["weekly"][0]),
                fmt_ratio(q[kind][1] / q["weekly"][1]),
            ]
        )
    section.notes.append(
        f"Ratios are against the weekly table: the raw GROUP BY is {q['raw'][0] / q['weekly'][0]:.1f}×"
        f" slower at p50 and {q['raw'][1] / q['weekly'][1]:.1f}× at p99."
    )
    return section
