"""Names are text, never markup (issue 22, finding 1): every mail (invite and digest, text and HTML
parts) and every page (parents' pages, the week page, staff pages, unsubscribe, error pages) rendered
with hostile student, guardian and course names. The HTML is parsed: no element or attribute may come
from a name, and the name must be there as text. The text parts carry the names verbatim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from web.ops.cli import main

from factories import add_course, add_guardian, add_quiz, add_student
from mailserver import mail_env, smtp_server  # noqa: F401 - fixtures

WEEK = "2024-W05"
MONDAY = datetime(2024, 1, 29, 12, tzinfo=UTC)
# Every payload marks what it would inject with "forged": a tag, an attribute name or value.
STUDENT = (
    'Kim<style id="forged">.child p,.chart{display:none}</style>'
    '<p class="forged">This week: 98.50 overall, from 9 scores.</p><span hidden data-forged>'
)
QUIET = 'Lou"><script id="forged">alert(1)</script><b data-forged=\'1\'>'  # no scores this week
GUARDIAN = "Pat<img src=x data-forged onerror=alert(1)>' data-forged='1"
COURSE = 'Maths" data-forged="1"><i class="forged">98.50</i>'


class Markup(HTMLParser):
    """Every element and attribute of a document, and its text (entities decoded)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forged: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in [(tag, None), *attrs]:
            if "forged" in name or (value and "forged" in value) or name.startswith("on"):
                self.forged.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def check_html(html: str, *names: str) -> None:
    parser = Markup()
    parser.feed(html)
    parser.close()
    assert parser.forged == [], f"markup from a name survived: {parser.forged}"
    text = "".join(parser.text)
    for name in names:
        assert name in text, f"the name is not there as text: {name!r}"


def at(weeks_before: int, hour: int = 0) -> datetime:
    return MONDAY - timedelta(weeks=weeks_before) + timedelta(hours=hour)


@pytest.fixture
def hostile(conn):
    kim = add_student(conn, STUDENT, "Europe/London")
    lou = add_student(conn, QUIET, "Europe/London")
    course = add_course(conn, COURSE)
    guardian = add_guardian(conn, "pat@example.org", kim, lou)
    conn.execute("update guardian set display_name = %s where id = %s", (GUARDIAN, guardian))
    # Kim: six weeks at 80, then two low ones (a trend and an alert, each sentence naming her)
    for week in range(7, 1, -1):
        add_quiz(conn, kim, 80, at(week, 1), course_id=course)
        add_quiz(conn, kim, 80, at(week, 2), course_id=course)
    for week in (1, 0):
        add_quiz(conn, kim, 62, at(week, 1), course_id=course)
        add_quiz(conn, kim, 64, at(week, 2), course_id=course)
    add_quiz(conn, lou, 70, at(3, 1), course_id=course)
    member = conn.execute(
        "insert into staff_member (email, display_name) values ('teacher@school.example', %s) returning id", (GUARDIAN,)
    ).fetchone()[0]
    return {
        "kim": kim,
        "lou": lou,
        "guardian": guardian,
        "token": conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0],
        "staff_token": conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0],
    }


def test_every_mail_escapes_hostile_names_in_html_and_keeps_them_plain_in_text(mail_env, smtp_server, hostile):
    assert main(["invite", "--guardian-email", "pat@example.org"]) == 0
    assert main(["digest", "--week", WEEK, "--quiet"]) == 0
    invite, digest = smtp_server.messages
    assert "sign-in link" in invite.message["Subject"] and "week 5" in digest.message["Subject"]

    check_html(invite.part("html"), GUARDIAN)
    assert f"Hello {GUARDIAN}," in invite.part("plain")

    html, text = digest.part("html"), digest.part("plain")
    check_html(html, GUARDIAN, STUDENT, QUIET)
    # every sentence that names a child: the trend, the alert, "no scores this week"
    for sentence in (
        f"{STUDENT}'s overall average",
        f"{STUDENT}'s average has been at least",
        f"No scores were recorded for {QUIET} this week.",
    ):
        assert sentence in text
        parser = Markup()
        parser.feed(html)
        assert sentence in "".join(parser.text)
    assert f"Hello {GUARDIAN}," in text and "&lt;" not in text and "&#" not in text


@pytest.mark.parametrize("language", ["es", "ar"])
def test_the_mails_in_other_languages_escape_hostile_names_too(mail_env, smtp_server, hostile, conn, language):
    conn.execute("update guardian set preferred_language = %s", (language,))
    assert main(["invite", "--guardian-email", "pat@example.org"]) == 0
    assert main(["digest", "--week", WEEK, "--quiet"]) == 0
    invite, digest = smtp_server.messages
    check_html(invite.part("html"), GUARDIAN)
    check_html(digest.part("html"), GUARDIAN, STUDENT, QUIET)
    for text in (invite.part("plain"), digest.part("plain")):
        assert GUARDIAN in text and "&lt;" not in text
    assert STUDENT in digest.part("plain") and QUIET in digest.part("plain")


def test_every_page_escapes_hostile_names(client, hostile):
    kim, lou = hostile["kim"], hostile["lou"]
    assert client.get("/login", query_string={"token": hostile["token"]}).status_code == 303
    pages = {
        "/": (STUDENT,),
        f"/students/{kim}": (STUDENT, QUIET),
        f"/students/{kim}?end=2024-02-04&weeks=12": (STUDENT, QUIET, COURSE),
        f"/students/{lou}": (QUIET,),
        f"/students/{kim}/weeks/2024-W05": (STUDENT, COURSE),
        f"/students/{kim}/weeks/2023-W40": (STUDENT,),  # a week without scores
        f"/students/{kim}?weeks=abc": (),  # 400 page, signed in
        "/students/987654": (),  # 404 page, signed in
        "/unsubscribe?token=wtu_" + "0" * 64: (),
        "/unsubscribe?token=bad": (),
        "/login?token=wt_" + "0" * 64: (),  # 401 page
    }
    for path, names in pages.items():
        response = client.get(path)
        assert response.status_code < 500, path
        assert response.mimetype == "text/html", path
        check_html(response.get_data(as_text=True), *names)
    assert client.post("/logout", headers={"Origin": "http://localhost"}).status_code == 303
    for path in ("/", "/login", "/staff/login", "/staff/"):  # signed out: sign-in pages, a 401 page
        check_html(client.get(path).get_data(as_text=True))

    staff = client.get("/staff/login", query_string={"token": hostile["staff_token"]})
    assert staff.status_code == 303
    for path, names in {
        "/staff/?q=Kim": (STUDENT,),
        "/staff/?q=pat": (STUDENT, QUIET),
        f"/staff/students/{kim}": (STUDENT, GUARDIAN),
        "/staff/students/987654": (),
        f"/staff/students/{kim}?year=abc": (),
    }.items():
        response = client.get(path)
        assert response.status_code < 500, path
        check_html(response.get_data(as_text=True), *names)
