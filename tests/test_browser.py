"""The parents' pages in a real browser: Debian's chromium driven by Playwright (no browser download),
checked by axe-core (the npm package's axe.min.js, `make axe`) at 360 px and 1280 px in English,
Spanish and Arabic, in light and dark mode; no JavaScript needed; one printed page.

Screenshots go to tests/artifacts/ (git-ignored). Without chromium or axe-core these tests skip,
except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from conftest import in_ci
from factories import add_assignment, add_course, add_guardian, add_quiz, add_student

CHROMIUM = Path(os.environ.get("WEEKLY_TRENDS_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).resolve().parent / ".node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LANGUAGES = ["en", "es", "ar"]
WIDTHS = [360, 1280]
MIN_TEXT_PX = 14


def missing() -> str | None:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run does)"
    if not AXE.exists():
        return f"no axe-core at {AXE} (make axe; .ci/run does)"
    return None


if missing() and in_ci():
    # In CI a missing browser is a failure, never a skip.
    pytest.fail(f"CI=true: the browser tests cannot run: {missing()}", pytrace=False)
pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def browser(playwright_instance):
    instance = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@pytest.fixture
def families(conn):
    """Child A (guardian A) with scores in weeks 0, 2, 4 and 5 of the last six (5 = this week), some in
    two courses (one with a classmate); child B of guardian B."""
    a, b = add_student(conn, "Alice Example"), add_student(conn, "Bob Other")
    token = conn.execute("select issue_guardian_token(%s)", (add_guardian(conn, "a@example.org", a),)).fetchone()[0]
    add_guardian(conn, "b@example.org", b)
    maths, science = add_course(conn, "Maths"), add_course(conn, "Science")
    today = datetime.now(UTC).date()
    monday = datetime.combine(today - timedelta(days=today.weekday()), datetime.min.time(), UTC)

    def at(index: int, hour: int) -> datetime:  # a moment in week `index` (0 oldest, 5 this week)
        return monday - timedelta(weeks=5 - index) + timedelta(hours=hour)

    add_quiz(conn, a, 60, at(0, 1), course_id=maths)
    add_quiz(conn, a, 70, at(2, 1), course_id=maths)
    add_assignment(conn, a, 80, graded_at=at(2, 2), course_id=science)
    add_quiz(conn, a, 80, at(4, 1), course_id=maths, teacher_score=80)
    for hour, score in enumerate([85, 90, 88]):
        add_quiz(conn, a, score, at(5, hour), course_id=maths if hour else None)
    add_assignment(conn, a, 92, graded_at=at(5, 3), course_id=science)
    add_assignment(conn, a, 88, graded_at=at(5, 4))
    add_quiz(conn, b, 55, at(5, 1), course_id=maths)
    for n in range(10):  # a class of 12 in Maths in weeks 4 and 5: its average is shown (the chart's band)
        classmate = add_student(conn, f"Classmate {n}")
        add_quiz(conn, classmate, 60 + n, at(4, 2), course_id=maths)
        add_quiz(conn, classmate, 62 + n, at(5, 2), course_id=maths)
    conn.execute("select refresh_course_weekly_performance()")
    weeks = [(monday - timedelta(weeks=5 - i)).date() for i in range(6)]
    return {
        "a": a,
        "b": b,
        "token": token,
        "weeks": [w.isoformat() for w in weeks],
        "iso": [f"{w.isocalendar()[0]}-W{w.isocalendar()[1]:02d}" for w in weeks],
    }


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as shown (WCAG 2 A/AA and best practices)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's CSP allows no script
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


def small_text(page) -> list[str]:
    """Visible text shown under 14 px (SVG text at its scaled size)."""
    return page.evaluate(
        """(min) => {
          const out = [];
          const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          while (walker.nextNode()) {
            const node = walker.currentNode, el = node.parentElement;
            if (!node.textContent.trim() || !el) continue;
            const r = el.getBoundingClientRect();
            if (r.width <= 1 || r.height <= 1) continue;  // visually hidden
            const style = getComputedStyle(el);
            if (style.visibility === 'hidden' || style.display === 'none') continue;
            let size = parseFloat(style.fontSize);
            const svg = el.closest('svg');
            if (svg) size *= svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            if (size < min - 0.05) out.push(node.textContent.trim() + ' @' + size.toFixed(1));
          }
          return out;
        }""",
        MIN_TEXT_PX,
    )


def check_page(page, name: str, width: int, lang: str) -> None:
    html_lang = page.evaluate("[document.documentElement.lang, document.documentElement.dir]")
    assert html_lang == [lang, "rtl" if lang == "ar" else "ltr"], name
    violations = axe_violations(page)
    assert violations == [], f"{name} {lang} {width}px: {json.dumps(violations, ensure_ascii=False)}"
    if width == 360:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, f"{name} {lang}: sideways scrolling"
        assert small_text(page) == [], f"{name} {lang}: text under {MIN_TEXT_PX} px"
        overflowing = page.evaluate(
            "[...document.querySelectorAll('.table-wrap')].filter(w => w.scrollWidth > w.clientWidth).length"
        )
        assert overflowing == 0, f"{name} {lang}: a table needs sideways scrolling"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{lang}-{width}px.png"), full_page=True)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_in_each_language_and_width_is_accessible(live_server, browser, families, lang):
    for width in WIDTHS:
        context = browser.new_context(
            viewport={"width": width, "height": 800}, locale=lang, extra_http_headers={"Accept-Language": lang}
        )
        page = context.new_page()
        # signed out: the sign-in explanation, a 401
        assert page.goto(f"{live_server}/").status == 401
        check_page(page, "signed-out", width, lang)
        page.goto(f"{live_server}/login")
        check_page(page, "sign-in", width, lang)
        assert page.goto(f"{live_server}/login?token=wt_{'0' * 64}").status == 401
        check_page(page, "bad-link", width, lang)

        page.goto(f"{live_server}/login?token={families['token']}")
        assert page.url == f"{live_server}/"
        check_page(page, "dashboard", width, lang)
        assert page.locator("h1").inner_text() == "Alice Example"

        page.goto(f"{live_server}/students/{families['a']}/weeks/{families['iso'][5]}")
        assert page.locator("table.scores tbody tr").count() == 5
        check_page(page, "week-scores", width, lang)

        assert page.goto(f"{live_server}/students/{families['b']}").status == 404
        assert "Bob Other" not in page.content()
        check_page(page, "not-found", width, lang)
        assert page.goto(f"{live_server}/students/{families['a']}/weeks/2024-W54").status == 400
        check_page(page, "bad-week", width, lang)
        context.close()


def cells(page, week_start: str) -> list[str]:
    return page.locator(f'table.weeks tr[data-week-start="{week_start}"] td').all_inner_texts()


def test_a_parent_reads_the_page_without_javascript(live_server, browser, families):
    context = browser.new_context(viewport={"width": 360, "height": 780}, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server}/login?token={families['token']}")
    assert page.url == f"{live_server}/"  # the token left the address bar
    cookie = next(c for c in context.cookies() if c["name"] == "weekly_trends_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    weeks = families["weeks"]
    assert cells(page, weeks[5]) == ["88.60", "87.67", "3", "90.00", "2"]
    assert cells(page, weeks[1])[2::2] == ["0", "0"]
    overall = page.locator('svg.chart g[data-series="overall"]')
    assert [float(v) for v in overall.locator("circle").evaluate_all("els => els.map(e => e.dataset.value)")] == [
        60.0,
        75.0,
        80.0,
        88.6,
    ]
    assert overall.locator("path").get_attribute("d").count("M") == 3
    assert page.locator("svg.chart path.class-band").count() == 1
    assert page.locator(".trend").get_attribute("data-direction") == "improving"
    assert "+5.29" in page.locator(".trend").inner_text()
    # the overall line stands out: the thickest stroke
    widths = page.evaluate("""() => ['overall', 'quiz', 'assignment'].map(s =>
        parseFloat(getComputedStyle(document.querySelector(`.series-${s} > path`)).strokeWidth))""")
    assert widths[0] > max(widths[1:])
    dashes = page.evaluate("""() => ['overall', 'quiz', 'assignment'].map(s =>
        getComputedStyle(document.querySelector(`.series-${s} > path`)).strokeDasharray)""")
    assert len(set(dashes)) == 3  # told apart without colour
    # hide the quiz line from the legend (a label for a checkbox: no script)
    quiz = page.locator("svg.chart .series-quiz")
    assert quiz.is_visible()
    page.locator("label[for=show-quiz]").click()
    assert not quiz.is_visible() and page.locator("svg.chart .series-assignment").is_visible()
    page.locator("label[for=show-quiz]").click()
    assert quiz.is_visible()
    # a chart point leads to that week's scores
    page.locator(f'svg.chart a[data-week="{families["iso"][2]}"]').click()
    page.wait_for_url(re.compile(rf"/weeks/{families['iso'][2]}$"))
    assert page.locator("table.scores tbody tr").count() == 2
    page.locator("p.back a").click()
    page.wait_for_url(f"{live_server}/students/{families['a']}")
    # and a table row too
    page.locator(f'table.weeks tr[data-week="{families["iso"][4]}"] th a').click()
    assert "set by the teacher" in page.locator("table.scores").inner_text()
    # the language switch: saved, and the page follows it
    page.goto(f"{live_server}/")
    page.select_option("#language-choice", "ar")
    page.locator("form.language button").click()
    page.wait_for_url(f"{live_server}/")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    # RTL mirrors the layout: the heading starts at the right
    box = page.locator("h1").bounding_box()
    assert box["x"] + box["width"] > 300
    page.locator("form.sign-out button").click()
    page.wait_for_url(f"{live_server}/login")
    assert page.goto(f"{live_server}/").status == 401
    context.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_dark_mode_keeps_contrast(live_server, browser, families, lang):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="dark", extra_http_headers={"Accept-Language": lang}
    )
    page = context.new_page()
    page.goto(f"{live_server}/login?token={families['token']}")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(246, 247, 250)"  # the dark palette is in use
    check_page(page, "dashboard-dark", 1280, lang)
    page.goto(f"{live_server}/students/{families['a']}/weeks/{families['iso'][5]}")
    check_page(page, "week-scores-dark", 1280, lang)
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_sustained_decline_alert_keeps_contrast(live_server, browser, families, conn, scheme):
    # Guardian A's second child: six weeks at 80, then this week and the last at 62 and 64.
    dana = add_student(conn, "Dana Dip")
    guardian = conn.execute(
        "select guardian_id from guardian_student where student_profile_id = %s", (families["a"],)
    ).fetchone()[0]
    conn.execute("insert into guardian_student (guardian_id, student_profile_id) values (%s, %s)", (guardian, dana))
    this_monday = datetime.fromisoformat(families["weeks"][5]).replace(tzinfo=UTC)
    for weeks_ago in range(7, -1, -1):
        for hour, score in enumerate((80, 80) if weeks_ago > 1 else (62, 64)):
            add_quiz(conn, dana, score, this_monday - timedelta(weeks=weeks_ago) + timedelta(hours=hour + 1))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{live_server}/login?token={families['token']}")
    page.goto(f"{live_server}/students/{dana}")
    assert page.locator('[data-alert="declining"]').count() >= 1
    check_page(page, f"alert-{scheme}", 1280, "en")
    context.close()


def test_the_printed_page_is_one_page_without_navigation_or_buttons(live_server, browser, families):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server}/login?token={families['token']}")
    page.emulate_media(media="print")
    for selector in ("form.sign-out", "form.language", ".skip-link", "p.download a"):
        assert not page.locator(selector).is_visible(), selector
    assert page.locator("svg.chart").is_visible() and page.locator("table.weeks").is_visible()
    pdf = page.pdf(format="A4")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dashboard-print.pdf").write_bytes(pdf)
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    context.close()


def test_the_skip_link_moves_to_the_main_content(live_server, browser, families):
    context = browser.new_context(viewport={"width": 360, "height": 780})
    page = context.new_page()
    page.goto(f"{live_server}/login?token={families['token']}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    context.close()


def test_the_axe_check_can_fail(live_server, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"x.png\"><input>')")
    ids = {v["id"] for v in axe_violations(page)}
    assert {"image-alt", "label"} <= ids
    context.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_alert_settings_form_at_360px_is_accessible_and_saves(live_server, browser, families, conn, lang):
    """The alerts a family chooses (issue 26): the form on the child's page, used with the keyboard's
    labels at 360 px, axe 0 violations before and after saving, in each language."""
    context = browser.new_context(
        viewport={"width": 360, "height": 780}, locale=lang, extra_http_headers={"Accept-Language": lang}
    )
    page = context.new_page()
    page.goto(f"{live_server}/login?token={families['token']}")
    form = page.locator("#alerts form")
    assert page.get_by_label(re.compile(".")).count() >= 4  # every field has its label
    assert form.locator("input[name=missing_work]").is_checked()
    assert form.locator("input[name=sustained_decline]").is_checked()
    check_page(page, "alert-settings", 360, lang)
    form.locator("input[name=sustained_decline]").uncheck()
    form.locator("input[name=score_below]").fill("55")
    form.locator("button[type=submit]").click()
    assert page.url.endswith(f"/students/{families['a']}#alerts")
    assert page.locator("#alerts input[name=score_below]").input_value() == "55"
    assert not page.locator("#alerts input[name=sustained_decline]").is_checked()
    check_page(page, "alert-settings-saved", 360, lang)
    settings = conn.execute(
        "select s.* from guardian_student gs, guardian_alert_settings(gs.guardian_id, gs.student_profile_id) s"
        " where gs.student_profile_id = %s",
        (families["a"],),
    ).fetchone()
    assert settings == (True, False, None, 55)


@pytest.fixture
def oidc_live_server(db_url):
    """The app served for real, signing staff in at a real OpenID provider (tests/oidc/provider.js) on
    another site (localhost) than the app's (127.0.0.1), as a school's provider is."""
    from oidc_provider import OidcProvider
    from oidc_provider import missing as provider_missing

    if provider_missing():
        if in_ci():
            pytest.fail(f"CI=true: the staff sign-in browser test cannot run: {provider_missing()}", pytrace=False)
        pytest.skip(provider_missing())
    from web import create_app
    from web.db import close_pool

    with OidcProvider() as provider:
        application = create_app(
            {"TESTING": True, "DATABASE_URL": db_url, "POOL_MAX_SIZE": 4, "SECRET_KEY": "test-secret-key"}
            | {"SCHOOL_CONTACT": "the school office"}
            | provider.app_settings()
        )
        server = make_server("127.0.0.1", 0, application, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_port}", provider
        server.shutdown()
        thread.join()
        close_pool(application)


def sign_in_at_the_provider(page, base: str, login: str) -> None:
    page.goto(f"{base}/staff/login")
    page.get_by_role("link", name="Sign in with your school account").click()
    page.wait_for_url(re.compile(r"^http://localhost:\d+/interaction/"))
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.locator("button[type=submit]").click()


def test_staff_sign_in_and_out_with_the_school_account(oidc_live_server, browser, conn):
    base, provider = oidc_live_server
    conn.execute("insert into staff_member (email) values ('teacher@school.example')")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in_at_the_provider(page, base, "teacher")
    # Back from the provider's site (cross-site), through the app's own continue page, to the staff pages.
    page.wait_for_url(f"{base}/staff/")
    assert page.locator("form.sign-out").is_visible()
    assert conn.execute("select count(*) from staff_token where revoked_at is null").fetchone()[0] == 1
    assert page.goto(f"{base}/staff/").status == 200  # the session holds

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"^http://localhost:\d+/session/end"))
    page.locator("button[value=yes]").click()  # the provider asks before ending its own session
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/staff/login"))
    assert page.get_by_role("link", name="Sign in with your school account").is_visible()
    assert conn.execute("select count(*) from staff_token where revoked_at is null").fetchone()[0] == 0
    assert page.goto(f"{base}/staff/").status == 401
    # Signed out at the provider too: signing in again asks for the account again.
    page.goto(f"{base}/staff/login")
    page.get_by_role("link", name="Sign in with your school account").click()
    page.wait_for_url(re.compile(r"^http://localhost:\d+/interaction/"))
    assert page.locator("input[name=login]").is_visible()
    context.close()


def test_an_unknown_staff_email_in_the_browser_is_told_who_to_ask(oidc_live_server, browser, conn):
    base, _ = oidc_live_server
    context = browser.new_context()
    page = context.new_page()
    sign_in_at_the_provider(page, base, "stranger")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/staff/oidc/callback"))
    page.wait_for_selector("text=ask the school office")
    assert page.locator("h1").inner_text() == "This account cannot sign in here"
    assert "stranger@elsewhere.example" in page.locator("main").inner_text()
    assert page.goto(f"{base}/staff/").status == 401
    assert conn.execute("select count(*) from staff_token").fetchone()[0] == 0
    context.close()
