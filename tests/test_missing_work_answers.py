"""Missing work in every figure the parents see (issue 26, item 2): the weekly-trend JSON (each week and
each course's week), the CSV, the week's scores (API and page), the parents' page and the digest."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from web.ops.cli import main

from factories import add_course, add_quiz
from mailserver import mail_env, smtp_server  # noqa: F401 - fixtures

UTC = UTC


def get(client, path, token, **params):
    return client.get(path, headers={"Authorization": f"Bearer {token}"}, query_string=params)


@pytest.fixture
def homework(family):
    """family (Ann, Europe/London, guardian A), plus: Maths with a quiz of Ann's in 2024-W03 and two pieces
    of work missing (one due Tuesday 16 January 17:00 UTC, one Sunday 21 January 23:30 UTC: still W03
    in London), one handed in (linked, counted), one excused; and Art, a course without any score of
    hers, with one piece missing in W04 (due Monday 22 January 00:30 UTC). Ann is enrolled in both."""
    conn = family["conn"]
    a = family["a"]
    maths, art = add_course(conn, "Maths"), add_course(conn, "Art")
    for course in (maths, art):
        conn.execute("insert into enrollment (student_profile_id, course_id) values (%s, %s)", (a, course))

    def work(course, title, kind, due):
        return conn.execute(
            "insert into course_work (course_id, title, kind, due_at) values (%s, %s, %s, %s) returning id",
            (course, title, kind, due),
        ).fetchone()[0]

    fractions = work(maths, "Fractions worksheet", "assignment", datetime(2024, 1, 16, 17, tzinfo=UTC))
    late = work(maths, "Times tables", "quiz", datetime(2024, 1, 21, 23, 30, tzinfo=UTC))
    done = work(maths, "Decimals", "quiz", datetime(2024, 1, 17, 9, tzinfo=UTC))
    excused = work(maths, "Graphs", "assignment", datetime(2024, 1, 18, 9, tzinfo=UTC))
    painting = work(art, "Still life", "assignment", datetime(2024, 1, 22, 0, 30, tzinfo=UTC))
    q = add_quiz(conn, a, 70, datetime(2024, 1, 17, 10, tzinfo=UTC), course_id=maths)
    conn.execute("update quiz_attempt set course_work_id = %s where id = %s", (done, q))
    conn.execute("insert into course_work_excusal (course_work_id, student_profile_id) values (%s, %s)", (excused, a))
    return family | {"maths": maths, "art": art, "fractions": fractions, "late": late, "painting": painting}


def test_each_week_and_each_courses_week_carries_its_missing_count(client, homework):
    body = get(
        client, f"/api/v1/students/{homework['a']}/weekly-trend", homework["token"], end="2024-01-28", weeks=3
    ).get_json()
    weeks = body["weekly_stats"]["weekly_trend"]
    assert [(w["week_start"], w["missing_count"]) for w in weeks] == [
        ("2024-01-08", 0),
        ("2024-01-15", 2),
        ("2024-01-22", 1),
    ]
    courses = {c["name"]: c for c in body["courses"]}
    # Art has no score in these weeks: it is listed for its missing work.
    assert sorted(courses) == ["Art", "Maths"]
    assert [w["missing_count"] for w in courses["Maths"]["weeks"]] == [0, 2, 0]
    assert [w["missing_count"] for w in courses["Art"]["weeks"]] == [0, 0, 1]
    assert [w["quiz_count"] + w["assignment_count"] for w in courses["Art"]["weeks"]] == [0, 0, 0]


def test_the_csv_has_a_missing_count_column(client, homework):
    r = get(client, f"/api/v1/students/{homework['a']}/weekly-trend.csv", homework["token"], end="2024-01-28", weeks=3)
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [
        (r["scope"], r["course_name"], r["week_start"], r["missing_count"]) for r in rows if r["scope"] == "overall"
    ] == [
        ("overall", "", "2024-01-08", "0"),
        ("overall", "", "2024-01-15", "2"),
        ("overall", "", "2024-01-22", "1"),
    ]
    assert [r["missing_count"] for r in rows if r["course_name"] == "Art"] == ["0", "0", "1"]


def test_the_weeks_scores_list_the_missing_work_in_the_students_time_zone(client, homework):
    body = get(client, f"/api/v1/students/{homework['a']}/weeks/2024-W03/scores", homework["token"]).get_json()
    assert body["missing_work"] == [
        {
            "course_work_id": homework["fractions"],
            "title": "Fractions worksheet",
            "course_id": homework["maths"],
            "course_name": "Maths",
            "kind": "assignment",
            "due_at": "2024-01-16T17:00:00+00:00",
        },
        {
            "course_work_id": homework["late"],
            "title": "Times tables",
            "course_id": homework["maths"],
            "course_name": "Maths",
            "kind": "quiz",
            "due_at": "2024-01-21T23:30:00+00:00",
        },
    ]
    assert body["figures"]["missing_count"] == 2
    w4 = get(client, f"/api/v1/students/{homework['a']}/weeks/2024-W04/scores", homework["token"]).get_json()
    assert [m["title"] for m in w4["missing_work"]] == ["Still life"]
    # In the summer, London's offset shows in the due date.
    conn = homework["conn"]
    conn.execute("update course_work set due_at = '2024-07-02 16:00+00' where id = %s", (homework["fractions"],))
    summer = get(client, f"/api/v1/students/{homework['a']}/weeks/2024-W27/scores", homework["token"]).get_json()
    assert [m["due_at"] for m in summer["missing_work"]] == ["2024-07-02T17:00:00+01:00"]


def test_another_guardian_reads_no_missing_work(client, homework):
    conn = homework["conn"]
    other = conn.execute("select id from guardian where email = 'b@example.org'").fetchone()[0]
    token = conn.execute("select issue_guardian_token(%s)", (other,)).fetchone()[0]
    r = get(client, f"/api/v1/students/{homework['a']}/weeks/2024-W03/scores", token)
    assert r.status_code == 404 and b"Fractions" not in r.data


def sign_in(client, token):
    assert client.get(f"/login?token={token}").status_code in (200, 302, 303)


def test_the_parents_page_shows_a_weeks_missing_count_and_the_week_page_the_list(client, homework):
    sign_in(client, homework["token"])
    page = client.get(f"/students/{homework['a']}", query_string={"end": "2024-01-28", "weeks": 3})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-week-start="2024-01-15"' in html
    row = html[html.index('data-week-start="2024-01-15"') :]
    row = row[: row.index("</tr>")]
    assert 'class="missing"' in row and "2 missing" in row
    week = client.get(f"/students/{homework['a']}/weeks/2024-W03").get_data(as_text=True)
    assert "Fractions worksheet" in week and "Times tables" in week and "Decimals" not in week and "Graphs" not in week
    assert "Tue 16 Jan, 5:00\u202fPM" in week  # due, in London (GMT in January)


def test_the_digest_leads_each_child_with_what_is_missing_in_the_guardians_language(
    mail_env, smtp_server, homework, conn
):
    assert main(["digest", "--week", "2024-W04", "--quiet"]) == 0
    text = smtp_server.to("a@example.org")[0].part("plain")
    html = smtp_server.to("a@example.org")[0].part("html")
    lead = text[text.index("== Ann ==") :]
    assert lead.splitlines()[1] == (
        "3 pieces of work missing: Maths — Fractions worksheet, due Tue 16 Jan; Maths — Times tables, due Sun 21 Jan;"
        " Art — Still life, due Mon 22 Jan."
    )
    assert 'class="missing"' in html and "Still life" in html
    conn.execute("update guardian set preferred_language = 'es'")
    conn.execute("delete from digest_delivery")
    assert main(["digest", "--week", "2024-W04", "--quiet"]) == 0
    spanish = smtp_server.to("a@example.org")[-1].part("plain")
    assert "3 trabajos pendientes: Maths — Fractions worksheet, entrega mar 16 ene" in spanish


def test_the_digest_says_nothing_of_missing_work_when_there_is_none(mail_env, smtp_server, family):
    assert main(["digest", "--week", "2024-W05", "--quiet"]) == 0
    assert "missing" not in smtp_server.to("a@example.org")[0].part("plain")


def test_the_digests_weeks_carry_the_missing_counts_the_answer_shows(client, homework, conn):
    from web.mail.digest import child_weeks

    answer = get(
        client, f"/api/v1/students/{homework['a']}/weekly-trend", homework["token"], end="2024-01-28", weeks=6
    ).get_json()
    mailed = child_weeks(conn, homework["a"], date(2024, 1, 22), (10, 2), guardian_id=homework["guardian"])
    assert mailed["weekly_trend"] == answer["weekly_stats"]["weekly_trend"]
    assert [w["missing_count"] for w in mailed["weekly_trend"]][-2:] == [2, 1]
