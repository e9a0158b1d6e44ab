"""GET /api/v1/students/<id>/weeks/<YYYY>-W<ww>/scores: the scores behind a week.

200 with every counted score (kind, course, instant in the student's time zone, the score that
counts, the override flag) and the week's figures equal to the weekly-trend's; 400 for a malformed
week; 401; 404 identical to every other refusal; no-store; row-level security; the access log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from factories import add_assignment, add_course, add_quiz

PROBLEM = "application/problem+json"
UTC = UTC


def scores_path(student_id, week="2024-W03") -> str:
    return f"/api/v1/students/{student_id}/weeks/{week}/scores"


def get(client, path, token=None):
    return client.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})


@pytest.fixture
def week3(family):
    """family, plus in Ann's (Europe/London) week 2024-W03: a Maths quiz with a teacher's override,
    an ungraded assignment and a quiz never completed (neither counts), and a quiz at 23:30 UTC on
    Sunday 21 January, still W03 in London (and one at 00:30 on Monday the 22nd, W04)."""
    conn = family["conn"]
    maths = add_course(conn, "Maths")
    add_quiz(conn, family["a"], 40, datetime(2024, 1, 17, 12, tzinfo=UTC), course_id=maths, teacher_score=75)
    add_assignment(conn, family["a"], 10, graded_at=datetime(2024, 1, 17, 13, tzinfo=UTC), is_graded=False)
    add_quiz(conn, family["a"], 12, None)
    add_quiz(conn, family["a"], 70, datetime(2024, 1, 21, 23, 30, tzinfo=UTC))
    add_quiz(conn, family["a"], 50, datetime(2024, 1, 22, 0, 30, tzinfo=UTC))
    return family | {"maths": maths}


def test_every_counted_score_of_the_week_in_the_students_time_zone(client, week3):
    r = get(client, scores_path(week3["a"]), week3["token"])
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Cache-Control"] == "private, no-store"
    body = r.get_json()
    assert (body["student_id"], body["week"], body["week_start"], body["time_zone"]) == (
        week3["a"],
        "2024-W03",
        "2024-01-15",
        "Europe/London",
    )
    assert [
        (s["kind"], s["course_name"], s["counted_at"], s["score"], s["teacher_override"]) for s in body["scores"]
    ] == [
        ("quiz", None, "2024-01-15T10:00:00+00:00", 85.0, False),
        ("quiz", None, "2024-01-16T10:00:00+00:00", 90.0, False),
        ("quiz", None, "2024-01-17T10:00:00+00:00", 88.0, False),
        ("quiz", "Maths", "2024-01-17T12:00:00+00:00", 75.0, True),
        ("assignment", None, "2024-01-18T10:00:00+00:00", 92.0, False),
        ("assignment", None, "2024-01-19T10:00:00+00:00", 88.0, False),
        ("quiz", None, "2024-01-21T23:30:00+00:00", 70.0, False),  # Sunday in London: still W03
    ]
    override = next(s for s in body["scores"] if s["teacher_override"])
    assert override == {
        "kind": "quiz",
        "course_id": week3["maths"],
        "course_name": "Maths",
        "counted_at": "2024-01-17T12:00:00+00:00",
        "score": 75.0,
        "teacher_override": True,
        "automatic_score": 40.0,
    }


def test_instants_carry_the_students_offset(client, family):
    conn = family["conn"]
    conn.execute("update student_profile set time_zone = 'America/New_York' where id = %s", (family["a"],))
    body = get(client, scores_path(family["a"]), family["token"]).get_json()
    assert body["scores"][0]["counted_at"] == "2024-01-15T05:00:00-05:00"


def test_the_figures_equal_the_weekly_trends_for_that_week(client, week3):
    trend = get(
        client, f"/api/v1/students/{week3['a']}/weekly-trend?weeks=52&end=2024-02-25", week3["token"]
    ).get_json()
    checked = 0
    for week in trend["weekly_stats"]["weekly_trend"]:
        name = f"{week['year']}-W{week['week_number']:02d}"
        body = get(client, scores_path(week3["a"], name), week3["token"]).get_json()
        assert body["figures"] == week, name
        scores = body["scores"]
        quiz = [s["score"] for s in scores if s["kind"] == "quiz"]
        assignment = [s["score"] for s in scores if s["kind"] == "assignment"]
        assert (len(quiz), len(assignment)) == (week["quiz_count"], week["assignment_count"])
        if scores:
            assert round(sum(quiz + assignment) / len(scores) + 1e-9, 2) == week["overall_avg"]
            checked += 1
    assert checked == 3  # W03, W04, W05


@pytest.mark.parametrize(
    "week",
    [
        "2024-W00",
        "2024-W54",
        "2023-W53",
        "2021-W53x",
        "2024-W3",
        "2024-w03",
        "24-W03",
        "2024W03",
        "2024-03",
        "2024-W٠٣",
        "0000-W01",
        "2024-W03-1",
    ],
)
def test_a_malformed_week_is_a_400_problem(client, family, week):
    r = get(client, scores_path(family["a"], week), family["token"])
    assert r.status_code == 400 and r.mimetype == PROBLEM, week
    assert r.headers["Cache-Control"] == "private, no-store"
    assert "YYYY-Www" in r.get_json()["detail"]


@pytest.mark.parametrize(
    "week,monday",
    [("2020-W53", "2020-12-28"), ("0001-W01", "0001-01-01"), ("9999-W52", "9999-12-27"), ("2025-W01", "2024-12-30")],
)
def test_every_real_iso_week_is_a_week(client, family, week, monday):
    r = get(client, scores_path(family["a"], week), family["token"])
    assert r.status_code == 200 and r.get_json()["week_start"] == monday
    assert r.get_json()["scores"] == [] and r.get_json()["figures"]["quiz_count"] == 0


@pytest.mark.parametrize("week", ["9999-W52", "0001-W01", "2020-W53"])
def test_every_real_iso_week_is_a_page(client, family, week):
    # 9999-W52 ends on 2 January 10000, past the last date Python has.
    client.get("/login", query_string={"token": family["token"]})
    r = client.get(f"/students/{family['a']}/weeks/{week}")
    assert r.status_code == 200 and r.mimetype == "text/html", r.get_data(as_text=True)[:300]
    if week == "9999-W52":  # its Sunday is 2 January 10000: named by its Monday alone, never a wrong Sunday
        assert "the week from 27 Dec 9999" in r.get_data(as_text=True)


def test_not_signed_in_is_a_401_problem(client, family):
    r = get(client, scores_path(family["a"]))
    assert r.status_code == 401 and r.mimetype == PROBLEM
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert get(client, scores_path(family["a"]), "wt_" + "0" * 64).status_code == 401


def test_anything_not_the_callers_is_the_same_404(client, family):
    answers = []
    for sid in (family["b"], 999_999, 2**63 - 1):
        r = get(client, scores_path(sid), family["token"])
        assert r.status_code == 404 and r.mimetype == PROBLEM
        answers.append(r.get_data())
    trend = get(client, f"/api/v1/students/{family['b']}/weekly-trend", family["token"]).get_data()
    assert set(answers) == {trend}
    assert get(client, scores_path(0), family["token"]).status_code == 400
    assert get(client, scores_path("abc"), family["token"]).status_code == 400


def test_one_access_log_entry_per_answer_and_none_for_a_refusal(client, family):
    conn = family["conn"]
    assert get(client, scores_path(family["a"]), family["token"]).status_code == 200
    get(client, scores_path(family["b"]), family["token"])
    get(client, scores_path(family["a"], "2024-W99"), family["token"])
    assert conn.execute("select guardian_id, student_profile_id, endpoint from access_log").fetchall() == [
        (family["guardian"], family["a"], "GET /api/v1/students/<student_id>/weeks/<week>/scores")
    ]


def test_the_reader_gets_a_weeks_scores_only_for_its_guardians_child(conn, family):
    """The reader cannot read the source tables; week_scores() answers only for a linked child of the
    guardian the request acts for (app.guardian_id), and nothing without one."""
    for table in ("quiz_attempt", "assignment_submission"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("set local role weekly_trends_reader")
            conn.execute(f"select count(*) from {table}")
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        conn.execute("select set_config('app.guardian_id', %s, true)", (str(family["guardian"]),))
        ours = conn.execute("select count(*) from week_scores(%s, '2024-01-15')", (family["a"],)).fetchone()[0]
        theirs = conn.execute("select count(*) from week_scores(%s, '2024-01-15')", (family["b"],)).fetchone()[0]
        assert ours > 0 and theirs == 0
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        assert conn.execute("select count(*) from week_scores(%s, '2024-01-15')", (family["a"],)).fetchone()[0] == 0
    # writers' path unchanged: the owner still sees and aggregates every row
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 5


def test_week_scores_is_not_executable_by_public(conn):
    granted = conn.execute(
        "select grantee::regrole::text from pg_proc, aclexplode(proacl) where proname = 'week_scores'"
        " and privilege_type = 'EXECUTE'"
    ).fetchall()
    assert {g for (g,) in granted} - {conn.info.user} == {"weekly_trends_reader"}


def test_the_week_page_writes_its_access_log_entry(client, family):
    client.get("/login", query_string={"token": family["token"]})
    assert client.get(f"/students/{family['a']}/weeks/2024-W03").status_code == 200
    assert family["conn"].execute("select endpoint from access_log").fetchall() == [
        ("GET /students/<student_id>/weeks/<week>",)
    ]


def test_a_pasted_sign_in_link_signs_in(client, family):
    r = client.post("/login", data={"token": f"  https://school.example/login?token={family['token']}  "})
    assert r.status_code == 303 and client.get(scores_path(family["a"])).status_code == 200
