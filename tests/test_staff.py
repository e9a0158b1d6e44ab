"""Staff pages: their own token and session, search, weekly rows with filters, recalculate;
the role weekly_trends_staff; parents' and staff credentials kept apart."""

from __future__ import annotations

from datetime import UTC, datetime, timezone

import pytest
from psycopg import errors

from factories import add_guardian, add_quiz, add_student, drift

UTC = UTC


@pytest.fixture
def staff(conn, family):
    member = conn.execute(
        "insert into staff_member (email, display_name) values ('teacher@school.example', 'T') returning id"
    ).fetchone()[0]
    token = conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0]
    return family | {"staff_token": token, "member": member}


def staff_sign_in(client, token):
    return client.get("/staff/login", query_string={"token": token})


def test_issue_staff_token(conn, staff):
    token = staff["staff_token"]
    assert token.startswith("wts_") and len(token) == 68
    assert (
        conn.execute(
            "select count(*) from staff_token where token_hash = sha256(convert_to(%s, 'UTF8'))", (token,)
        ).fetchone()[0]
        == 1
    )
    assert all(token[4:] not in row[0] for row in conn.execute("select t::text from staff_token t"))
    expires = conn.execute("select expires_at - created_at from staff_token").fetchone()[0]
    assert expires.days == 30


def test_issue_staff_token_rejects_unknown_member_and_bad_ttl(conn):
    with pytest.raises(errors.NoDataFound):
        conn.execute("select issue_staff_token(987654)")
    member = conn.execute("insert into staff_member (email) values ('x@school.example') returning id").fetchone()[0]
    for ttl in ["-1 day", "0 seconds"]:
        with pytest.raises(errors.InvalidParameterValue):
            conn.execute("select issue_staff_token(%s, %s::interval)", (member, ttl))
    with pytest.raises(errors.InvalidParameterValue):
        conn.execute("select issue_staff_token(%s, null)", (member,))
    assert conn.execute("select count(*) from staff_token").fetchone()[0] == 0


def test_staff_role_holds_only_what_the_pages_need(conn):
    assert conn.execute(
        "select rolcanlogin, rolsuper from pg_roles where rolname = 'weekly_trends_staff'"
    ).fetchone() == (False, False)
    grants = conn.execute(
        "select table_name, privilege_type from information_schema.role_table_grants where grantee = 'weekly_trends_staff' order by 1"
    ).fetchall()
    assert grants == [
        (t, "SELECT")
        for t in sorted(
            [
                "course_teacher",  # issue 27: whose courses a teacher's list shows
                "guardian",
                "guardian_link_restriction_event",  # the staff page lists who restricted a link, when, why
                "guardian_student",
                "staff_member",
                "staff_token",
                "student_profile",
                "student_weekly_performance",
            ]
        )
    ]
    conn.execute("set role weekly_trends_staff")
    conn.execute("select refresh_weekly_performance(p_student_profile_id => null, p_refresh_class_view => false)")
    for statement in [
        "update student_weekly_performance set quiz_count = 1",
        "select * from quiz_attempt",
        "select issue_staff_token(1)",
        "select issue_guardian_token(1)",
        "select * from guardian_token",
    ]:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)
    conn.execute("reset role")


def test_the_reader_role_cannot_see_staff_tokens(conn):
    conn.execute("set role weekly_trends_reader")
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select * from staff_token")
    conn.execute("reset role")


def test_staff_queries_run_as_the_staff_role(app):
    from web import db

    with app.app_context(), db.staff() as conn:
        assert conn.execute("select current_user").fetchone()["current_user"] == "weekly_trends_staff"


def test_staff_sign_in_and_out(client, staff):
    assert client.get("/staff/").status_code == 401
    r = staff_sign_in(client, staff["staff_token"])
    assert r.status_code == 303 and r.headers["Location"] == "/staff/"
    assert "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Strict" in r.headers["Set-Cookie"]
    assert client.get("/staff/").status_code == 200
    assert client.post("/staff/logout").status_code == 303
    assert client.get("/staff/").status_code == 401


def test_a_replayed_staff_cookie_after_sign_out_is_refused(app, client, staff, conn):
    staff_sign_in(client, staff["staff_token"])
    old = client.get_cookie("weekly_trends_session").value
    assert client.post("/staff/logout").status_code == 303
    replay = app.test_client()
    replay.set_cookie("weekly_trends_session", old)
    assert replay.get("/staff/").status_code == 401
    assert conn.execute("select count(*) from staff_token where revoked_at is not null").fetchone()[0] == 1


def test_staff_form_sign_in(client, staff):
    assert client.post("/staff/login", data={"token": staff["staff_token"]}).status_code == 303
    assert client.get("/staff/").status_code == 200


def test_parents_credentials_never_open_staff_pages(client, staff):
    bearer = {"Authorization": f"Bearer {staff['token']}"}
    for path in ["/staff/", f"/staff/students/{staff['a']}"]:
        assert client.get(path, headers=bearer).status_code == 401
    assert client.post(f"/staff/students/{staff['a']}/recalculate", headers=bearer).status_code == 401
    assert staff_sign_in(client, staff["token"]).status_code == 401  # a parent token at the staff sign-in
    client.get("/login", query_string={"token": staff["token"]})  # a parent's session
    assert client.get("/").status_code == 200
    assert client.get("/staff/").status_code == 401
    assert client.get(f"/staff/students/{staff['a']}").status_code == 401


def test_staff_credentials_never_open_parents_pages(client, staff):
    bearer = {"Authorization": f"Bearer {staff['staff_token']}"}
    assert client.get(f"/api/v1/students/{staff['a']}/weekly-trend", headers=bearer).status_code == 401
    assert client.get("/api/v1/me/students", headers=bearer).status_code == 401
    assert client.get("/login", query_string={"token": staff["staff_token"]}).status_code == 401
    staff_sign_in(client, staff["staff_token"])
    assert client.get("/staff/").status_code == 200
    assert client.get("/").status_code == 401
    assert client.get(f"/api/v1/students/{staff['a']}/weekly-trend").status_code == 401


def test_staff_bearer_token_works_too(client, staff):
    assert client.get("/staff/", headers={"Authorization": f"Bearer {staff['staff_token']}"}).status_code == 200


def test_revoked_staff_token_ends_the_session(client, staff):
    staff_sign_in(client, staff["staff_token"])
    staff["conn"].execute("update staff_token set revoked_at = now()")
    assert client.get("/staff/").status_code == 401


def student_ids(html: str) -> list[int]:
    return [int(part.split('"')[0]) for part in html.split('data-student-id="')[1:]]


def test_search_by_name_and_by_guardian_email(client, staff):
    conn = staff["conn"]
    anna = add_student(conn, "Anna_Lee")
    add_guardian(conn, "Lee.Family@Example.org", anna)
    staff_sign_in(client, staff["staff_token"])
    search = lambda q: student_ids(client.get("/staff/", query_string={"q": q}).get_data(as_text=True))  # noqa: E731
    assert search("ann") == [staff["a"], anna]  # Ann, Anna_Lee
    assert search("b@example") == [staff["b"]]
    assert search("lee.family@example.org") == [anna]
    assert search("a_l") == [anna]  # _ is a letter here, not a wildcard
    assert search("%") == []
    assert search("nobody") == []
    html = client.get("/staff/", query_string={"q": "Ann"}).get_data(as_text=True)
    assert "a@example.org" in html
    assert client.get("/staff/", query_string={"q": "x" * 201}).status_code == 400


@pytest.fixture
def weeks(staff):
    conn, a = staff["conn"], staff["a"]
    # Ann already has 2024 W3 and W5; add 2023 W52 and 2025 W1 (which starts on 30 Dec 2024).
    add_quiz(conn, a, 60, datetime(2023, 12, 27, 12, tzinfo=UTC))
    add_quiz(conn, a, 70, datetime(2024, 12, 31, 12, tzinfo=UTC))
    return staff


def rows(html: str) -> list[str]:
    # The raw rows, under "for the data team" (the family's weeks above carry data-week-start).
    return [part.split('"')[0] for part in html.split('data-row-week-start="')[1:]]


def test_weekly_rows_newest_first_with_filters(client, weeks):
    staff_sign_in(client, weeks["staff_token"])
    path = f"/staff/students/{weeks['a']}"
    r = client.get(path)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-store"
    html = r.get_data(as_text=True)
    assert rows(html) == ["2024-12-30", "2024-01-29", "2024-01-15", "2023-12-25"]
    seed = html.split('data-row-week-start="2024-01-15"')[1].split("</tr>")[0]
    assert all(f in seed for f in ["<td>2024</td>", "<td>3</td>", "88.60", "87.67", "90.00"])
    assert "<time" in seed  # created_at, updated_at: shown, not editable
    assert "<input" not in seed
    assert rows(client.get(path, query_string={"year": "2024"}).get_data(as_text=True)) == ["2024-01-29", "2024-01-15"]
    assert rows(client.get(path, query_string={"year": "2025"}).get_data(as_text=True)) == ["2024-12-30"]
    assert rows(client.get(path, query_string={"week": "3"}).get_data(as_text=True)) == ["2024-01-15"]
    assert rows(client.get(path, query_string={"year": "2024", "week": "52"}).get_data(as_text=True)) == []
    assert rows(client.get(path, query_string={"year": "", "week": ""}).get_data(as_text=True)) == rows(html)
    for bad in [{"year": "abc"}, {"week": "54"}, {"week": "0"}, {"year": "-1"}]:
        r = client.get(path, query_string=bad, headers={"Accept": "text/html,*/*;q=0.8"})  # a browser: a page
        assert r.status_code == 400 and r.mimetype == "text/html"
        r = client.get(path, query_string=bad)  # a program: the problem document
        assert r.status_code == 400 and r.mimetype == "application/problem+json" and r.get_json()["status"] == 400
    assert client.get("/staff/students/987654").status_code == 404
    assert client.get("/staff/students/x").status_code == 400


def test_recalculate_repairs_a_drifted_student(client, weeks):
    conn, a = weeks["conn"], weeks["a"]
    other = add_student(conn, "Zed")
    add_quiz(conn, other, 50, datetime(2024, 1, 16, 9, tzinfo=UTC))
    conn.execute(
        "update student_weekly_performance set quiz_count = 7, quiz_sum = 1"
    )  # drift everyone, as a bad hand fix would
    assert {row[1] for row in drift(conn)} >= {a, other}
    staff_sign_in(client, weeks["staff_token"])
    r = client.post(f"/staff/students/{a}/recalculate")
    assert r.status_code == 303 and r.headers["Location"] == f"/staff/students/{a}"
    assert "Recalculated: " in client.get(r.headers["Location"]).get_data(as_text=True)
    assert conn.execute("select * from check_weekly_performance(%s)", (a,)).fetchall() == []
    assert (
        conn.execute("select count(*) from check_weekly_performance(%s)", (other,)).fetchone()[0] == 1
    )  # one student only
    assert client.post("/staff/students/987654/recalculate").status_code == 404


def test_recalculate_from_another_origin_is_refused(client, weeks):
    conn = weeks["conn"]
    conn.execute("update student_weekly_performance set quiz_count = 7")
    staff_sign_in(client, weeks["staff_token"])
    for headers in [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}]:
        assert client.post(f"/staff/students/{weeks['a']}/recalculate", headers=headers).status_code == 403
    assert conn.execute("select count(*) from check_weekly_performance()").fetchone()[0] > 0
    assert (
        client.post(f"/staff/students/{weeks['a']}/recalculate", headers={"Origin": "http://localhost"}).status_code
        == 303
    )
