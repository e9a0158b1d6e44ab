"""The parents' page at a glance: the fitted chart and its thinned date labels, the scores-of-a-week
page reached from every week, plain-language sign-in and error pages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from web.chart import FONT, label_width, line_chart, y_range

from factories import add_course, add_quiz

UTC = UTC


def sign_in(client, token):
    assert client.get("/login", query_string={"token": token}).status_code == 303


def weeks_of(values: list[float | None]) -> list[dict]:
    return [
        {
            "week": f"W{i + 1}",
            "overall_avg": v,
            "quiz_avg": v,
            "assignment_avg": None,
            "quiz_count": int(v is not None),
            "assignment_count": 0,
        }
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize(
    "values,expected",
    [
        ([78, 90], (70, 95)),  # a move from 78 to 90 fills most of the height
        ([60, 75, 80, 88.6], (50, 100)),
        ([98, 99], (80, 100)),  # never a span under 20 points: a wobble is not stretched
        ([0, 100], (0, 100)),
        ([5, 12], (0, 20)),
        ([], (0, 100)),
        ([95, 110], (90, 115)),  # extra credit above 100 widens the axis
        ([50, 50], (45, 65)),
    ],
)
def test_the_y_axis_fits_the_data_padded(values, expected):
    low, high, step = y_range(values)
    assert (low, high) == expected
    assert high - low >= 20 and (high - low) / step <= 6
    if values:
        assert low < min(values) and max(values) < high or (low, high) == (0, 100)


def test_the_fitted_range_is_said_in_words_and_ticks_label_it():
    chart = line_chart(weeks_of([78, 85, 90]), ["a", "b", "c"])
    assert chart["fitted"] and (chart["low"], chart["high"]) == (70, 95)
    assert [t["label"] for t in chart["y_ticks"]] == [70, 75, 80, 85, 90, 95]
    assert [t["y"] for t in chart["y_ticks"]][0] == chart["bottom"] and chart["y_ticks"][-1]["y"] == chart["top"]
    assert not line_chart(weeks_of([0, 100, 50]), ["a", "b", "c"])["fitted"]


@pytest.mark.parametrize("count", [6, 12, 52])
@pytest.mark.parametrize("label", ["26 Oct", "26 oct", "26 أكتوبر", "Sept 30"])
def test_week_labels_never_collide(count, label):
    chart = line_chart(weeks_of([70] * count), [label] * count)
    xs = [x["x"] for x in chart["x_labels"]]
    width = label_width(label)
    assert width >= len(label) * FONT * 0.5  # an average glyph is narrower than half the font size
    assert all(b - a >= width + 6 for a, b in zip(xs, xs[1:])), (count, xs)
    latest = chart["columns"][-1]["x"] + chart["columns"][-1]["width"] / 2
    assert xs[-1] - width / 2 <= latest <= xs[-1] + width / 2  # the latest week is labelled: its label spans it
    assert len(xs) >= 3
    assert all(0 <= x - width / 2 and x + width / 2 <= chart["width"] for x in xs)  # none leaves the chart


@pytest.fixture
def twelve_weeks(family):
    conn = family["conn"]
    maths = add_course(conn, "Maths")
    for week in range(12):
        add_quiz(
            conn, family["a"], 78 + week, datetime(2024, 1, 1, 10, tzinfo=UTC) + timedelta(weeks=week), course_id=maths
        )
    conn.execute("select refresh_course_weekly_performance()")  # the nightly class averages: 1 student each week
    return family | {"maths": maths}


def test_each_week_links_to_its_scores_from_the_chart_and_the_table(client, twelve_weeks):
    sign_in(client, twelve_weeks["token"])
    html = client.get(f"/students/{twelve_weeks['a']}?weeks=12&end=2024-03-24").get_data(as_text=True)
    target = f"/students/{twelve_weeks['a']}/weeks/2024-W03?weeks=12&amp;end=2024-03-24"
    assert html.count(f'href="{target}"') == 2  # the chart's week and the table's row
    chart_link = re.search(r'<a href="[^"]*/weeks/2024-W03[^"]*" data-week="2024-W03"\s+aria-label="([^"]+)"', html)
    assert (
        chart_link
        and "2024-W03" in chart_link[1]
        and "overall 87.17" in chart_link[1]
        and "week of 15 Jan" in chart_link[1]
    )
    assert "not from 0" in html  # the fitted axis said in words
    labels = re.findall(r'<text x="[\d.]+" y="\d+" text-anchor="middle">([^<]+)</text>', html)
    assert 3 <= len(labels) < 12 and labels[-1] == "18 Mar"
    # the per-course section: compact, the suppression note once
    assert html.count("is hidden because fewer than") == 1
    assert html.count('class="suppressed"') == 12


def test_the_week_page_lists_the_scores_and_leads_back(client, twelve_weeks):
    sign_in(client, twelve_weeks["token"])
    r = client.get(f"/students/{twelve_weeks['a']}/weeks/2024-W03?weeks=12")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-store"
    html = r.get_data(as_text=True)
    # family's 3 quizzes and 2 assignments, and the Maths quiz of week 3 (80)
    assert html.count('<tr data-kind="quiz">') == 4 and html.count('<tr data-kind="assignment">') == 2
    assert "Maths" in html and "80.00" in html and "Europe/London" in html
    assert f'href="/students/{twelve_weeks["a"]}?weeks=12"' in html
    es = client.get(f"/students/{twelve_weeks['a']}/weeks/2024-W03", headers={"Accept-Language": "es"}).get_data(
        as_text=True
    )
    assert "Cuestionario" in es and "15 ene 2024" in es and "80,00" in es


def test_the_week_page_refuses_like_the_api(client, family):
    sign_in(client, family["token"])
    other = client.get(f"/students/{family['b']}/weeks/2024-W03")
    unknown = client.get("/students/987654/weeks/2024-W03")
    assert other.status_code == unknown.status_code == 404 and other.get_data() == unknown.get_data()
    assert "Ben" not in other.get_data(as_text=True)
    for week in ("2024-W00", "2024-W54", "2023-W53", "x"):
        r = client.get(f"/students/{family['a']}/weeks/{week}")
        assert r.status_code == 400 and r.mimetype == "text/html"
    assert client.get(f"/students/{family['a']}/weeks/2024-W03", headers={}).status_code == 200
    client.post("/logout")
    assert client.get(f"/students/{family['a']}/weeks/2024-W03").status_code == 401


@pytest.mark.parametrize("query", ["weeks=abc", "weeks=0", "end=x", "weeks=53&end=2024-13-01"])
def test_the_week_page_judges_the_credential_before_the_range(client, family, query):
    """401 before 400 (README): signed out, a bad range is not even looked at; signed in, it is a 400."""
    path = f"/students/{family['a']}/weeks/2024-W03?{query}"
    r = client.get(path)
    assert r.status_code == 401 and r.mimetype == "text/html"
    sign_in(client, family["token"])
    assert client.get(path).status_code == 400


def test_a_signed_out_visit_explains_how_to_get_a_sign_in_link(client):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 401 and r.mimetype == "text/html"
    assert "sign-in link the school sent you by email" in html and 'name="token"' in html
    assert "Bearer" not in html and "token" not in re.sub(r"<[^>]+>", "", html).lower()
    assert "Lost your link" in html and "school office" in html


def test_a_401_after_the_links_were_revoked_says_so_and_links_back(client, family):
    # The refused session is ended with the answer, so there is nothing left to sign out of.
    sign_in(client, family["token"])
    family["conn"].execute("update guardian_token set revoked_at = now()")
    r = client.get(f"/students/{family['a']}")
    html = r.get_data(as_text=True)
    assert r.status_code == 401 and r.mimetype == "text/html"
    assert "Back to your child's page</a>" in html and 'name="token"' in html
    assert 'action="/logout"' not in html


def test_an_address_that_does_not_exist_is_a_page_for_a_browser_and_a_problem_for_a_program(client):
    r = client.get(
        "/students/1/wekes", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Language": "es"}
    )
    assert r.status_code == 404 and r.mimetype == "text/html" and r.headers["Cache-Control"] == "private, no-store"
    html = r.get_data(as_text=True)
    assert 'lang="es"' in html and 'href="/"' in html and "problem" not in html
    for path, accept in (("/students/1/wekes", "*/*"), ("/api/v1/nope", "text/html"), ("/staff/nope", "text/html")):
        r = client.get(path, headers={"Accept": accept})
        assert r.status_code == 404 and r.mimetype == "application/problem+json", path


def test_the_school_contact_comes_from_the_setting(db_url):
    from web import create_app
    from web.db import close_pool

    app = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "x", "SCHOOL_CONTACT": "office@school.example"}
    )
    html = app.test_client().get("/login").get_data(as_text=True)
    assert '<a href="mailto:office@school.example">office@school.example</a>' in html
    es = app.test_client().get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "¿Ha perdido el enlace" in es and "office@school.example" in es
    close_pool(app)


def test_a_bad_link_says_so_in_words(client):
    r = client.get("/login", query_string={"token": "wt_" + "0" * 64})
    html = r.get_data(as_text=True)
    assert r.status_code == 401 and "This sign-in link does not work" in html and "Bearer" not in html


def test_a_404_says_what_happened_links_back_and_offers_sign_out(client, family):
    sign_in(client, family["token"])
    html = client.get(f"/students/{family['b']}", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    assert 'dir="rtl"' in html and "لم نعثر على هذه الصفحة" in html
    html = client.get(f"/students/{family['b']}").get_data(as_text=True)
    assert "We could not find that page" in html and 'href="/"' in html and 'action="/logout"' in html
    assert "Bearer" not in html and "problem" not in html.lower()


def test_every_page_has_a_skip_link_and_the_stylesheet_prints_and_darkens(client, family):
    sign_in(client, family["token"])
    html = client.get("/").get_data(as_text=True)
    assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html
    css = client.get("/static/app.css").get_data(as_text=True)
    assert "@media print" in css and "@media (prefers-color-scheme: dark)" in css
    sizes = [float(v) for v in re.findall(r"font-size: ?\.?([\d.]+)rem", css)]
    assert all(("." + str(v) if v >= 1 and False else v) for v in sizes)
    small = [m for m in re.findall(r"font-size: ?(\d*\.\d+)rem", css) if float(m) < 0.875]
    assert not small, f"text under 14 px: {small}"


def course_of(class_averages: list[float | None]) -> dict:
    return {"weeks": [{"class_average": v} for v in class_averages]}


def test_the_class_band_spans_the_childs_courses_class_averages():
    weeks = weeks_of([80, 82, None, 84])
    chart = line_chart(weeks, ["a", "b", "c", "d"], [course_of([60, 62, None, None]), course_of([70, None, None, 66])])
    assert chart["class_band"].count("M") == 2  # weeks 0-1, then week 3 alone (week 2: none shown)
    assert chart["low"] < 60  # the axis takes the band in
    top_of_week0 = float(chart["class_band"].split("M")[1].split()[1])
    assert (
        abs(
            top_of_week0
            - (
                chart["top"]
                + (chart["bottom"] - chart["top"]) * (1 - (70 - chart["low"]) / (chart["high"] - chart["low"]))
                - 1
            )
        )
        < 0.2
    )
    assert line_chart(weeks, ["a", "b", "c", "d"], [course_of([None] * 4)])["class_band"] == ""
