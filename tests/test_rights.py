"""The family's rights over the record (issue 25, items 1-3): access that ends at the rights age, the
student's own access and sharing, restrictions on one link; every decision in guardian_link_state().

The SQL tests fix the clock through p_at; the routes' tests put the birthday weeks away from today
(the request's own now()), so no test depends on the hour it runs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from web.mail.digest import children, guardians
from web.ops.cli import main

from factories import add_guardian, add_student
from mailserver import mail_env, smtp_server  # noqa: F401 - fixtures

PROBLEM = "application/problem+json"
STATES = ("active", "access_ended", "shared", "dependant", "restricted", "lifted", "unlinked")
GIVES_ACCESS = {"active", "shared", "dependant", "lifted"}
STUDENT_LINK = re.compile(r"http://localhost(/login\?token=(wtl_[0-9a-f]{64}))")


def years_ago(years: int, days: int = 0) -> date:
    today = date.today()
    return today.replace(year=today.year - years) - timedelta(days=days)


def state(conn, guardian_id: int, student_id: int, at: datetime | None = None) -> str:
    if at is None:
        return conn.execute("select guardian_link_state(%s, %s)", (guardian_id, student_id)).fetchone()[0]
    return conn.execute("select guardian_link_state(%s, %s, %s)", (guardian_id, student_id, at)).fetchone()[0]


def put_in_state(conn, family: dict, name: str) -> None:
    """The link of family's guardian to child a, in the state `name` (as of today)."""
    g, a = family["guardian"], family["a"]
    if name in ("access_ended", "shared", "dependant"):
        conn.execute("update student_profile set birth_date = %s where id = %s", (years_ago(18, 30), a))
    if name == "shared":
        conn.execute("update guardian_student set shared_at = now() where guardian_id = %s", (g,))
    if name == "dependant":
        conn.execute("select set_student_dependant(%s, current_date + 30)", (a,))
    if name in ("restricted", "lifted"):
        conn.execute("select restrict_guardian_link(%s, %s, 'court order of 2026-11-02')", (g, a))
    if name == "lifted":
        conn.execute("select lift_guardian_link_restriction(%s, %s)", (g, a))
    if name == "unlinked":
        conn.execute("delete from guardian_student where guardian_id = %s", (g,))


# --- the one home: guardian_link_state() at a fixed instant ---------------------------------------


def test_the_rights_age_ends_access_on_the_birthday_in_the_students_time_zone(conn):
    s = add_student(conn, "Kiri", "Pacific/Auckland")
    g = add_guardian(conn, "kiri.parent@example.org", s)
    conn.execute("update student_profile set birth_date = '2008-03-10' where id = %s", (s,))
    # 2026-03-10 00:00 in Auckland is 2026-03-09 11:00 UTC.
    assert state(conn, g, s, datetime(2026, 3, 9, 10, 59, tzinfo=UTC)) == "active"
    assert state(conn, g, s, datetime(2026, 3, 9, 11, 0, tzinfo=UTC)) == "access_ended"
    ended = conn.execute(
        "select access_ended_on from guardian_link_states(%s, %s)", (g, datetime(2026, 4, 1, tzinfo=UTC))
    ).fetchone()[0]
    assert ended == date(2026, 3, 10)
    # The setting WEEKLY_TRENDS_RIGHTS_AGE sets: 21 here, so still active.
    with conn.transaction():
        conn.execute("set local weekly_trends.rights_age = 21")
        assert state(conn, g, s, datetime(2026, 3, 9, 11, 0, tzinfo=UTC)) == "active"


def test_without_a_birth_date_nothing_changes(conn):
    s = add_student(conn, "No Date")
    g = add_guardian(conn, "nodate@example.org", s)
    assert state(conn, g, s, datetime(2090, 1, 1, tzinfo=UTC)) == "active"


def test_sharing_and_a_dependant_record_keep_access_past_the_age(conn):
    s = add_student(conn, "Sam")
    g1 = add_guardian(conn, "sam.one@example.org", s)
    g2 = add_guardian(conn, "sam.two@example.org", s)
    conn.execute("update student_profile set birth_date = '2000-01-01' where id = %s", (s,))
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert state(conn, g1, s, at) == state(conn, g2, s, at) == "access_ended"
    conn.execute("update guardian_student set shared_at = now() where guardian_id = %s", (g1,))
    assert (state(conn, g1, s, at), state(conn, g2, s, at)) == ("shared", "access_ended")
    conn.execute("select set_student_dependant(%s, '2026-06-01')", (s,))
    assert state(conn, g2, s, at) == "dependant"
    assert state(conn, g2, s, datetime(2026, 6, 2, 12, tzinfo=UTC)) == "access_ended"  # through that day only


def test_a_restriction_is_kept_with_who_when_why_and_lifting_restores(conn):
    s = add_student(conn, "Rae")
    g1 = add_guardian(conn, "rae.one@example.org", s)
    g2 = add_guardian(conn, "rae.two@example.org", s)
    conn.execute("select restrict_guardian_link(%s, %s, 'court order', '2026-12-31')", (g1, s))
    assert state(conn, g1, s, datetime(2026, 12, 31, 23, tzinfo=UTC)) == "restricted"
    assert state(conn, g1, s, datetime(2027, 1, 1, 1, tzinfo=UTC)) == "active"  # the end passed
    assert state(conn, g2, s) == "active"  # the other guardian: nothing changes
    assert conn.execute("select lift_guardian_link_restriction(%s, %s)", (g1, s)).fetchone()[0] is True
    assert conn.execute("select lift_guardian_link_restriction(%s, %s)", (g1, s)).fetchone()[0] is False
    assert state(conn, g1, s) == "active"
    history = conn.execute(
        "select action, reason, until, by_role is not null from guardian_link_restriction_event"
        " where guardian_id = %s order by id",
        (g1,),
    ).fetchall()
    assert history == [("restricted", "court order", date(2026, 12, 31), True), ("lifted", None, None, True)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("delete from guardian_link_restriction_event")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("update guardian_link_restriction_event set reason = 'x'")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ("%(g)s, %(s)s, ''", psycopg.errors.InvalidParameterValue),  # a reason is needed
        ("%(g)s, %(s)s, null", psycopg.errors.InvalidParameterValue),
        ("%(g)s, %(s)s, 'x', '2000-01-01'", psycopg.errors.InvalidParameterValue),  # an end in the past
        ("%(g)s, %(other)s, 'x'", psycopg.errors.NoDataFound),  # not linked
    ],
)
def test_a_bad_restriction_is_refused(conn, args, error):
    s, other = add_student(conn), add_student(conn)
    g = add_guardian(conn, "g@example.org", s)
    with pytest.raises(error):
        conn.execute(f"select restrict_guardian_link({args})", {"g": g, "s": s, "other": other})


def test_staff_may_restrict_and_lift_but_the_reader_may_not(conn):
    s = add_student(conn)
    g = add_guardian(conn, "g@example.org", s)
    with conn.transaction():
        conn.execute("set local role weekly_trends_staff")
        conn.execute("select restrict_guardian_link(%s, %s, 'legal document')", (g, s))
    with conn.transaction(), pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("set local role weekly_trends_reader")
        conn.execute("select lift_guardian_link_restriction(%s, %s)", (g, s))
    assert state(conn, g, s) == "restricted"


# --- every student-scoped route, the digest and the invitation, for each state --------------------


def routes(family: dict) -> dict[str, tuple[str, bool]]:
    a = family["a"]
    return {
        "page": (f"/students/{a}", True),
        "trend": (f"/api/v1/students/{a}/weekly-trend", False),
        "csv": (f"/api/v1/students/{a}/weekly-trend.csv", False),
        "week page": (f"/students/{a}/weeks/2024-W03", True),
        "week json": (f"/api/v1/students/{a}/weeks/2024-W03/scores", False),
    }


@pytest.mark.parametrize("name", STATES)
def test_every_route_and_mail_job_follows_the_links_state(client, family, name, mail_env, smtp_server, capsys):
    conn = family["conn"]
    put_in_state(conn, family, name)
    expected = "active" if name == "lifted" else name
    assert state(conn, family["guardian"], family["a"]) == expected
    auth = {"Authorization": f"Bearer {family['token']}"}
    for route, (path, page) in routes(family).items():
        headers = auth | ({"Accept": "text/html"} if page else {})
        r = client.get(path, headers=headers, query_string={"end": "2024-02-01"})
        if name in GIVES_ACCESS:
            assert r.status_code == 200, route
        elif name == "access_ended":
            assert r.status_code == 403, route
            if page:
                text = r.get_data(as_text=True)
                assert r.mimetype == "text/html" and "came of age" in text and "can share it" in text, route
                assert "88.6" not in text
            else:
                assert r.mimetype == PROBLEM and r.get_json()["type"].endswith("/access-ended"), route
        else:  # restricted, unlinked: the 404 an unknown id gets
            assert r.status_code == 404, route
            if not page:
                unknown = client.get(path.replace(f"/{family['a']}/", "/999999/"), headers=headers)
                assert r.get_json() == unknown.get_json(), route
    mine = client.get("/api/v1/me/students", headers=auth).get_json()["students"]
    assert (family["a"] in [s["id"] for s in mine]) == (name in GIVES_ACCESS)
    # The digest: the guardian (whose only child is a) is due only while the link gives access.
    dict_conn = psycopg.connect(conn.info.dsn, autocommit=True, row_factory=psycopg.rows.dict_row)
    with dict_conn:
        due = [g["id"] for g in guardians(dict_conn, None)]
        kids = [k["id"] for k in children(dict_conn, family["guardian"], date(2024, 1, 29), (10, 2))]
    assert (family["guardian"] in due) == (name in GIVES_ACCESS)
    assert (family["a"] in kids) == (name in GIVES_ACCESS)
    # The invitation: sent while the link gives access; else refused, saying why, exit 1.
    status = main(["invite", "--guardian-email", "a@example.org", "--quiet"])
    err = capsys.readouterr().err
    assert status == (0 if name in GIVES_ACCESS else 1)
    if name == "access_ended":
        assert "access ended on" in err and "came of age" in err
    elif name not in GIVES_ACCESS:
        assert "has no linked student" in err
    assert len(smtp_server.messages) == (1 if name in GIVES_ACCESS else 0)


def test_access_ends_for_one_guardian_while_another_keeps_it_by_sharing(client, conn):
    s = add_student(conn, "Tui")
    g1 = add_guardian(conn, "tui.one@example.org", s)
    g2 = add_guardian(conn, "tui.two@example.org", s)
    conn.execute("update student_profile set birth_date = %s where id = %s", (years_ago(19), s))
    conn.execute("update guardian_student set shared_at = now() where guardian_id = %s", (g2,))
    t1, t2 = (conn.execute("select issue_guardian_token(%s)", (g,)).fetchone()[0] for g in (g1, g2))
    path = f"/api/v1/students/{s}/weekly-trend"
    assert client.get(path, headers={"Authorization": f"Bearer {t1}"}).status_code == 403
    assert client.get(path, headers={"Authorization": f"Bearer {t2}"}).status_code == 200


def test_a_restricted_guardian_is_no_guardian_for_invite_by_student_and_the_staff_link(conn, mail_env, smtp_server):
    s = add_student(conn, "Ula")
    g1 = add_guardian(conn, "ula.one@example.org", s)
    add_guardian(conn, "ula.two@example.org", s)
    conn.execute("select restrict_guardian_link(%s, %s, 'court order')", (g1, s))
    assert main(["invite", "--student-id", str(s), "--quiet"]) == 0
    assert [m.recipients for m in smtp_server.messages] == [["ula.two@example.org"]]
    with conn.transaction(), pytest.raises(psycopg.errors.NoDataFound):
        conn.execute("set local role weekly_trends_staff")
        conn.execute("select set_config('app.staff_member_id', '1', true)")
        conn.execute("select staff_issue_guardian_token(%s, %s, '1 day')", (s, g1))


def test_invite_by_student_says_whose_access_ended_and_exits_1(conn, mail_env, smtp_server, capsys):
    s = add_student(conn, "Vai")
    add_guardian(conn, "vai.one@example.org", s)
    conn.execute("update student_profile set birth_date = %s where id = %s", (years_ago(20), s))
    assert main(["invite", "--student-id", str(s), "--quiet"]) == 1
    assert "access ended on" in capsys.readouterr().err
    assert smtp_server.messages == []


# --- the student's own access ----------------------------------------------------------------------


@pytest.fixture
def adult(conn):
    """Student Wiremu, 19, with email, and two guardians (one with a token)."""
    s = add_student(conn, "Wiremu")
    conn.execute(
        "update student_profile set birth_date = %s, email = 'wiremu@example.org' where id = %s", (years_ago(19), s)
    )
    g1 = add_guardian(conn, "w.one@example.org", s)
    g2 = add_guardian(conn, "w.two@example.org", s)
    other = add_student(conn, "Other")
    conn.execute("insert into guardian_student values (%s, %s)", (g1, other))
    t1 = conn.execute("select issue_guardian_token(%s)", (g1,)).fetchone()[0]
    return {"s": s, "g1": g1, "g2": g2, "other": other, "t1": t1}


def test_a_student_signs_in_with_their_own_link_and_sees_only_themselves(
    client, conn, adult, mail_env, smtp_server, capsys
):
    assert main(["invite", "--student-id", str(adult["s"]), "--to-student"]) == 0
    [mail] = smtp_server.messages
    assert mail.recipients == ["wiremu@example.org"]
    path, token = STUDENT_LINK.search(mail.part("plain")).groups()
    assert "wtl_" not in capsys.readouterr().out  # the token is never printed
    stored = conn.execute("select count(*) from student_token where token_hash = sha256(%s::bytea)", (token.encode(),))
    assert stored.fetchone()[0] == 1
    assert client.get(path).status_code == 303
    page = client.get("/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Wiremu" in text and "Who can see your record" in text
    assert "w.one@example.org" in text and "Share with them" in text
    assert client.get(f"/students/{adult['other']}").status_code == 404
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me/students", headers=auth).get_json()["students"] == [
        {"id": adult["s"], "display_name": "Wiremu"}
    ]
    assert client.get(f"/api/v1/students/{adult['s']}/weekly-trend", headers=auth).status_code == 200
    assert client.get(f"/api/v1/students/{adult['other']}/weekly-trend", headers=auth).status_code == 404
    assert client.get(f"/api/v1/students/{adult['s']}/weekly-trend.csv", headers=auth).status_code == 200
    assert client.get(f"/api/v1/students/{adult['s']}/weeks/2024-W03/scores", headers=auth).status_code == 200
    read = conn.execute("select count(*) from access_log where student_reader_id = %s", (adult["s"],)).fetchone()
    assert read[0] >= 4


def test_the_sharing_switch_takes_effect_at_once(client, conn, adult):
    token = conn.execute("select issue_student_token(%s)", (adult["s"],)).fetchone()[0]
    guardian = {"Authorization": f"Bearer {adult['t1']}"}
    trend = f"/api/v1/students/{adult['s']}/weekly-trend"
    assert client.get(trend, headers=guardian).status_code == 403
    assert client.get(f"/login?token={token}").status_code == 303
    assert client.post("/sharing", data={"guardian_id": adult["g1"], "share": "on"}).status_code == 303
    assert client.get(trend, headers=guardian).status_code == 200
    assert state(conn, adult["g2"], adult["s"]) == "access_ended"  # the other guardian: unchanged
    assert client.post("/sharing", data={"guardian_id": adult["g1"], "share": "off"}).status_code == 303
    assert client.get(trend, headers=guardian).status_code == 403
    # not theirs to share: another student's guardian, or bad input
    assert client.post("/sharing", data={"guardian_id": 999999, "share": "on"}).status_code == 404
    assert client.post("/sharing", data={"guardian_id": adult["g1"], "share": "maybe"}).status_code == 400


def test_a_guardian_cannot_use_the_sharing_switch(client, adult):
    r = client.post(
        "/sharing", data={"guardian_id": adult["g1"], "share": "on"}, headers={"Authorization": f"Bearer {adult['t1']}"}
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("mode", "minor_may", "adult_may"), [("eligible", False, True), ("all", True, True), ("off", False, False)]
)
def test_which_students_may_sign_in(conn, adult, mode, minor_may, adult_may):
    minor = add_student(conn, "Minor")
    conn.execute("update student_profile set birth_date = %s where id = %s", (years_ago(12), minor))
    with conn.transaction():
        conn.execute("select set_config('weekly_trends.student_access', %s, true)", (mode,))
        may = conn.execute("select student_may_sign_in(%s), student_may_sign_in(%s)", (minor, adult["s"])).fetchone()
    assert may == (minor_may, adult_may)


def test_student_access_off_ends_a_students_session_at_the_next_request(db_url, conn, adult):
    from web import create_app
    from web.db import close_pool

    token = conn.execute("select issue_student_token(%s)", (adult["s"],)).fetchone()[0]
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "k", "STUDENT_ACCESS": "off"})
    try:
        off = app.test_client().get(
            f"/api/v1/students/{adult['s']}/weekly-trend", headers={"Authorization": f"Bearer {token}"}
        )
    finally:
        close_pool(app)
    assert off.status_code == 401


def test_to_student_needs_an_email_and_an_eligible_student(conn, mail_env, smtp_server, capsys):
    young = add_student(conn, "Young")
    conn.execute(
        "update student_profile set email = 'young@example.org', birth_date = %s where id = %s", (years_ago(15), young)
    )
    no_mail = add_student(conn, "No Mail")
    assert main(["invite", "--student-id", str(young), "--to-student"]) == 1
    assert "may not sign in" in capsys.readouterr().err
    assert main(["invite", "--student-id", str(no_mail), "--to-student"]) == 1
    assert "no email address" in capsys.readouterr().err
    assert smtp_server.messages == []


# --- the staff page ----------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client, conn, family):
    member = conn.execute(
        "insert into staff_member (email, display_name) values ('office@example.org', 'Office') returning id"
    ).fetchone()[0]
    token = conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0]
    assert client.get("/staff/login", query_string={"token": token}).status_code == 303
    return client


def test_staff_restrict_and_lift_on_the_page_with_who_when_why(staff_client, conn, family, app):
    g, a = family["guardian"], family["a"]
    base = f"/staff/students/{a}/guardians/{g}"
    assert staff_client.post(f"{base}/restrict", data={"reason": ""}).status_code == 400
    assert staff_client.post(f"{base}/restrict", data={"reason": "x", "until": "soon"}).status_code == 400
    assert staff_client.post(f"{base}/restrict", data={"reason": "Court order 12/3"}).status_code == 303
    assert state(conn, g, a) == "restricted"
    page = staff_client.get(f"/staff/students/{a}").get_data(as_text=True)
    assert 'data-state="restricted"' in page and "Court order 12/3" in page and "Office" in page
    parent = app.test_client()
    trend = f"/api/v1/students/{a}/weekly-trend"
    assert parent.get(trend, headers={"Authorization": f"Bearer {family['token']}"}).status_code == 404
    assert staff_client.post(f"{base}/lift-restriction").status_code == 303
    assert state(conn, g, a) == "active"
    assert parent.get(trend, headers={"Authorization": f"Bearer {family['token']}"}).status_code == 200
    actions = conn.execute(
        "select action, staff_member_id is not null from guardian_link_restriction_event order by id"
    ).fetchall()
    assert actions == [("restricted", True), ("lifted", True)]


def test_staff_records_a_dependant_and_sends_a_students_link(mail_env, smtp_server, staff_client, conn, family):
    a = family["a"]
    conn.execute(
        "update student_profile set birth_date = %s, email = 'ann@example.org' where id = %s", (years_ago(18, 40), a)
    )
    assert state(conn, family["guardian"], a) == "access_ended"
    until = (date.today() + timedelta(days=60)).isoformat()
    assert staff_client.post(f"/staff/students/{a}/dependant", data={"until": until}).status_code == 303
    assert state(conn, family["guardian"], a) == "dependant"
    assert staff_client.post(f"/staff/students/{a}/send-student-link").status_code == 303
    [mail] = smtp_server.messages
    assert mail.recipients == ["ann@example.org"] and STUDENT_LINK.search(mail.part("plain"))


# --- OneRoster: demographics.csv's birthDate ------------------------------------------------------------


def test_oneroster_reads_birth_dates_from_demographics_when_present(conn, tmp_path):
    import shutil
    from pathlib import Path

    from web.oneroster import BadRowsRefused, Options, import_oneroster

    folder = tmp_path / "set"
    shutil.copytree(Path(__file__).parent / "data" / "oneroster" / "spec-1.1", folder)
    manifest = folder / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("file.demographics,absent", "file.demographics,bulk"))
    (folder / "demographics.csv").write_text(
        "sourcedId,status,dateLastModified,birthDate,sex\n"
        "u-stu-1,active,2024-01-10T12:00:00.000Z,2006-05-04,female\n"
        "u-stu-2,active,2024-01-10T12:00:00.000Z,,male\n"
        "u-par-1,active,2024-01-10T12:00:00.000Z,1980-01-01,female\n",
        encoding="utf-8",
    )
    import_oneroster(conn, folder, Options(progress=False))
    births = dict(
        conn.execute(
            "select m.sourced_id, p.birth_date from oneroster_student m join student_profile p"
            " on p.id = m.student_profile_id order by 1"
        ).fetchall()
    )
    assert births == {"u-stu-1": date(2006, 5, 4), "u-stu-2": None}
    (folder / "demographics.csv").write_text(
        "sourcedId,status,birthDate\nu-stu-1,active,2006-02-30\nu-stu-2,active,04/05/2006\n", encoding="utf-8"
    )
    with pytest.raises(BadRowsRefused) as refused:
        import_oneroster(conn, folder, Options(progress=False))
    reasons = sorted(b.reason for b in refused.value.summary.bad_rows)
    assert reasons == ["birthDate is not a day of the calendar", "birthDate must be a date written YYYY-MM-DD"]


def test_the_home_page_of_a_guardian_whose_only_child_came_of_age_says_so(client, family):
    conn = family["conn"]
    put_in_state(conn, family, "access_ended")
    r = client.get("/", headers={"Authorization": f"Bearer {family['token']}", "Accept": "text/html"})
    assert r.status_code == 403 and "came of age" in r.get_data(as_text=True)
    put_in_state(conn, family, "unlinked")
    r = client.get("/", headers={"Authorization": f"Bearer {family['token']}", "Accept": "text/html"})
    assert r.status_code == 200 and "No children linked yet" in r.get_data(as_text=True)
