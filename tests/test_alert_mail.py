"""Alerts each family chooses (issue 26 item 3): the settings (SQL, API, the page's form) and
`weekly-trends alerts` through a real SMTP server (aiosmtpd): one email per household per run, each
alert once ever, quiet hours, the guardian's language, one-click unsubscribe per kind, access rules,
reruns, crashes and two concurrent runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from web.mail.alerts import quiet_hours
from web.ops.cli import main

from factories import add_assignment, add_course, add_guardian, add_quiz, add_student
from mailserver import mail_env, smtp_server  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
# Wednesday 31 January 2024, noon in London: the complete weeks are those of 15 and 22 January.
NOW = datetime(2024, 1, 31, 12, tzinfo=UTC)


def alerts(*args: str, now: datetime = NOW) -> int:
    return main(["alerts", *args], clock=lambda: now)


def day(month: int, d: int, hour: int = 10) -> datetime:
    return datetime(2024, month, d, hour, tzinfo=UTC)


@pytest.fixture
def families(conn):
    """A: Ann (score_below 50, course_average_below 70) and Eve (defaults); B: Eve; C: Ann (defaults).
    Ann: Maths 40 and 60 in the week of 22 Jan (average 50), an assignment of 45 on 30 Jan, a 30 on
    10 Jan (older than 14 days). Eve: six weeks at 80, then two weeks at 63 (a sustained decline,
    flagged on the week of 22 Jan)."""
    ann, eve = add_student(conn, "Ann Able", "Europe/London"), add_student(conn, "Eve Early", "Europe/London")
    maths = add_course(conn, "Maths")
    a = add_guardian(conn, "a.parent@example.org", ann, eve)
    b = add_guardian(conn, "b.parent@example.org", eve)
    c = add_guardian(conn, "c.parent@example.org", ann)
    conn.execute("update guardian set display_name = 'Alice Able' where id = %s", (a,))
    conn.execute(
        "insert into guardian_alert_setting (guardian_id, student_profile_id, course_average_below, score_below)"
        " values (%s, %s, 70, 50)",
        (a, ann),
    )
    add_quiz(conn, ann, 40, day(1, 23), course_id=maths)
    add_quiz(conn, ann, 60, day(1, 24), course_id=maths)
    add_quiz(conn, ann, 30, day(1, 10), course_id=maths)
    add_assignment(conn, ann, 45, graded_at=day(1, 30), course_id=maths)
    for weeks in range(8, 2, -1):
        add_quiz(conn, eve, 80, day(1, 22) - timedelta(weeks=weeks))
        add_quiz(conn, eve, 80, day(1, 22) - timedelta(weeks=weeks, hours=-1))
    for monday in (day(1, 15), day(1, 22)):
        add_quiz(conn, eve, 62, monday)
        add_quiz(conn, eve, 64, monday + timedelta(hours=1))
    return {"ann": ann, "eve": eve, "maths": maths, "a": a, "b": b, "c": c}


def logged(conn) -> list[tuple]:
    return conn.execute(
        "select g.email, d.kind, d.subject from alert_delivery d join guardian g on g.id = d.guardian_id"
        " order by 1, 2, 3"
    ).fetchall()


# --- the settings ---------------------------------------------------------------------------------


def test_settings_have_defaults_in_one_function_and_constraints(families, conn):
    a, b = families["a"], families["b"]
    assert conn.execute("select * from guardian_alert_settings(%s, %s)", (b, families["eve"])).fetchone() == (
        True,
        True,
        None,
        None,
    )
    assert conn.execute("select * from guardian_alert_settings(%s, %s)", (a, families["ann"])).fetchone() == (
        True,
        True,
        70,
        50,
    )
    for column, value in (("course_average_below", 0), ("score_below", 101), ("course_average_below", -5)):
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                f"insert into guardian_alert_setting (guardian_id, student_profile_id, {column}) values (%s, %s, %s)",
                (b, families["eve"], value),
            )
    with pytest.raises(psycopg.errors.ForeignKeyViolation):  # a setting needs a link
        conn.execute(
            "insert into guardian_alert_setting (guardian_id, student_profile_id) values (%s, %s)", (b, families["ann"])
        )
    # removing the link removes its settings
    conn.execute(
        "delete from guardian_student where guardian_id = %s and student_profile_id = %s", (a, families["ann"])
    )
    assert conn.execute("select count(*) from guardian_alert_setting").fetchone()[0] == 0


def token_for(conn, guardian: int) -> dict:
    token = conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0]
    return {"Authorization": f"Bearer {token}"}


def test_the_api_reads_and_writes_the_settings(families, conn, client):
    a, ann, eve = families["a"], families["ann"], families["eve"]
    auth = token_for(conn, a)
    got = client.get(f"/api/v1/students/{eve}/alert-settings", headers=auth)
    assert got.status_code == 200
    assert got.get_json() == {
        "student_id": eve,
        "missing_work": True,
        "sustained_decline": True,
        "course_average_below": None,
        "score_below": None,
    }
    assert client.get(f"/api/v1/students/{ann}/alert-settings", headers=auth).get_json()["score_below"] == 50
    body = {"missing_work": False, "sustained_decline": True, "course_average_below": 65, "score_below": None}
    put = client.put(f"/api/v1/students/{eve}/alert-settings", json=body, headers=auth)
    assert put.status_code == 200 and put.get_json() == {"student_id": eve, **body}
    assert conn.execute("select * from guardian_alert_settings(%s, %s)", (a, eve)).fetchone() == (
        False,
        True,
        65,
        None,
    )


@pytest.mark.parametrize(
    "body, words",
    [
        ({"missing_work": True, "sustained_decline": True, "course_average_below": 0, "score_below": None}, "1 to 100"),
        (
            {"missing_work": True, "sustained_decline": True, "course_average_below": 101, "score_below": None},
            "1 to 100",
        ),
        (
            {"missing_work": True, "sustained_decline": True, "course_average_below": None, "score_below": 2.5},
            "1 to 100",
        ),
        (
            {"missing_work": True, "sustained_decline": True, "course_average_below": None, "score_below": True},
            "1 to 100",
        ),
        (
            {"missing_work": "yes", "sustained_decline": True, "course_average_below": None, "score_below": None},
            "true or false",
        ),
        (
            {"missing_work": 1, "sustained_decline": True, "course_average_below": None, "score_below": None},
            "true or false",
        ),
        ({"missing_work": True, "course_average_below": None, "score_below": None}, "sustained_decline"),
        (
            {
                "missing_work": True,
                "sustained_decline": True,
                "course_average_below": None,
                "score_below": None,
                "x": 1,
            },
            "x",
        ),
        ([1, 2], "JSON object"),
        ("nonsense", "JSON object"),
    ],
)
def test_bad_settings_are_refused_as_problems(families, conn, client, body, words):
    auth = token_for(conn, families["b"])
    url = f"/api/v1/students/{families['eve']}/alert-settings"
    answer = client.put(url, json=body, headers=auth)
    assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    assert words in answer.get_json()["detail"]
    assert (
        conn.execute("select count(*) from guardian_alert_setting where guardian_id = %s", (families["b"],)).fetchone()[
            0
        ]
        == 0
    )


def test_settings_api_refuses_strangers_other_sites_and_broken_bodies(families, conn, client):
    ann, eve, b = families["ann"], families["eve"], families["b"]
    good = {"missing_work": True, "sustained_decline": False, "course_average_below": None, "score_below": None}
    auth = token_for(conn, b)
    assert client.get(f"/api/v1/students/{eve}/alert-settings").status_code == 401
    assert client.put(f"/api/v1/students/{eve}/alert-settings", json=good).status_code == 401
    assert client.get(f"/api/v1/students/{ann}/alert-settings", headers=auth).status_code == 404  # not B's child
    assert client.put(f"/api/v1/students/{ann}/alert-settings", json=good, headers=auth).status_code == 404
    assert client.get("/api/v1/students/abc/alert-settings", headers=auth).status_code == 400
    answer = client.put(
        f"/api/v1/students/{eve}/alert-settings", data="{not json", content_type="application/json", headers=auth
    )
    assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    other_site = client.put(
        f"/api/v1/students/{eve}/alert-settings",
        json=good,
        headers=auth | {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert other_site.status_code == 403 and other_site.mimetype == "application/problem+json"
    assert conn.execute("select count(*) from guardian_alert_setting where guardian_id = %s", (b,)).fetchone()[0] == 0


def test_the_parents_page_has_the_settings_form(families, conn, client):
    eve = families["eve"]
    token = conn.execute("select issue_guardian_token(%s)", (families["b"],)).fetchone()[0]
    client.get(f"/login?token={token}")
    page = client.get(f"/students/{eve}").get_data(as_text=True)
    assert 'id="alerts"' in page and f'action="/students/{eve}/alert-settings"' in page
    assert re.search(r'name="missing_work"[^>]*checked', page) and re.search(
        r'name="sustained_decline"[^>]*checked', page
    )
    saved = client.post(
        f"/students/{eve}/alert-settings",
        data={"missing_work": "on", "course_average_below": "60", "score_below": ""},
    )
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"/students/{eve}#alerts")
    assert conn.execute("select * from guardian_alert_settings(%s, %s)", (families["b"], eve)).fetchone() == (
        True,
        False,
        60,
        None,
    )
    page = client.get(f"/students/{eve}").get_data(as_text=True)
    assert 'name="course_average_below" value="60"' in page
    bad = client.post(f"/students/{eve}/alert-settings", data={"course_average_below": "200"})
    assert bad.status_code == 400 and "1 to 100" in bad.get_data(as_text=True) and bad.mimetype == "text/html"
    other_site = client.post(
        f"/students/{eve}/alert-settings", data={"missing_work": "on"}, headers={"Origin": "https://evil.example"}
    )
    assert other_site.status_code == 403
    assert client.post(f"/students/{families['ann']}/alert-settings", data={}).status_code == 404


# --- the run ----------------------------------------------------------------------------------------


def test_one_email_per_household_listing_every_new_alert(mail_env, smtp_server, families, conn, capsys):
    assert alerts() == 0
    assert "sent 2 email(s) with 5 alert(s), nothing new for 1, failed 0" in capsys.readouterr().out
    assert sorted(m.recipients[0] for m in smtp_server.messages) == ["a.parent@example.org", "b.parent@example.org"]
    a = smtp_server.to("a.parent@example.org")[0]
    assert a.message["Subject"] == "Weekly Trends: 4 new alerts"
    text, html = a.part("plain"), a.part("html")
    assert "Hello Alice Able" in text
    for body in (text, html):
        assert "Ann Able" in body and "Eve Early" in body
        assert "Maths: an average of 50.00 in the week of 22 Jan, under your alert level of 70." in body
        assert "A quiz score of 40.00 (Maths) on 23 Jan: under your alert level of 50." in body
        assert "An assignment score of 45.00 (Maths) on 30 Jan: under your alert level of 50." in body
        assert "30.00" not in body and "60.00" not in body  # older than 14 days; not under the level
        assert "Eve Early's average has been at least 10 points below their usual level" in body
    assert html.count('class="alert"') == 4
    assert logged(conn) == [
        ("a.parent@example.org", "course_average_below", f"{families['maths']}:2024-01-22"),
        (
            "a.parent@example.org",
            "score_below",
            f"assignment:{conn.execute('select max(id) from assignment_submission').fetchone()[0]}",
        ),
        (
            "a.parent@example.org",
            "score_below",
            f"quiz:{conn.execute('select min(id) from quiz_attempt').fetchone()[0]}",
        ),
        ("a.parent@example.org", "sustained_decline", "2024-01-22:declining"),
        ("b.parent@example.org", "sustained_decline", "2024-01-22:declining"),
    ]
    b = smtp_server.to("b.parent@example.org")[0]
    assert b.message["Subject"] == "Weekly Trends: 1 new alert" and "Ann Able" not in b.part("plain")
    assert conn.execute("select outcome, attempts, message_id from alert_message order by guardian_id").fetchall() == [
        ("sent", 1, a.message["Message-ID"]),
        ("sent", 1, b.message["Message-ID"]),
    ]


def add_work(conn, course: int, title: str, due_at: datetime, kind: str = "assignment") -> int:
    return conn.execute(
        "insert into course_work (course_id, title, kind, due_at) values (%s, %s, %s, %s) returning id",
        (course, title, kind, due_at),
    ).fetchone()[0]


def test_missing_work_is_alerted_by_default_once_and_not_when_handed_in_or_excused(
    mail_env, smtp_server, families, conn
):
    ann, maths, c = families["ann"], families["maths"], families["c"]
    conn.execute("insert into enrollment (student_profile_id, course_id) values (%s, %s)", (ann, maths))
    fractions = add_work(conn, maths, "Fractions worksheet", day(1, 30, 9))
    handed_in = add_work(conn, maths, "Decimals quiz", day(1, 29, 9), kind="quiz")
    conn.execute(
        "insert into quiz_attempt (student_profile_id, course_id, course_work_id, score, completed_at)"
        " values (%s, %s, %s, 75, %s)",
        (ann, maths, handed_in, day(1, 29, 8)),
    )
    excused = add_work(conn, maths, "Field trip notes", day(1, 26))
    conn.execute("insert into course_work_excusal (course_work_id, student_profile_id) values (%s, %s)", (excused, ann))
    add_work(conn, maths, "Long ago", day(1, 10))  # due more than 14 days ago: not news
    later = add_work(conn, maths, "Next week's essay", day(2, 2))  # not due yet
    assert alerts() == 0
    # C chose nothing: missing work is on by default
    [mail] = smtp_server.to("c.parent@example.org")
    assert mail.message["Subject"] == "Weekly Trends: 1 new alert"
    for body in (mail.part("plain"), mail.part("html")):
        assert "Missing work: Fractions worksheet (Maths), due 30 Jan." in body
        for other in ("Decimals quiz", "Field trip notes", "Long ago", "Next week"):
            assert other not in body
    assert ("c.parent@example.org", "missing_work", str(fractions)) in logged(conn)
    # A has it too, among the rest of A's alerts, in the same one email
    assert len(smtp_server.to("a.parent@example.org")) == 1
    assert "Fractions worksheet" in smtp_server.to("a.parent@example.org")[0].part("plain")
    # once: the next runs do not repeat it; the essay, once due and missing, is new
    assert alerts(now=NOW + timedelta(hours=1)) == 0
    assert len(smtp_server.to("c.parent@example.org")) == 1
    assert alerts(now=day(2, 2, 12)) == 0
    assert "Next week's essay" in smtp_server.to("c.parent@example.org")[-1].part("plain")
    assert ("c.parent@example.org", "missing_work", str(later)) in logged(conn)
    # a guardian who turned missing work off hears nothing of it
    conn.execute(
        "insert into guardian_alert_setting (guardian_id, student_profile_id, missing_work) values (%s, %s, false)",
        (c, ann),
    )
    add_work(conn, maths, "Map drawing", day(2, 2, 13))
    assert alerts(now=day(2, 2, 15)) == 0
    assert "Map drawing" not in "".join(m.part("plain") for m in smtp_server.to("c.parent@example.org"))


def test_each_alert_at_most_once_ever_and_only_new_ones_later(mail_env, smtp_server, families, conn, capsys):
    assert alerts() == 0
    assert alerts(now=NOW + timedelta(hours=1)) == 0
    assert "sent 0 email(s) with 0 alert(s), nothing new for 3" in capsys.readouterr().out
    assert len(smtp_server.messages) == 2
    # a new low score: the next run sends that one alert, to A only
    add_quiz(conn, families["ann"], 20, NOW + timedelta(hours=1, minutes=30), course_id=families["maths"])
    assert alerts(now=NOW + timedelta(hours=2)) == 0
    assert len(smtp_server.messages) == 3
    last = smtp_server.messages[-1]
    assert last.recipients == ["a.parent@example.org"] and last.message["Subject"] == "Weekly Trends: 1 new alert"
    assert "20.00" in last.part("plain") and "40.00" not in last.part("plain")
    # a week later the decline's onset is not repeated (the week of 29 Jan is still low: no new onset)
    assert alerts(now=NOW + timedelta(days=7)) == 0
    assert [k for _, k, s in logged(conn) if k == "sustained_decline"] == ["sustained_decline"] * 2


def test_no_email_between_21_and_7_in_the_school_time_zone(mail_env, smtp_server, families, conn, capsys, monkeypatch):
    london = datetime(2024, 7, 31, 20, 30, tzinfo=UTC)  # 21:30 in London (summer time)
    from zoneinfo import ZoneInfo

    assert quiet_hours(london, ZoneInfo("Europe/London")) and not quiet_hours(london, ZoneInfo("UTC"))
    assert quiet_hours(datetime(2024, 1, 31, 6, 59, tzinfo=UTC), ZoneInfo("Europe/London"))
    assert not quiet_hours(datetime(2024, 1, 31, 7, 0, tzinfo=UTC), ZoneInfo("Europe/London"))
    night = datetime(2024, 1, 31, 22, 30, tzinfo=UTC)
    assert alerts(now=night) == 0
    assert "quiet hours" in capsys.readouterr().out
    assert smtp_server.messages == []
    assert conn.execute("select count(*) from alert_message").fetchone()[0] == 0
    assert conn.execute("select count(*) from alert_delivery").fetchone()[0] == 0
    assert alerts(now=datetime(2024, 2, 1, 6, 30, tzinfo=UTC)) == 0  # still night
    assert smtp_server.messages == []
    assert alerts(now=datetime(2024, 2, 1, 7, 0, tzinfo=UTC)) == 0  # held to the first run of the day
    assert sorted(m.recipients[0] for m in smtp_server.messages) == ["a.parent@example.org", "b.parent@example.org"]


def test_quiet_hours_report(mail_env, smtp_server, families, capsys):
    assert alerts(now=datetime(2024, 1, 31, 22, 30, tzinfo=UTC)) == 0
    out = capsys.readouterr().out
    assert "quiet hours (21:00 to 07:00 in the school's time zone): nothing sent; 2 household(s) held" in out


def test_alerts_speak_the_guardians_language(mail_env, smtp_server, families, conn):
    conn.execute("update guardian set preferred_language = 'es' where id = %s", (families["a"],))
    conn.execute("update guardian set preferred_language = 'ar' where id = %s", (families["b"],))
    assert alerts() == 0
    a = smtp_server.to("a.parent@example.org")[0]
    assert a.message["Subject"] == "Tendencias semanales: 4 alertas nuevas"
    html, text = a.part("html"), a.part("plain")
    assert '<html lang="es" dir="ltr">' in html
    for body in (html, text):
        assert "50,00" in body and "23 ene" in body and "Jan" not in body
        assert "Maths: una media de 50,00 en la semana del 22 ene, por debajo de tu nivel de alerta de 70." in body
    b = smtp_server.to("b.parent@example.org")[0]
    assert '<html lang="ar" dir="rtl">' in b.part("html")
    assert "Hello" not in b.part("plain") and "Eve Early" in b.part("plain")


def test_one_click_unsubscribe_per_alert_kind(mail_env, smtp_server, families, conn, client, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://weekly-trends.school.example")
    assert alerts() == 0
    a = smtp_server.to("a.parent@example.org")[0]
    assert a.raw_header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    header = re.fullmatch(
        r"<(https://weekly-trends\.school\.example/unsubscribe/alerts\?[^>]+)>", a.raw_header("List-Unsubscribe")
    )
    assert header, a.raw_header("List-Unsubscribe")
    assert sorted(re.findall(r"kind=(\w+)", header[1])) == ["course_average_below", "score_below", "sustained_decline"]
    # the body has one link per kind it carries
    links = dict(
        (kind, url)
        for url, kind in re.findall(
            r"(https://weekly-trends\.school\.example/unsubscribe/alerts\?token=wtu_[0-9a-f]{64}&kind=(\w+))\s",
            a.part("plain"),
        )
    )
    assert sorted(links) == ["course_average_below", "score_below", "sustained_decline"]
    url = urlsplit(links["score_below"])
    page = client.get(f"{url.path}?{url.query}")
    assert page.status_code == 200 and "Stop these alerts" in page.get_data(as_text=True)
    assert (
        conn.execute(
            "select score_below from guardian_alert_setting where guardian_id = %s", (families["a"],)
        ).fetchone()[0]
        == 50
    )
    answer = client.post(
        f"{url.path}?{url.query}",
        data={"List-Unsubscribe": "One-Click"},
        headers={"Origin": "https://mail.provider.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert answer.status_code == 200
    # score_below off for every child of A; the rest as it was
    settings = conn.execute(
        "select s.* from guardian_student gs, guardian_alert_settings(gs.guardian_id, gs.student_profile_id) s"
        " where gs.guardian_id = %s order by gs.student_profile_id",
        (families["a"],),
    ).fetchall()
    assert settings == [(True, True, 70, None), (True, True, None, None)]
    assert client.post(f"{url.path}?{url.query}").status_code == 200  # again: the same
    assert client.post(f"/unsubscribe/alerts?token=wtu_{'0' * 64}&kind=score_below").status_code == 404
    assert client.post(f"{url.path}?{url.query.replace('score_below', 'everything')}").status_code == 404
    assert client.post(f"{url.path}?{url.query.split('&')[0]}").status_code == 404  # no kind
    # the header's link (every kind of the message) turns off the rest of them
    whole = urlsplit(header[1])
    assert client.post(f"{whole.path}?{whole.query}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert conn.execute(
        "select s.* from guardian_alert_settings(%s, %s) s", (families["a"], families["ann"])
    ).fetchone() == (True, False, None, None)
    # a later score under 50 is no longer alerted to A
    add_quiz(conn, families["ann"], 10, NOW + timedelta(hours=1), course_id=families["maths"])
    assert alerts(now=NOW + timedelta(hours=2)) == 0
    assert len(smtp_server.messages) == 2


def test_a_removed_link_ends_the_alerts_of_that_child(mail_env, smtp_server, families, conn):
    conn.execute(
        "delete from guardian_student where guardian_id = %s and student_profile_id = %s",
        (families["a"], families["ann"]),
    )
    assert alerts() == 0
    a = smtp_server.to("a.parent@example.org")[0]
    assert "Ann Able" not in a.part("plain") and a.message["Subject"] == "Weekly Trends: 1 new alert"


def test_dry_run_sends_and_writes_nothing(mail_env, smtp_server, families, conn, capsys):
    assert alerts("--dry-run") == 0
    out = capsys.readouterr().out
    assert "a***@example.org: would send" in out and "c***@example.org: nothing new" in out
    assert "would send 2, held 0, nothing new 1" in out and "a.parent@example.org" not in out
    assert smtp_server.messages == []
    assert conn.execute("select count(*) from alert_message").fetchone()[0] == 0


def test_a_refused_recipient_is_retried_with_its_alerts_then_given_up(
    mail_env, smtp_server, families, conn, monkeypatch, capsys
):
    monkeypatch.setenv("WEEKLY_TRENDS_DIGEST_MAX_ATTEMPTS", "2")
    smtp_server.handler.refused.add("b.parent@example.org")
    assert alerts() == 1
    assert "550" in capsys.readouterr().err
    assert conn.execute(
        "select m.outcome, m.attempts from alert_message m join guardian g on g.id = m.guardian_id where g.email = 'b.parent@example.org'"
    ).fetchone() == ("failed", 1)
    smtp_server.handler.refused.clear()
    assert alerts(now=NOW + timedelta(hours=1)) == 0  # the waiting message, with its alert, goes now
    b = smtp_server.to("b.parent@example.org")
    assert len(b) == 1 and "Eve Early" in b[0].part("plain")
    assert (
        conn.execute("select count(*) from alert_message where guardian_id = %s", (families["b"],)).fetchone()[0] == 1
    )


def subprocess_env(db_url: str, smtp_url: str) -> dict:
    """Noon in the school's time zone, whatever the hour now: a zone of a whole-hour offset."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    zone = "Etc/GMT" + ("" if offset == 0 else f"{-offset:+d}")
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "MAIL_BACKEND": "smtp",
        "SMTP_URL": smtp_url,
        "PUBLIC_BASE_URL": "http://localhost",
        "WEEKLY_TRENDS_SCHOOL_TIME_ZONE": zone,
    }


def alerts_process(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "web.ops.cli", "alerts"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def many_households(conn):
    """Twelve guardians, each with a child who scored 30 an hour ago, alerted under 50."""
    emails = []
    for n in range(12):
        student = add_student(conn, f"Child {n:02d}")
        add_quiz(conn, student, 30, datetime.now(UTC) - timedelta(hours=1))
        emails.append(f"parent{n:02d}@example.org")
        guardian = add_guardian(conn, emails[-1], student)
        conn.execute(
            "insert into guardian_alert_setting (guardian_id, student_profile_id, score_below) values (%s, %s, 50)",
            (guardian, student),
        )
    return emails


def test_two_concurrent_runs_never_both_send(db_url, smtp_server, many_households, conn):
    smtp_server.handler.on_message = lambda count: time.sleep(0.15)  # a slow server: the runs overlap
    env = subprocess_env(db_url, smtp_server.url)
    first, second = alerts_process(env), alerts_process(env)
    results = [p.communicate(timeout=180) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, results
    assert sorted(m.recipients[0] for m in smtp_server.messages) == sorted(many_households)
    sent = [int(re.search(r"sent (\d+) email", out)[1]) for out, _ in results]
    print("\nconcurrent runs:", [out.strip() for out, _ in results])
    assert sum(sent) == 12
    assert conn.execute("select count(*), max(attempts) from alert_message where outcome = 'sent'").fetchone() == (
        12,
        1,
    )
    assert conn.execute("select count(*) from alert_delivery").fetchone()[0] == 12


def test_killed_during_data_then_rerun_never_resends(db_url, smtp_server, many_households, conn):
    """Killed while the server holds its 5th message: that one is ambiguous and not resent; the rerun
    sends the other seven; nobody gets two."""
    env = subprocess_env(db_url, smtp_server.url)
    process = alerts_process(env)

    def kill_at_5(count: int) -> None:
        if count == 5:
            os.kill(process.pid, signal.SIGKILL)

    smtp_server.handler.on_message = kill_at_5
    process.wait(timeout=120)
    smtp_server.handler.on_message = None
    assert len(smtp_server.messages) == 5
    rerun = alerts_process(env)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "sent 7 email(s)" in out and "1 ambiguous" in out
    assert sorted(m.recipients[0] for m in smtp_server.messages) == sorted(many_households)
    assert conn.execute("select count(*) from alert_delivery").fetchone()[0] == 12


def test_the_alert_email_escapes_hostile_names_and_titles(mail_env, smtp_server, conn):
    """Names are text (issue 22): a child's, a guardian's and a course's name, and a work's title, in
    every alert sentence, escaped in the HTML part and verbatim in the text part, in each language."""
    from test_hostile_names import COURSE, GUARDIAN, STUDENT, check_html

    title = 'Essay"><img src=x data-forged onerror=alert(1)>'
    kim = add_student(conn, STUDENT, "Europe/London")
    course = add_course(conn, COURSE)
    guardian = add_guardian(conn, "pat@example.org", kim)
    conn.execute("update guardian set display_name = %s where id = %s", (GUARDIAN, guardian))
    conn.execute(
        "insert into guardian_alert_setting (guardian_id, student_profile_id, course_average_below, score_below)"
        " values (%s, %s, 70, 70)",
        (guardian, kim),
    )
    conn.execute("insert into enrollment (student_profile_id, course_id) values (%s, %s)", (kim, course))
    add_work(conn, course, title, day(1, 30, 9))
    for weeks in range(8, 2, -1):
        add_quiz(conn, kim, 80, day(1, 22) - timedelta(weeks=weeks), course_id=course)
        add_quiz(conn, kim, 80, day(1, 22, 11) - timedelta(weeks=weeks), course_id=course)
    for monday in (day(1, 15), day(1, 22)):
        add_quiz(conn, kim, 62, monday, course_id=course)
        add_quiz(conn, kim, 64, monday + timedelta(hours=1), course_id=course)
    for n, language in enumerate(("en", "es", "ar")):
        conn.execute("update guardian set preferred_language = %s where id = %s", (language, guardian))
        conn.execute("delete from alert_delivery")
        assert alerts(now=NOW + timedelta(hours=n)) == 0
        mail = smtp_server.messages[-1]
        html, text = mail.part("html"), mail.part("plain")
        check_html(html, GUARDIAN, STUDENT, COURSE, title)
        assert html.count('class="alert"') == 6  # missing work, two scores, the course's two weeks, the decline
        for name in (GUARDIAN, STUDENT, COURSE, title):
            assert name in text
        assert "&lt;" not in text and "&#" not in text


def test_killed_before_data_then_rerun_sends_that_one_with_its_alerts(db_url, smtp_server, many_households, conn):
    """Killed while the server considers the 5th recipient (RCPT TO, before DATA): that message waits
    ('pending', its alert logged against it) and the rerun sends it, and the other seven: nobody gets
    two, nobody none, and no alert is lost."""
    env = subprocess_env(db_url, smtp_server.url)
    process = alerts_process(env)
    handler = smtp_server.handler
    original = handler.handle_RCPT
    seen = []

    async def kill_at_fifth_rcpt(server, session, envelope, address, rcpt_options):
        seen.append(address)
        if len(seen) == 5:
            os.kill(process.pid, signal.SIGKILL)
            return "451 4.3.0 try later"
        return await original(server, session, envelope, address, rcpt_options)

    handler.handle_RCPT = kill_at_fifth_rcpt
    process.wait(timeout=120)
    handler.handle_RCPT = original
    assert len(smtp_server.messages) == 4
    assert conn.execute("select count(*) from alert_message where outcome = 'pending'").fetchone()[0] == 1
    rerun = alerts_process(env)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert "sent 8 email(s) with 8 alert(s)" in out and "ambiguous" not in out
    assert sorted(m.recipients[0] for m in smtp_server.messages) == sorted(many_households)
    assert (
        conn.execute(
            "select m.attempts from alert_message m join guardian g on g.id = m.guardian_id where g.email = %s",
            (seen[4],),
        ).fetchone()[0]
        == 2
    )
    assert conn.execute("select count(*) from alert_delivery").fetchone()[0] == 12


def test_a_restricted_link_or_an_ended_access_gets_no_alert_about_that_child(mail_env, smtp_server, families, conn):
    # The one home of access (guardian_link_states()): a restriction on one child's link, and another
    # guardian's access ended at the rights age, as a removed link.
    conn.execute("select restrict_guardian_link(%s, %s, 'court order')", (families["a"], families["ann"]))
    assert alerts() == 0
    a = smtp_server.to("a.parent@example.org")[0]
    assert "Ann Able" not in a.part("plain") and a.message["Subject"] == "Weekly Trends: 1 new alert"
    assert (
        conn.execute(
            "select count(*) from alert_delivery where guardian_id = %s and student_profile_id = %s",
            (families["a"], families["ann"]),
        ).fetchone()[0]
        == 0
    )
