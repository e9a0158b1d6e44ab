"""The weekly-trend endpoint: 200, 400, 401, 404, headers, and the reader role."""

from __future__ import annotations

from datetime import timedelta

import pytest

from factories import add_guardian

PROBLEM = "application/problem+json"


def get(client, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers, query_string=params)


def trend_path(student_id) -> str:
    return f"/api/v1/students/{student_id}/weekly-trend"


def test_weekly_trend_in_the_seed_format(client, family):
    r = get(client, trend_path(family["a"]), family["token"], end="2024-02-01")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "private, no-store"
    body = r.get_json()
    assert body["student_id"] == family["a"]
    weeks = body["weekly_stats"]["weekly_trend"]
    assert body["weekly_stats"]["total_weeks"] == 6 == len(weeks)
    assert [w["week_start"] for w in weeks] == [
        "2023-12-25",
        "2024-01-01",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
        "2024-01-29",
    ]
    assert weeks[3] == {
        "week": "W3",
        "year": 2024,
        "week_number": 3,
        "week_start": "2024-01-15",
        "overall_avg": 88.6,
        "quiz_avg": 87.67,
        "assignment_avg": 90.0,
        "quiz_count": 3,
        "assignment_count": 2,
        "missing_count": 0,
        "alert": None,
    }
    # a week without data is present, with zero counts and null averages
    assert weeks[4] == {
        "week": "W4",
        "year": 2024,
        "week_number": 4,
        "week_start": "2024-01-22",
        "overall_avg": None,
        "quiz_avg": None,
        "assignment_avg": None,
        "quiz_count": 0,
        "assignment_count": 0,
        "missing_count": 0,
        "alert": None,
    }
    # a zero is a score
    assert (weeks[5]["quiz_avg"], weeks[5]["overall_avg"], weeks[5]["assignment_avg"]) == (0.0, 0.0, None)
    assert weeks[0]["week"] == "W52" and weeks[0]["year"] == 2023


def test_weeks_parameter_and_iso_year_labels(client, family):
    r = get(client, trend_path(family["a"]), family["token"], weeks=3, end="2025-01-01")
    weeks = r.get_json()["weekly_stats"]["weekly_trend"]
    assert [(w["year"], w["week_number"]) for w in weeks] == [(2024, 51), (2024, 52), (2025, 1)]
    r = get(client, trend_path(family["a"]), family["token"], weeks=52, end="2024-01-21")
    assert r.status_code == 200 and r.get_json()["weekly_stats"]["total_weeks"] == 52


def test_end_defaults_to_today_in_the_students_time_zone(client, family):
    conn = family["conn"]
    today = conn.execute("select (now() at time zone 'Europe/London')::date").fetchone()[0]
    weeks = get(client, trend_path(family["a"]), family["token"], weeks=1).get_json()["weekly_stats"]["weekly_trend"]
    assert weeks[0]["week_start"] == (today - timedelta(days=today.isoweekday() - 1)).isoformat()


@pytest.mark.parametrize(
    "params",
    [
        {"weeks": "0"},
        {"weeks": "53"},
        {"weeks": "-1"},
        {"weeks": "six"},
        {"weeks": "1.5"},
        {"weeks": ""},
        {"end": "2024-13-01"},
        {"end": "15/01/2024"},
        {"end": "20240115"},
        {"end": "yesterday"},
        {"end": "0001-01-01"},
    ],
)
def test_bad_parameters_get_400_problem(client, family, params):
    r = get(client, trend_path(family["a"]), family["token"], **params)
    assert r.status_code == 400
    assert r.mimetype == PROBLEM
    assert r.get_json()["status"] == 400 and r.get_json()["title"]


@pytest.mark.parametrize("student_id", ["abc", "0", "-3", "99999999999999999999"])
def test_bad_student_id_gets_400(client, family, student_id):
    r = get(client, trend_path(student_id), family["token"])
    assert r.status_code == 400 and r.mimetype == PROBLEM


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer wt_" + "0" * 64, "Bearer not-a-token"],
)
def test_missing_or_unknown_token_gets_401(client, family, header):
    headers = {"Authorization": header} if header is not None else {}
    r = client.get(trend_path(family["a"]), headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.mimetype == PROBLEM and r.get_json()["status"] == 401


def test_expired_and_revoked_tokens_get_401(client, family):
    conn = family["conn"]
    conn.execute(
        "update guardian_token set created_at = now() - interval '2 days', expires_at = now() - interval '1 second'"
    )
    assert get(client, trend_path(family["a"]), family["token"]).status_code == 401
    fresh = conn.execute("select issue_guardian_token(%s)", (family["guardian"],)).fetchone()[0]
    assert get(client, trend_path(family["a"]), fresh).status_code == 200
    conn.execute("update guardian_token set revoked_at = now()")
    assert get(client, trend_path(family["a"]), fresh).status_code == 401


def test_another_familys_child_is_indistinguishable_from_an_unknown_id(client, family):
    other = get(client, trend_path(family["b"]), family["token"], end="2024-01-21")
    unknown = get(client, trend_path(987654), family["token"], end="2024-01-21")
    assert other.status_code == unknown.status_code == 404
    assert other.mimetype == unknown.mimetype == PROBLEM
    assert other.get_data() == unknown.get_data()
    assert other.headers["Cache-Control"] == "private, no-store"


def test_unlinking_takes_effect_on_the_next_request(client, family):
    assert get(client, trend_path(family["a"]), family["token"]).status_code == 200
    family["conn"].execute("delete from guardian_student where student_profile_id = %s", (family["a"],))
    assert get(client, trend_path(family["a"]), family["token"]).status_code == 404


def test_unknown_route_is_a_problem_too(client):
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.mimetype == PROBLEM


def test_healthz(client):
    assert client.get("/healthz").status_code == 200


def test_healthz_when_the_database_does_not_answer():
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "postgresql://nobody@/nodb?host=/nonexistent",
            "POOL_OPEN_TIMEOUT": 1,
            "SECRET_KEY": "x",
        }
    )
    r = app.test_client().get("/healthz")
    assert r.status_code == 503 and r.mimetype == PROBLEM


def test_tokens_are_stored_only_as_hashes(family):
    conn = family["conn"]
    dump = conn.execute("select t::text from guardian_token t").fetchall()
    assert dump and all(family["token"] not in row[0] and family["token"][3:] not in row[0] for row in dump)
    assert (
        conn.execute(
            "select count(*) from guardian_token where token_hash = sha256(convert_to(%s, 'UTF8'))", (family["token"],)
        ).fetchone()[0]
        == 1
    )


def test_issue_guardian_token_rejects_unknown_guardian_and_bad_ttl(conn):
    from psycopg import errors

    with pytest.raises(errors.NoDataFound):
        conn.execute("select issue_guardian_token(987654)")
    gid = add_guardian(conn, "x@example.org")
    with pytest.raises(errors.InvalidParameterValue):
        conn.execute("select issue_guardian_token(%s, '-1 day')", (gid,))
    assert conn.execute("select count(*) from guardian_token").fetchone()[0] == 0


def test_reader_role_is_nologin_and_read_only(conn):
    from psycopg import errors

    assert conn.execute(
        "select rolcanlogin, rolsuper, rolbypassrls from pg_roles where rolname = 'weekly_trends_reader'"
    ).fetchone() == (False, False, False)
    privileges = conn.execute(
        "select distinct privilege_type from information_schema.role_table_grants where grantee = 'weekly_trends_reader'"
    ).fetchall()
    assert privileges == [("SELECT",)]
    conn.execute("set role weekly_trends_reader")
    for statement in [
        "insert into quiz_attempt (student_profile_id, score) values (1, 1)",
        "delete from student_weekly_performance",
        "select issue_guardian_token(1)",
        "select refresh_weekly_performance()",
    ]:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)
    conn.execute("reset role")


def test_app_queries_run_as_the_reader_role(app):
    from web import db

    with app.app_context(), db.reader() as conn:
        assert conn.execute("select current_user").fetchone()["current_user"] == "weekly_trends_reader"
