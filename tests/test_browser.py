"""The parents' page in a real browser: Debian's chromium driven by Playwright (no browser download).

Screenshots (360 px wide and desktop) go to tests/artifacts/, git-ignored.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from conftest import in_ci
from factories import add_assignment, add_guardian, add_quiz, add_student

CHROMIUM = Path(os.environ.get("WEEKLY_TRENDS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

MISSING = f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run does)"
if not CHROMIUM.exists() and in_ci():
    # In CI a missing browser is a failure, never a skip.
    pytest.fail(f"CI=true: {MISSING}", pytrace=False)
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING)


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def families(conn):
    """Child A (guardian A) with scores in weeks 0, 2, 4 and 5 of the last six (5 = this week); child B of guardian B."""
    a, b = add_student(conn, "Alice Example"), add_student(conn, "Bob Other")
    token = conn.execute("select issue_guardian_token(%s)", (add_guardian(conn, "a@example.org", a),)).fetchone()[0]
    add_guardian(conn, "b@example.org", b)
    today = datetime.now(timezone.utc).date()
    monday = datetime.combine(today - timedelta(days=today.weekday()), datetime.min.time(), timezone.utc)

    def at(index: int, hour: int) -> datetime:  # a moment in week `index` (0 oldest, 5 this week)
        return monday - timedelta(weeks=5 - index) + timedelta(hours=hour)

    add_quiz(conn, a, 60, at(0, 1))
    add_quiz(conn, a, 70, at(2, 1))
    add_assignment(conn, a, 80, graded_at=at(2, 2))
    add_quiz(conn, a, 80, at(4, 1))
    for hour, score in enumerate([85, 90, 88]):
        add_quiz(conn, a, score, at(5, hour))
    add_assignment(conn, a, 92, graded_at=at(5, 3))
    add_assignment(conn, a, 88, graded_at=at(5, 4))
    add_quiz(conn, b, 55, at(5, 1))
    weeks = [(monday - timedelta(weeks=5 - i)).date().isoformat() for i in range(6)]
    return {"a": a, "b": b, "token": token, "weeks": weeks}


def cells(page, week_start: str) -> list[str]:
    return page.locator(f'table.weeks tr[data-week-start="{week_start}"] td').all_inner_texts()


def test_a_parent_signs_in_sees_the_chart_and_table_and_nothing_of_another_family(live_server, browser, families):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 360, "height": 780})
    page = context.new_page()
    page.goto(f"{live_server}/login?token={families['token']}")
    assert page.url == f"{live_server}/"  # the token left the address bar
    cookie = next(c for c in context.cookies() if c["name"] == "weekly_trends_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert families["token"] not in cookie["value"]

    assert page.locator("h1").inner_text() == "Alice Example"
    weeks = families["weeks"]
    assert cells(page, weeks[5]) == ["88.60", "87.67", "90.00", "3", "2"]
    assert cells(page, weeks[2]) == ["75.00", "70.00", "80.00", "1", "1"]
    assert cells(page, weeks[1])[3:] == ["0", "0"]
    # the chart: overall points only where there is data, lines only between adjacent weeks with data
    overall = page.locator('svg.chart g[data-series="overall"]')
    assert [float(v) for v in overall.locator("circle").evaluate_all("els => els.map(e => e.dataset.value)")] == [60.0, 75.0, 80.0, 88.6]
    assert overall.locator("path").get_attribute("d").count("M") == 3  # week 0, week 2, weeks 4-5
    # (0, 60), (2, 75), (4, 80), (5, 88.6): x̄ = 2.75, ȳ = 75.9, Sxy = 78.1, Sxx = 14.75: 5.2949… a week
    assert page.locator(".trend").get_attribute("data-direction") == "improving"
    assert "+5.29" in page.locator(".trend").inner_text()
    assert "unofficial" in page.inner_text("main") and "last updated" in page.inner_text("main")
    assert page.locator("svg.chart").bounding_box()["width"] <= 360
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling of the page
    phone = ARTIFACTS / "dashboard-360px.png"
    page.screenshot(path=str(phone), full_page=True)

    response = page.goto(f"{live_server}/students/{families['b']}")
    assert response.status == 404
    assert "Bob Other" not in page.content()
    api = page.goto(f"{live_server}/api/v1/students/{families['b']}/weekly-trend")
    assert api.status == 404

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/students/{families['a']}")
    desktop = ARTIFACTS / "dashboard-desktop.png"
    page.screenshot(path=str(desktop), full_page=True)
    print(f"\nscreenshots: {phone} {desktop}")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server}/login")
    assert page.goto(f"{live_server}/").status == 401
    context.close()
