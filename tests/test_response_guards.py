"""Exact security headers on every kind of answer, and the CSV export's guards: every spreadsheet
formula prefix neutralised, the columns in their documented order."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timezone

import psycopg
import pytest

from factories import add_course, add_quiz

UTC = UTC
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
CSV_COLUMNS = [
    "scope",
    "course_id",
    "course_name",
    "week",
    "year",
    "week_number",
    "week_start",
    "overall_avg",
    "quiz_avg",
    "assignment_avg",
    "quiz_count",
    "assignment_count",
    "missing_count",
    "class_average",
    "class_average_suppressed",
    "alert",
]


def bearer(family) -> dict:
    return {"Authorization": f"Bearer {family['token']}"}


@pytest.mark.parametrize(
    ("path", "authorized", "status", "student_data"),
    [
        ("/api/v1/me/students", True, 200, True),
        ("/api/v1/students/{a}/weekly-trend?end=2024-02-01", True, 200, True),
        ("/api/v1/students/{a}/weekly-trend.csv?end=2024-02-01", True, 200, True),
        ("/api/v1/students/{b}/weekly-trend", True, 404, False),
        ("/api/v1/students/x/weekly-trend", True, 400, False),
        ("/api/v1/students/{a}/weekly-trend", False, 401, False),
        ("/healthz", False, 200, False),
        ("/api/openapi.json", False, 200, False),
        ("/login", False, 200, False),
        ("/static/app.css", False, 200, False),
        ("/no-such-page", False, 404, False),
    ],
)
def test_exact_security_headers(client, family, path, authorized, status, student_data):
    r = client.get(path.format(a=family["a"], b=family["b"]), headers=bearer(family) if authorized else {})
    assert r.status_code == status
    assert {name: r.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    if student_data:
        assert r.headers["Cache-Control"] == "private, no-store"


def test_exact_security_headers_on_the_parents_page(client, family):
    assert client.get("/login", query_string={"token": family["token"]}).status_code == 303
    r = client.get(f"/students/{family['a']}", query_string={"end": "2024-02-01"})
    assert r.status_code == 200
    assert {name: r.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    assert r.headers["Cache-Control"] == "private, no-store"


def csv_answer(client, family) -> list[list[str]]:
    r = client.get(f"/api/v1/students/{family['a']}/weekly-trend.csv?end=2024-02-01&weeks=3", headers=bearer(family))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(r.get_data(as_text=True))))


def test_csv_columns_in_their_documented_order(client, family):
    rows = csv_answer(client, family)
    assert rows[0] == CSV_COLUMNS
    # W3 of 2024 (Monday 15 January): 3 quizzes and 2 assignments, overall 88.6
    w3 = next(r for r in rows[1:] if r[CSV_COLUMNS.index("week_start")] == "2024-01-15")
    assert w3 == [
        "overall",
        "",
        "",
        "W3",
        "2024",
        "3",
        "2024-01-15",
        "88.6",
        "87.67",
        "90.0",
        "3",
        "2",
        "0",
        "",
        "",
        "",
    ]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_csv_cells_cannot_start_a_formula(client, family, prefix):
    name = f'{prefix}HYPERLINK("http://x.example","click")'
    course = add_course(family["conn"], name)
    add_quiz(family["conn"], family["a"], 70, datetime(2024, 1, 31, 9, tzinfo=UTC), course_id=course)
    rows = [r for r in csv_answer(client, family)[1:] if r[0] == "course"]
    assert rows and {r[CSV_COLUMNS.index("course_name")] for r in rows} == {"'" + name}


@pytest.mark.parametrize("prefix", ["\t", "\r"])
def test_a_name_cannot_start_with_a_control_character_either(family, prefix):
    # The CSV would guard a tab or CR as it guards "=" (web/parents/api.py), but such a name never gets
    # in: the name columns refuse control characters (revision 0014).
    with pytest.raises(psycopg.errors.CheckViolation):
        add_course(family["conn"], f'{prefix}HYPERLINK("http://x.example","click")')


def test_csv_leaves_other_names_alone(client, family):
    course = add_course(family["conn"], "Maths = fun, +1")
    add_quiz(family["conn"], family["a"], 70, datetime(2024, 1, 31, 9, tzinfo=UTC), course_id=course)
    rows = [r for r in csv_answer(client, family)[1:] if r[0] == "course"]
    assert {r[CSV_COLUMNS.index("course_name")] for r in rows} == {"Maths = fun, +1"}


def test_every_answer_but_the_public_ones_is_private_no_store(app, client, family):
    """One after_request (web/__init__.py private_unless_public()) covers every route: each rule of the
    app, asked without a credential or with one, answers private, no-store unless its endpoint is listed
    public; the public ones are exactly the static files, /healthz, the OpenAPI document and /metrics."""
    from web import PUBLIC_ENDPOINTS

    ids = {"student_id": family["a"], "week": "2024-W05", "guardian_id": "1", "filename": "app.css"}
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert PUBLIC_ENDPOINTS <= endpoints  # no stale name: each public one is a route
    checked = 0
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name, value in ids.items():
            path = path.replace(f"<{name}>", str(value)).replace(f"<path:{name}>", str(value))
        for method in sorted(rule.methods & {"GET", "POST"}):
            for headers in ({}, bearer(family)):
                r = client.open(path, method=method, headers=headers)
                if rule.endpoint in PUBLIC_ENDPOINTS:
                    assert r.headers.get("Cache-Control") != "private, no-store", (path, method)
                else:
                    assert r.headers.get("Cache-Control") == "private, no-store", (path, method, r.status_code)
                    checked += 1
    assert checked >= 30


def test_every_post_route_refuses_another_origin_before_its_view(app, client, family):
    """Each blueprint's before_request (web/auth.py same_origin_for_unsafe_methods()) refuses a POST from
    another site, signed in or not, before the view reads anything; only the mail's one-click
    unsubscribes (RFC 8058: the mail provider posts them; the digest's and the alerts') are exempt. The
    alert settings' PUT is refused likewise."""
    ids = {"student_id": family["a"], "guardian_id": "1"}
    assert client.get("/login", query_string={"token": family["token"]}).status_code == 303  # a session
    posts = [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]
    assert {rule.endpoint for rule in posts} >= {"pages.set_language", "pages.logout", "mail.weekly_digest_preference"}
    assert {rule.endpoint for rule in posts} >= {"staff.recalculate", "staff.revoke_links", "staff.login"}
    for rule in posts:
        path = rule.rule
        for name, value in ids.items():
            path = path.replace(f"<{name}>", str(value))
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            r = client.post(path, headers=headers, data={"language": "en", "weekly_digest": "on", "token": "x"})
            if rule.endpoint in ("mail.unsubscribe", "mail.unsubscribe_alerts"):
                assert r.status_code == 404, path  # judged by its token alone (here: none)
            else:
                assert r.status_code == 403, (path, headers, r.status_code)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        r = client.put(f"/api/v1/students/{family['a']}/alert-settings", headers=headers, json={})
        assert r.status_code == 403, headers
    assert client.get("/").status_code == 200  # still signed in: no POST got through
