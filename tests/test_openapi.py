"""The OpenAPI 3.1 document (web/openapi.json): valid, served as is, covering every route, matching
real answers; and a schemathesis run against the live app on a seeded database."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import make_server

from web import create_app
from web.db import close_pool
from web.operators import OPENAPI_PATH

from factories import add_course, add_guardian, add_quiz, add_student

DOCUMENT = json.loads(OPENAPI_PATH.read_text())
REGISTRY = Registry().with_resource("urn:weekly-trends", Resource.from_contents(DOCUMENT, DRAFT202012))
# Marks of the other family's child that no answer to guardian A may contain.
OTHER_NAME, OTHER_SCORE = "Zebedee Otherfamily", "63.21"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_the_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(json.loads(OPENAPI_PATH.read_text())).validate()


def test_it_is_served_as_is(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.get_data() == OPENAPI_PATH.read_bytes()


def test_every_route_is_documented_and_nothing_else(app):
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
    assert routes == documented


def conforms(response, path: str, method: str = "get") -> None:
    """The status is documented for the operation, and the body matches its schema for that media type."""
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, f"{response.status_code} not documented for {method} {path}"
    spec = responses[str(response.status_code)]
    if "$ref" in spec:
        spec = DOCUMENT["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    media = spec["content"][response.mimetype]
    body = response.get_json() if response.mimetype.endswith("json") else response.get_data(as_text=True)
    schema = (
        {"$ref": "urn:weekly-trends#/components/schemas/" + media["schema"]["$ref"].rsplit("/", 1)[1]}
        if "$ref" in media["schema"]
        else media["schema"]
    )
    Draft202012Validator(schema, registry=REGISTRY).validate(body)


def test_real_answers_conform(app, client, family, conn):
    app.config["METRICS_ALLOW_FROM"] = "127.0.0.1"  # the test client's address
    course = add_course(conn, "Maths")
    add_quiz(conn, family["a"], 91, datetime(2024, 1, 16, 9, tzinfo=UTC), course_id=course)
    auth = {"Authorization": f"Bearer {family['token']}"}
    trend = "/api/v1/students/{student_id}/weekly-trend"
    scores = "/api/v1/students/{student_id}/weeks/{week}/scores"
    record = "/api/v1/students/{student_id}/access-record"
    export = "/api/v1/students/{student_id}/export"
    for path, url, headers, status in [
        (trend, f"/api/v1/students/{family['a']}/weekly-trend?end=2024-02-01", auth, 200),
        (trend, f"/api/v1/students/{family['a']}/weekly-trend?weeks=0", auth, 400),
        (trend, f"/api/v1/students/{family['a']}/weekly-trend", {}, 401),
        (trend, f"/api/v1/students/{family['b']}/weekly-trend", auth, 404),
        (trend + ".csv", f"/api/v1/students/{family['a']}/weekly-trend.csv?end=2024-02-01", auth, 200),
        ("/api/v1/me/students", "/api/v1/me/students", auth, 200),
        ("/healthz", "/healthz", {}, 200),
        ("/metrics", "/metrics", {}, 200),
        ("/students/{student_id}", f"/students/{family['a']}", auth, 200),
        (scores, f"/api/v1/students/{family['a']}/weeks/2024-W03/scores", auth, 200),
        (scores, f"/api/v1/students/{family['a']}/weeks/2024-W00/scores", auth, 400),
        (scores, f"/api/v1/students/{family['a']}/weeks/2024-W03/scores", {}, 401),
        (scores, f"/api/v1/students/{family['b']}/weeks/2024-W03/scores", auth, 404),
        ("/students/{student_id}/weeks/{week}", f"/students/{family['a']}/weeks/2024-W03", auth, 200),
        ("/students/{student_id}/weeks/{week}", f"/students/{family['a']}/weeks/2023-W53", auth, 400),
        (record, f"/api/v1/students/{family['a']}/access-record", auth, 200),
        (record, f"/api/v1/students/{family['a']}/access-record", {}, 401),
        (record, f"/api/v1/students/{family['b']}/access-record", auth, 404),
        (export, f"/api/v1/students/{family['a']}/export", auth, 200),
        (export, f"/api/v1/students/{family['a']}x/export", auth, 400),
        (export, f"/api/v1/students/{family['b']}/export", auth, 404),
        ("/students/{student_id}/access", f"/students/{family['a']}/access", auth, 200),
    ]:
        r = client.get(url, headers=headers)
        assert r.status_code == status, url
        conforms(r, path)


@pytest.fixture
def live(db_url, conn, family):
    """The app served by werkzeug in a thread, on a seeded database: guardian A's family and
    another family whose child carries marks no answer to A may show."""
    course = add_course(conn, "Maths")
    other = add_student(conn, OTHER_NAME, "Asia/Tokyo")
    add_guardian(conn, "other.family@example.org", other)
    now = datetime.now(UTC)
    for weeks_ago in range(4):
        add_quiz(conn, family["a"], 70 + weeks_ago, now - timedelta(weeks=weeks_ago), course_id=course)
        add_quiz(conn, other, OTHER_SCORE, now - timedelta(weeks=weeks_ago))
    member = conn.execute("insert into staff_member (email) values ('fuzz@school.example') returning id").fetchone()[0]
    staff_token = conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0]
    # Many bad sign-in tokens come from one address here: no lockout during the run.
    application = create_app(
        {
            "DATABASE_URL": db_url,
            "SECRET_KEY": "fuzz",
            "AUTH_FAILURE_LIMIT": 10**9,
            "POOL_MAX_SIZE": 4,
            "LOG_FORMAT": "text",
        }
    )
    server = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield family | {"other": other, "staff_token": staff_token, "base_url": f"http://127.0.0.1:{server.server_port}"}
    server.shutdown()
    thread.join()
    close_pool(application)


def test_fuzz_the_live_app(live):
    schema = schemathesis.openapi.from_dict(json.loads(OPENAPI_PATH.read_text()))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in DOCUMENT["paths"].values())
    seen: set[tuple[str, int | None, int]] = set()  # (path, student aimed at, status)
    for operation in operations:
        staff = operation.path.startswith("/staff")
        token = live["staff_token"] if staff else live["token"]
        has_student = any(p.name == "student_id" for p in operation.path_parameters)
        modes = [(GenerationMode.POSITIVE, 12)]
        if len(operation.path_parameters) or len(operation.query) or len(operation.body):
            modes.append((GenerationMode.NEGATIVE, 6))  # nothing to make invalid otherwise
        for mode, examples in modes:
            strategy = operation.as_strategy(generation_mode=mode, headers={"Authorization": f"Bearer {token}"})

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy, student=st.sampled_from([None, live["a"], live["other"]]))
            def run(case, student):
                if has_student and student is not None and mode is GenerationMode.POSITIVE:
                    case.path_parameters["student_id"] = student  # aim at real children, ours and theirs
                response = case.call_and_validate(base_url=live["base_url"], checks=CHECKS)
                seen.add((operation.path, student if has_student else None, response.status_code))
                if not staff:
                    assert OTHER_NAME not in response.text and OTHER_SCORE not in response.text, (
                        f"{case.method} {case.formatted_path} showed another family's data"
                    )

            run()
    # The run reached the figures, and aimed at the other family's child it found nothing.
    for path in (
        "/api/v1/students/{student_id}/weekly-trend",
        "/api/v1/students/{student_id}/weekly-trend.csv",
        "/students/{student_id}",
        "/api/v1/students/{student_id}/weeks/{week}/scores",
        "/students/{student_id}/weeks/{week}",
    ):
        assert (path, live["a"], 200) in seen
        theirs = {status for p, student, status in seen if p == path and student == live["other"]}
        # Aimed at the other family's child at least once (an empty set would pass vacuously), a 404 among them.
        assert 404 in theirs and theirs <= {400, 404}, (path, theirs)
