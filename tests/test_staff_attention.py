"""Issue 27 items 2-6: who teaches what, the teacher's list of students needing attention (/staff/ and
/api/v1/staff/attention), the student's staff page that reads like the family's, follow-up notes, and
every staff view of a student in the access log. Rules: a teacher sees only their own courses' students
(walked over every staff route by a teacher of another course); staff who teach no course search all."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from psycopg import errors

from factories import add_course, add_guardian, add_quiz, add_student


def this_monday() -> date:
    today = datetime.now(UTC).date()  # the school's time zone: UTC by default
    return today - timedelta(days=today.weekday())


def scores(conn, student: int, course: int, week: int, *values: float) -> None:
    """Quizzes of the week `week` weeks from this one (0: this week, -1: last week), one an hour from Monday 10:00."""
    monday = this_monday() + timedelta(weeks=week)
    for i, value in enumerate(values):
        add_quiz(
            conn,
            student,
            value,
            datetime.combine(monday, datetime.min.time(), UTC) + timedelta(hours=10 + i),
            course_id=course,
        )


def staff_member(conn, email: str, *courses: int) -> tuple[int, str]:
    member = conn.execute(
        "insert into staff_member (email, display_name) values (%s, %s) returning id",
        (email, email.split("@")[0].title()),
    ).fetchone()[0]
    for course in courses:
        conn.execute("insert into course_teacher (staff_member_id, course_id) values (%s, %s)", (member, course))
    return member, conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0]


@pytest.fixture
def school(conn):
    maths, art = add_course(conn, "Maths"), add_course(conn, "Art")
    s = {name: add_student(conn, name) for name in ["Mia", "Dan", "Bea", "Sam", "Fay", "Quin"]}
    for week in range(-9, -1):
        scores(conn, s["Mia"], maths, week, 80, 80)
        scores(conn, s["Dan"], maths, week, 90, 90)
    for week in (-1, 0):
        scores(conn, s["Mia"], maths, week, 50, 50)  # a sustained decline, and below 60
        scores(conn, s["Dan"], maths, week, 70, 70)  # a sustained decline only
        scores(conn, s["Fay"], maths, week, 90, 90)  # fine
    scores(conn, s["Bea"], maths, -3, 55, 55)
    scores(conn, s["Bea"], maths, 0, 50, 50)  # below 60 this week; too few weeks for a decline
    scores(conn, s["Sam"], maths, -5, 75, 75)  # nothing since: no scores for two weeks
    scores(conn, s["Quin"], art, 0, 30, 30)  # below, but in Art
    guardian = add_guardian(conn, "mia.parent@example.org", s["Mia"])
    conn.execute("select refresh_course_weekly_performance()")
    teacher, teacher_token = staff_member(conn, "maths.teacher@school.example", maths)
    other, other_token = staff_member(conn, "art.teacher@school.example", art)
    office, office_token = staff_member(conn, "office@school.example")
    return {
        "conn": conn,
        "maths": maths,
        "art": art,
        "s": s,
        "guardian": guardian,
        "teacher": teacher,
        "teacher_token": teacher_token,
        "other": other,
        "other_token": other_token,
        "office": office,
        "office_token": office_token,
    }


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def listed(course: dict) -> list[int]:
    return [entry["student_id"] for entry in course["students"]]


# -- item 2: who teaches what ----------------------------------------------------------------------------


def test_course_teacher_is_written_by_sql_and_goes_with_its_course_or_staff_member(conn):
    course = add_course(conn, "History")
    member, _ = staff_member(conn, "h@school.example", course)
    with pytest.raises(errors.UniqueViolation):
        conn.execute("insert into course_teacher (staff_member_id, course_id) values (%s, %s)", (member, course))
    conn.execute("set role weekly_trends_staff")
    assert conn.execute("select count(*) from course_teacher").fetchone()[0] == 1
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute("insert into course_teacher (staff_member_id, course_id) values (%s, %s)", (member, course))
    conn.execute("reset role")
    conn.execute("delete from course where id = %s", (course,))
    assert conn.execute("select count(*) from course_teacher").fetchone()[0] == 0


# -- item 3: the teacher's list --------------------------------------------------------------------------


def test_the_teachers_list_has_every_reason_with_its_figure_sorted(client, school):
    r = client.get("/api/v1/staff/attention", headers=bearer(school["teacher_token"]))
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert body["week_start"] == this_monday().isoformat() and body["teacher"] is True
    [maths] = body["courses"]
    assert maths["course_id"] == school["maths"] and maths["name"] == "Maths"
    s = school["s"]
    assert listed(maths) == [s["Mia"], s["Dan"], s["Bea"], s["Sam"]]  # 2 reasons; then by the drop: 20, 5, none
    mia, dan, bea, sam = maths["students"]
    assert mia["reasons"] == [
        {"reason": "declining", "drop_points": 30},
        {"reason": "below", "this_week": 50, "last_week": 50, "below": 60},
    ]
    assert dan["reasons"] == [{"reason": "declining", "drop_points": 20}] and dan["drop_points"] == 20
    assert bea["reasons"] == [{"reason": "below", "this_week": 50, "last_week": None, "below": 60}]
    assert sam["reasons"] == [
        {"reason": "no_scores", "last_scores_week": (this_monday() - timedelta(weeks=5)).isoformat()}
    ]
    assert all(e["last_note_on"] is None for e in maths["students"])
    assert body["missing_work_available"] is True  # issue 26 is merged: the schema has it


def test_the_threshold_is_a_setting(app, client, school):
    app.config["SETTINGS"] = app.config["SETTINGS"].replace(attention_below=45)
    [maths] = client.get("/api/v1/staff/attention", headers=bearer(school["teacher_token"])).get_json()["courses"]
    s = school["s"]
    assert listed(maths) == [s["Mia"], s["Dan"], s["Sam"]]  # nobody is below 45


def test_missing_work_is_a_reason_where_the_schema_has_it(client, school):
    conn, s, maths, art = school["conn"], school["s"], school["maths"], school["art"]
    bea, sam = s["Bea"], s["Sam"]
    last_monday = datetime.combine(this_monday() - timedelta(weeks=1), datetime.min.time(), UTC)

    def work(course, due_at):
        return conn.execute(
            "insert into course_work (course_id, title, kind, due_at) values (%s, 'Item', 'assignment', %s)"
            " returning id",
            (course, due_at),
        ).fetchone()[0]

    for student, course, start_on in [(bea, maths, None), (bea, art, None), (sam, maths, last_monday.date())]:
        conn.execute(
            "insert into enrollment (student_profile_id, course_id, start_on) values (%s, %s, %s)",
            (student, course, start_on),
        )
    work(maths, last_monday + timedelta(hours=9))  # missing for Bea; Sam enrolled that day: missing for him
    work(maths, last_monday - timedelta(weeks=3))  # missing for Bea; before Sam's enrollment
    excused = work(maths, last_monday - timedelta(weeks=4))
    conn.execute("insert into course_work_excusal (course_work_id, student_profile_id) values (%s, %s)", (excused, bea))
    handed_in = work(maths, last_monday - timedelta(weeks=2))
    quiz = add_quiz(conn, bea, 70, last_monday - timedelta(weeks=2, hours=-1), course_id=maths)
    conn.execute("update quiz_attempt set course_work_id = %s where id = %s", (handed_in, quiz))
    work(maths, last_monday - timedelta(weeks=12))  # before the 9 weeks
    work(art, last_monday + timedelta(hours=9))  # Art's: not the Maths list's
    body = client.get("/api/v1/staff/attention", headers=bearer(school["teacher_token"])).get_json()
    assert body["missing_work_available"] is True
    [maths_list] = body["courses"]
    counts = {
        e["student_id"]: r["count"]
        for e in maths_list["students"]
        for r in e["reasons"]
        if r["reason"] == "missing_work"
    }
    assert counts == {bea: 2}  # Sam's one is under the default of 2
    # The same counts as student_missing_work(), the rule's home, over the list's 9 weeks.
    monday = this_monday()
    for student in s.values():
        [(n,)] = conn.execute(
            "select count(*) from student_missing_work(%s, %s, %s) where course_id = %s",
            (student, monday - timedelta(weeks=8), monday + timedelta(days=6), maths),
        ).fetchall()
        assert counts.get(student, 0) == (n if n >= 2 else 0)
    assert listed(maths_list)[:2] == [s["Mia"], bea]  # two reasons each now


def test_the_list_page_links_each_student_with_their_last_note(client, school):
    conn, dan = school["conn"], school["s"]["Dan"]
    conn.execute("select set_config('app.staff_member_id', %s, false)", (str(school["teacher"]),))
    conn.execute("select add_follow_up_note(%s, 'family_contacted', '2026-03-02', 'Called home')", (dan,))
    conn.execute("select add_follow_up_note(%s, 'met_student', '2026-03-09', 'Talked after class')", (dan,))
    conn.execute("select set_config('app.staff_member_id', '', false)")
    client.get("/staff/login", query_string={"token": school["teacher_token"]})
    html = client.get("/staff/").get_data(as_text=True)
    assert f'data-course-id="{school["maths"]}"' in html
    order = [int(x) for x in re.findall(r'data-attention-student="(\d+)"', html)]
    s = school["s"]
    assert order == [s["Mia"], s["Dan"], s["Bea"], s["Sam"]]
    row = html.split(f'data-attention-student="{dan}"')[1].split("</tr>")[0]
    assert f'href="/staff/students/{dan}?from=attention"' in row
    assert "2026-03-09" in row and "Declining" in row and "20" in row
    assert "Quin" not in html  # Art is not theirs


def test_the_list_is_one_database_call(app, client, school):
    from web import db

    calls = []
    original = db.staff

    def counting():
        calls.append(1)
        return original()

    app.view_functions  # noqa: B018 - the app is built
    import web.staff.attention as attention

    attention.db.staff = counting
    try:
        assert client.get("/api/v1/staff/attention", headers=bearer(school["teacher_token"])).status_code == 200
    finally:
        attention.db.staff = original
    assert len(calls) == 1


def test_staff_without_courses_choose_a_course_and_search_everyone(client, school):
    headers = bearer(school["office_token"])
    body = client.get("/api/v1/staff/attention", headers=headers).get_json()
    assert body["teacher"] is False and body["courses"] == []
    assert [c["name"] for c in body["choices"]] == ["Art", "Maths"]
    [art] = client.get("/api/v1/staff/attention", query_string={"course": school["art"]}, headers=headers).get_json()[
        "courses"
    ]
    assert listed(art) == [school["s"]["Quin"]]
    html = client.get("/staff/", query_string={"q": "Mia"}, headers=headers).get_data(as_text=True)
    assert f'data-student-id="{school["s"]["Mia"]}"' in html
    html = client.get("/staff/", query_string={"course": school["maths"]}, headers=headers).get_data(as_text=True)
    assert f'data-attention-student="{school["s"]["Mia"]}"' in html


@pytest.mark.parametrize("course", ["x", "0", "-1", "99999999999999999999"])
def test_a_bad_course_is_a_400(client, school, course):
    r = client.get("/api/v1/staff/attention", query_string={"course": course}, headers=bearer(school["office_token"]))
    assert r.status_code == 400 and r.mimetype == "application/problem+json"


def test_the_list_needs_a_staff_credential(client, school):
    assert client.get("/api/v1/staff/attention").status_code == 401
    parent = school["conn"].execute("select issue_guardian_token(%s)", (school["guardian"],)).fetchone()[0]
    assert client.get("/api/v1/staff/attention", headers=bearer(parent)).status_code == 401


# -- the rule: a teacher of another course -------------------------------------------------------------


def test_a_teacher_of_another_course_reaches_none_of_these_students_on_any_staff_route(app, client, school):
    s, other = school["s"], bearer(school["other_token"])
    mia = s["Mia"]
    body = client.get("/api/v1/staff/attention", headers=other).get_json()
    assert [listed(c) for c in body["courses"]] == [[s["Quin"]]]
    assert (
        client.get("/api/v1/staff/attention", query_string={"course": school["maths"]}, headers=other).status_code
        == 404
    )
    found = client.get("/staff/", query_string={"q": "Mia"}, headers=other).get_data(as_text=True)
    assert "0 student(s) matching" in found and f'data-student-id="{mia}"' not in found
    assert "Mia" not in client.get("/staff/", headers=other).get_data(as_text=True)
    assert client.get("/staff/", query_string={"course": school["maths"]}, headers=other).status_code == 404
    walked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff/students/"):
            continue
        path = rule.rule.replace("<student_id>", str(mia)).replace("<guardian_id>", str(school["guardian"]))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            r = client.open(
                path, method=method, headers=other, data={"kind": "other", "noted_on": "2026-01-05", "note": "x"}
            )
            assert r.status_code == 404, (method, path)
            assert "Mia" not in r.get_data(as_text=True)
            walked += 1
    assert walked >= 5
    conn = school["conn"]
    assert conn.execute("select count(*) from follow_up_note").fetchone()[0] == 0
    assert conn.execute("select count(*) from guardian_token").fetchone()[0] == 0
    assert conn.execute("select count(*) from access_log where student_profile_id = %s", (mia,)).fetchone()[0] == 0


# -- item 4: the student's staff page ----------------------------------------------------------------------


def test_the_staff_page_reads_like_the_familys_then_the_staff_tools(client, school):
    mia = school["s"]["Mia"]
    client.get("/staff/login", query_string={"token": school["teacher_token"]})
    r = client.get(f"/staff/students/{mia}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'class="trend trend-declining"' in html
    assert 'data-alert="declining"' in html
    assert '<svg class="chart"' in html
    assert f'data-course-id="{school["maths"]}"' in html
    guardians = html.split('class="guardians"')[1].split("</section>")[0]
    assert "mia.parent@example.org" in guardians
    for word in ["active", "Weekly email: on", "Send sign-in link", "Revoke links"]:
        assert word in guardians
    notes = html.split('class="follow-up"')[1].split("</section>")[0]
    assert 'name="kind"' in notes and 'name="note"' in notes
    data_team = html.split('class="data-team"')[1]
    assert "<details" in html.split('class="data-team"')[0][-200:] or "<summary" in data_team
    assert "Recalculate" in data_team and 'class="weekly-rows"' in data_team
    assert html.index('class="trend') < html.index('class="guardians"') < html.index('class="data-team"')


def test_follow_up_notes_newest_first_staff_only(client, school, conn):
    mia = school["s"]["Mia"]
    client.get("/staff/login", query_string={"token": school["teacher_token"]})
    for day, kind, note in [
        ("2026-02-02", "family_contacted", "Called home"),
        ("2026-02-09", "met_student", "Met after class"),
        ("2026-01-26", "other", "Early note"),
    ]:
        r = client.post(f"/staff/students/{mia}/notes", data={"kind": kind, "noted_on": day, "note": note})
        assert r.status_code == 303 and r.headers["Location"] == f"/staff/students/{mia}"
    html = client.get(f"/staff/students/{mia}").get_data(as_text=True)
    notes = html.split('class="follow-up"')[1].split("</section>")[0]
    assert notes.index("Met after class") < notes.index("Called home") < notes.index("Early note")
    assert "Family contacted" in notes and "Maths.Teacher" in notes
    for bad in [{"kind": "gossip"}, {"noted_on": "2026-02-30"}, {"noted_on": ""}, {"note": "  "}, {"note": "x" * 2001}]:
        form = {"kind": "other", "noted_on": "2026-02-02", "note": "ok"} | bad
        assert client.post(f"/staff/students/{mia}/notes", data=form).status_code == 400, bad
    assert conn.execute("select count(*) from follow_up_note").fetchone()[0] == 3
    conn.execute("set role weekly_trends_reader")
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select * from follow_up_note")
    conn.execute("reset role")
    conn.execute("set role weekly_trends_staff")
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(
            "insert into follow_up_note (student_profile_id, kind, noted_on, note) values (%s, 'other', now(), 'x')",
            (mia,),
        )
    conn.execute("reset role")


def test_the_search_is_the_obvious_thing_and_shows_last_week_and_trend(client, school):
    client.get("/staff/login", query_string={"token": school["office_token"]})
    html = client.get("/staff/", query_string={"q": "Dan"}).get_data(as_text=True)
    assert re.search(r'<input[^>]*type="search"[^>]*class="search-input"', html)
    row = html.split(f'data-student-id="{school["s"]["Dan"]}"')[1].split("</tr>")[0]
    assert "70" in row and "Declining" in row and f"/staff/students/{school['s']['Dan']}?from=search" in row


# -- item 6: every staff view of a student, recorded -------------------------------------------------------


def test_every_staff_view_of_a_student_is_in_the_access_log(client, school, conn):
    mia, dan = school["s"]["Mia"], school["s"]["Dan"]
    client.get("/staff/login", query_string={"token": school["teacher_token"]})
    client.get(f"/staff/students/{mia}?from=attention")
    client.get(f"/staff/students/{dan}")
    client.post(f"/staff/students/{mia}/notes", data={"kind": "other", "noted_on": "2026-02-02", "note": "n"})
    client.post(f"/staff/students/{mia}/recalculate")
    got = conn.execute(
        "select staff_member_id, student_profile_id, endpoint from access_log where staff_member_id is not null order by id"
    ).fetchall()
    t = school["teacher"]
    assert got == [
        (t, mia, "GET /staff/students/<student_id> from attention"),
        (t, dan, "GET /staff/students/<student_id>"),
        (t, mia, "POST /staff/students/<student_id>/notes"),
        (t, mia, "POST /staff/students/<student_id>/recalculate"),
    ]
    before = conn.execute("select count(*) from access_log").fetchone()[0]
    client.get("/staff/")  # the list shows four students' figures: one entry each
    listed_entries = conn.execute(
        "select student_profile_id, endpoint from access_log order by id offset %s", (before,)
    ).fetchall()
    assert sorted(listed_entries) == sorted(
        (s, "GET /staff/") for s in [school["s"][n] for n in ["Mia", "Dan", "Bea", "Sam"]]
    )


def test_the_student_page_is_one_transaction_of_one_call(client, school):
    from web import db

    calls = []
    original = db.staff

    def counting():
        calls.append(1)
        return original()

    db.staff = counting
    try:
        r = client.get(f"/staff/students/{school['s']['Mia']}", headers=bearer(school["teacher_token"]))
    finally:
        db.staff = original
    assert r.status_code == 200 and len(calls) == 1


# -- the decline walked from a kept state (alert_walk_checkpoint), not the whole history -------------------


def declining_ids(client, token: str) -> set[int]:
    r = client.get("/api/v1/staff/attention", headers=bearer(token))
    assert r.status_code == 200
    return {
        e["student_id"]
        for c in r.get_json()["courses"]
        for e in c["students"]
        if any(x["reason"] == "declining" for x in e["reasons"])
    }


@pytest.fixture
def long_decline(conn):
    """A decline this week against the baseline of 30 weeks ago: 90s, two weeks of 75 (a decline begins),
    21 weeks of 82 (neither low nor good against 90: the decline's baseline stays), then two weeks of 78."""
    course = add_course(conn, "Maths")
    ola = add_student(conn, "Ola")
    for week in range(-30, -24):
        scores(conn, ola, course, week, 90, 90)
    for week in (-24, -23):
        scores(conn, ola, course, week, 75, 75)
    for week in range(-22, -1):
        scores(conn, ola, course, week, 82, 82)
    for week in (-1, 0):
        scores(conn, ola, course, week, 78, 78)
    _, token = staff_member(conn, "maths.teacher@school.example", course)
    return {"course": course, "ola": ola, "token": token}


def whole_history_declining(conn, student: int) -> bool:
    return conn.execute(
        "select coalesce(bool_or(alert = 'declining'), false) from weekly_trend_alerts(%s, %s, %s)",
        (student, this_monday() - timedelta(weeks=1), this_monday()),
    ).fetchone()[0]


def test_the_list_walks_from_a_kept_state_and_a_change_to_older_weeks_renews_it(client, conn, long_decline):
    ola = long_decline["ola"]
    assert whole_history_declining(conn, ola)
    assert conn.execute("select count(*) from alert_walk_checkpoint").fetchone()[0] == 0
    assert declining_ids(client, long_decline["token"]) == {ola}
    state = conn.execute(
        "select (state).next_monday, (state).state, (state).base from alert_walk_checkpoint where student_profile_id = %s",
        (ola,),
    ).fetchone()
    # kept at a Monday at least three weeks back, in the decline against the 90s
    assert state[0] <= this_monday() - timedelta(weeks=3) and state[1] == "recovering" and state[2] == 90
    # a write to this week is not noted: the kept state does not include it
    scores(conn, ola, long_decline["course"], 0, 78)
    assert conn.execute("select count(*) from alert_history_change").fetchone()[0] == 0
    assert declining_ids(client, long_decline["token"]) == {ola}

    # the two weeks of 75, half a year back, go: no decline ever began, and the list says so at once
    old = datetime.combine(this_monday() - timedelta(weeks=24), datetime.min.time(), UTC)
    conn.execute(
        "delete from quiz_attempt where student_profile_id = %s and completed_at >= %s and completed_at < %s",
        (ola, old, old + timedelta(weeks=2)),
    )
    assert (
        conn.execute("select count(*) from alert_history_change where student_profile_id = %s", (ola,)).fetchone()[0]
        == 1
    )
    assert not whole_history_declining(conn, ola)
    assert declining_ids(client, long_decline["token"]) == set()
    assert (
        conn.execute(
            "select (state).state from alert_walk_checkpoint where student_profile_id = %s", (ola,)
        ).fetchone()[0]
        == "normal"
    )
    # the change is in the new state: its note is gone
    assert conn.execute("select count(*) from alert_history_change").fetchone()[0] == 0


def test_a_change_the_kept_state_did_not_see_makes_it_stale(client, conn, db_url, long_decline):
    """A writer changes an older week while the list computes the kept state in a snapshot without it: the
    next list does not go on from that state (the writer's transaction is not visible in its snapshot)."""
    import psycopg  # noqa: PLC0415

    ola = long_decline["ola"]
    old = datetime.combine(this_monday() - timedelta(weeks=24), datetime.min.time(), UTC)
    with psycopg.connect(db_url) as writer:
        writer.execute(
            "delete from quiz_attempt where student_profile_id = %s and completed_at >= %s and completed_at < %s",
            (ola, old, old + timedelta(weeks=2)),
        )
        # not committed yet: the list sees the decline, and keeps a state with it
        assert declining_ids(client, long_decline["token"]) == {ola}
        assert (
            conn.execute(
                "select (state).state from alert_walk_checkpoint where student_profile_id = %s", (ola,)
            ).fetchone()[0]
            == "recovering"
        )
        writer.commit()
    assert declining_ids(client, long_decline["token"]) == set()
    assert not whole_history_declining(conn, ola)


def test_a_deleted_student_takes_their_kept_state_along(client, conn, long_decline):
    ola = long_decline["ola"]
    declining_ids(client, long_decline["token"])
    conn.execute(
        "insert into alert_history_change (student_profile_id) values (%s)", (ola,)
    )  # as a writer of an older week would
    conn.execute("delete from student_profile where id = %s", (ola,))
    assert conn.execute("select count(*) from alert_walk_checkpoint").fetchone()[0] == 0
    assert conn.execute("select count(*) from alert_history_change").fetchone()[0] == 0
