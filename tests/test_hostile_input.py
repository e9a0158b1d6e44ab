"""Issue 9: hostile input never reaches a 5xx; one log line per request; what the app exposes to whom."""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.error
import urllib.request

import pytest
from psycopg import errors

import web.parents.page
from web import create_app
from web.db import close_pool
from web.observability import configure_logging

from factories import add_assignment, add_quiz, add_student

PROBLEM = "application/problem+json"
HUGE = "9" * 5000  # past Python's 4,300-digit int() limit


@pytest.fixture
def staff_token(conn):
    staff = conn.execute("insert into staff_member (email) values ('t@school.example') returning id").fetchone()[0]
    return conn.execute("select issue_staff_token(%s)", (staff,)).fetchone()[0]


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/students/{HUGE}/weekly-trend",
        f"/api/v1/students/{HUGE}/weekly-trend.csv",
        f"/api/v1/students/1/weekly-trend?weeks={HUGE}",
        f"/api/v1/students/1/weekly-trend?end={HUGE}",
    ],
)
def test_huge_integers_in_the_api_are_a_400_problem(client, family, path):
    r = client.get(path, headers={"Authorization": f"Bearer {family['token']}"})
    assert r.status_code == 400 and r.mimetype == PROBLEM


@pytest.mark.parametrize("path", [f"/students/{HUGE}", f"/?weeks={HUGE}"])
def test_huge_integers_on_the_parents_page_are_a_400_page(client, family, path):
    r = client.get(path, headers={"Authorization": f"Bearer {family['token']}"})
    assert r.status_code == 400 and r.mimetype == "text/html"


@pytest.mark.parametrize(
    "path", [f"/staff/students/{HUGE}", f"/staff/students/1?year={HUGE}", f"/staff/students/1?week={HUGE}"]
)
def test_huge_integers_on_the_staff_pages_are_a_400_even_before_sign_in(client, path):
    r = client.get(path)
    assert r.status_code == 400 and r.mimetype == PROBLEM
    assert client.get(path, headers={"Accept": "text/html"}).mimetype == "text/html"


def test_a_nul_byte_in_the_staff_search_is_a_400_problem(client):
    r = client.get("/staff/", query_string={"q": "\x00"})
    assert r.status_code == 400 and r.mimetype == PROBLEM and "NUL" in r.get_json()["detail"]


@pytest.mark.parametrize("path", ["/staff/?q=%00", "/staff/?q=a%00b", "/login?token=wt_%00", "/?weeks=%00"])
def test_a_nul_byte_anywhere_is_a_400(client, staff_token, path):
    r = client.get(path, headers={"Authorization": f"Bearer {staff_token}"})
    assert r.status_code == 400


def test_a_nul_byte_in_a_form_is_a_400(client):
    assert client.post("/login", data={"token": "wt_\x00"}).status_code == 400


@pytest.mark.parametrize(
    "value",
    [
        "294276-12-31 00:00+00",
        "4713-01-01 00:00+00 BC",
        "infinity",
        "-infinity",
        "1899-12-31 23:59+00",
        "2200-01-01 00:00+00",
    ],
)
@pytest.mark.parametrize(
    "table,column",
    [
        ("quiz_attempt", "completed_at"),
        ("assignment_submission", "submitted_at"),
        ("assignment_submission", "graded_at"),
    ],
)
def test_instants_outside_1900_to_2200_are_refused_naming_the_column(conn, value, table, column):
    student = add_student(conn)
    extra = ", percentage, is_graded" if table == "assignment_submission" else ", score"
    values = ", 50, true" if table == "assignment_submission" else ", 50"
    with pytest.raises(errors.CheckViolation) as raised:
        conn.execute(
            f"insert into {table} (student_profile_id, {column}{extra}) values (%s, %s{values})", (student, value)
        )
    assert column in raised.value.diag.constraint_name
    assert conn.execute("select count(*) from student_weekly_performance").fetchone()[0] == 0


def test_instants_at_the_edges_of_the_range_count(conn):
    student = add_student(conn)
    add_quiz(conn, student, 50, "1900-01-01 00:00+00")
    add_assignment(conn, student, 70, graded_at="2199-12-31 23:59+00")
    assert conn.execute("select count(*) from student_weekly_performance").fetchone()[0] == 2


# --- what the logs say ---------------------------------------------------------------------------------


def serve_and_capture(app, paths: list[str]) -> list[dict]:
    """Serve app with werkzeug's server and JSON logging; return the JSON lines logged while fetching paths."""
    from werkzeug.serving import make_server

    stream = io.StringIO()
    root = logging.getLogger()
    before = list(root.handlers), root.level
    configure_logging()
    handler = next(h for h in root.handlers if type(h).__name__ == "_JsonHandler")
    previous = handler.setStream(stream)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for path in paths:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}{path}", timeout=10).close()
            except urllib.error.HTTPError:
                pass
    finally:
        server.shutdown()
        thread.join()
        handler.setStream(previous)
        # leave logging as this test found it: a handler left on the root would outlive pytest's stderr
        root.handlers[:], root.level = before
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_request_is_logged_once_with_its_request_id_and_no_colour_codes(app):
    lines = serve_and_capture(app, ["/healthz", "/api/v1/me/students", "/nowhere"])
    request_lines = [line for line in lines if line.get("path") or "HTTP/1.1" in line["message"]]
    assert [line["path"] for line in request_lines] == ["/healthz", "/api/v1/me/students", "/nowhere"]
    assert all(line["request_id"] not in (None, "-") for line in request_lines)
    assert not any("\x1b[" in line["message"] for line in lines)


def test_json_lines_carry_no_terminal_colour_codes(caplog):
    from web.observability import JsonFormatter

    record = logging.LogRecord(
        "werkzeug", logging.WARNING, __file__, 1, "\x1b[31m\x1b[1mWARNING: dev server\x1b[0m", (), None
    )
    assert json.loads(JsonFormatter().format(record))["message"] == "WARNING: dev server"


# --- exposure --------------------------------------------------------------------------------------------


def test_metrics_are_off_unless_configured(client):
    assert client.get("/metrics").status_code == 404


@pytest.fixture
def metrics_app(db_url):
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "k",
            "METRICS_TOKEN": "s3cret-scraper-token",
            "METRICS_ALLOW_FROM": "10.1.0.0/16",
        }
    )
    yield application
    close_pool(application)


def test_metrics_answer_the_configured_token_or_addresses_only(metrics_app):
    client = metrics_app.test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-scraper-token"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.2.0.1"}).status_code == 404


def test_hsts_over_https_only(client):
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    assert (
        client.get("/healthz", base_url="https://localhost").headers["Strict-Transport-Security"].startswith("max-age=")
    )


@pytest.mark.parametrize("dest", ["image", "iframe", "script", "empty"])
@pytest.mark.parametrize("prefix", ["", "/staff"])
def test_a_sign_in_link_loaded_as_a_subresource_is_refused(client, family, staff_token, dest, prefix):
    token = staff_token if prefix else family["token"]
    r = client.get(f"{prefix}/login", query_string={"token": token}, headers={"Sec-Fetch-Dest": dest})
    assert r.status_code == 403
    assert "weekly_trends_session" not in r.headers.get("Set-Cookie", "")


def test_a_sign_in_link_opened_as_a_page_still_signs_in(client, family):
    r = client.get("/login", query_string={"token": family["token"]}, headers={"Sec-Fetch-Dest": "document"})
    assert r.status_code == 303


def test_an_unhandled_error_on_a_page_is_an_html_page(client, family, monkeypatch):
    import web.parents.page

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(web.parents.page, "render_template", broken)
    r = client.get("/", headers={"Authorization": f"Bearer {family['token']}"})
    assert r.status_code == 500 and r.mimetype == "text/html"
    assert "boom" not in r.get_data(as_text=True)
