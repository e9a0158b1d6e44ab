"""Tokens: expiry, revoke_guardian_tokens() and unlinking take effect on the next request (bearer and
cookie); 429 after repeated failed authentication from one address."""

from __future__ import annotations

import pytest
from psycopg import errors

from web import create_app
from web.db import close_pool
from web.ratelimit import FailureWindow

PROBLEM = "application/problem+json"


def trend(student_id) -> str:
    return f"/api/v1/students/{student_id}/weekly-trend"


class Bearer:
    """Sends the token as a header."""

    def __init__(self, client, token):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def get(self, path, **kwargs):
        return self.client.get(path, headers=self.headers, **kwargs)


class Cookie:
    """Signs in once with the token, then sends only the session cookie."""

    def __init__(self, client, token):
        self.client = client
        assert client.get("/login", query_string={"token": token}).status_code == 303

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)


@pytest.fixture(params=[Bearer, Cookie], ids=["bearer", "cookie"])
def caller(request, client, family):
    return request.param(client, family["token"])


def test_revoke_guardian_tokens_takes_effect_on_the_next_request(caller, family):
    conn = family["conn"]
    conn.execute("select issue_guardian_token(%s)", (family["guardian"],))
    assert caller.get(trend(family["a"])).status_code == 200
    assert caller.get("/api/v1/me/students").status_code == 200
    assert conn.execute("select revoke_guardian_tokens(%s)", (family["guardian"],)).fetchone()[0] == 2
    for path in (trend(family["a"]), trend(family["a"]) + ".csv", "/api/v1/me/students"):
        r = caller.get(path)
        assert r.status_code == 401 and r.mimetype == PROBLEM
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # nothing left to revoke; B's token untouched
    assert conn.execute("select revoke_guardian_tokens(%s)", (family["guardian"],)).fetchone()[0] == 0
    assert conn.execute("select count(*) from guardian_token where revoked_at is null").fetchone()[0] == 0


def test_revoke_guardian_tokens_leaves_other_guardians_alone(conn, family):
    other = conn.execute("select id from guardian where email = 'b@example.org'").fetchone()[0]
    conn.execute("select issue_guardian_token(%s)", (other,))
    assert conn.execute("select revoke_guardian_tokens(%s)", (family["guardian"],)).fetchone()[0] == 1
    assert (
        conn.execute(
            "select count(*) from guardian_token where guardian_id = %s and revoked_at is null", (other,)
        ).fetchone()[0]
        == 1
    )
    with pytest.raises(errors.NoDataFound):
        conn.execute("select revoke_guardian_tokens(987654)")


def test_revoke_guardian_tokens_is_not_for_the_app_roles(conn, family):
    for role in ("weekly_trends_reader", "weekly_trends_staff"):
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute(f"set local role {role}")
            conn.execute("select revoke_guardian_tokens(%s)", (family["guardian"],))


def test_expiry_is_honoured_on_the_next_request(caller, family):
    assert caller.get(trend(family["a"])).status_code == 200
    family["conn"].execute(
        "update guardian_token set created_at = now() - interval '2 days', expires_at = now() - interval '1 second'"
    )
    assert caller.get(trend(family["a"])).status_code == 401


def test_unlinking_takes_effect_on_the_next_request(caller, family):
    assert caller.get(trend(family["a"])).status_code == 200
    family["conn"].execute("delete from guardian_student where student_profile_id = %s", (family["a"],))
    r = caller.get(trend(family["a"]))
    assert r.status_code == 404 and r.mimetype == PROBLEM
    assert caller.get(trend(family["a"]) + ".csv").status_code == 404
    assert caller.get("/api/v1/me/students").get_json() == {"students": []}


@pytest.fixture
def strict_app(db_url):
    application = create_app(
        {"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "k", "AUTH_FAILURE_LIMIT": 3, "AUTH_FAILURE_WINDOW": 60}
    )
    yield application
    close_pool(application)


BAD = {"Authorization": "Bearer wt_" + "0" * 64}


def test_repeated_failures_from_one_address_get_429(strict_app, family):
    client = strict_app.test_client()
    for _ in range(3):
        assert client.get(trend(family["a"]), headers=BAD).status_code == 401
    r = client.get(trend(family["a"]), headers=BAD)
    assert r.status_code == 429 and r.mimetype == PROBLEM
    assert r.get_json()["status"] == 429 and r.get_json()["title"] == "Too Many Requests"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # a valid token from that address waits too; another address does not
    good = {"Authorization": f"Bearer {family['token']}"}
    assert client.get(trend(family["a"]), headers=good).status_code == 429
    assert client.get("/login", query_string={"token": family["token"]}).status_code == 429
    other = client.get(trend(family["a"]), headers=good, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


def test_bad_sign_in_tokens_count_and_signed_out_visits_do_not(strict_app, family):
    client = strict_app.test_client()
    for _ in range(10):
        assert client.get("/").status_code == 401  # no credential: no attempt
        assert client.get("/api/v1/me/students").status_code == 401
    assert client.get("/api/v1/me/students", headers={"Authorization": f"Bearer {family['token']}"}).status_code == 200
    for _ in range(3):
        assert client.get("/login", query_string={"token": "wt_guess"}).status_code == 401
    r = client.get("/login", query_string={"token": family["token"]})
    assert r.status_code == 429 and "Retry-After" in r.headers


def test_the_window_slides():
    now = [1000.0]
    window = FailureWindow(limit=2, window=10, clock=lambda: now[0])
    window.record("a")
    now[0] += 4
    window.record("a")
    assert window.retry_after("a") == 6  # until the first failure is 10 s old
    assert window.retry_after("b") == 0
    now[0] += 6
    assert window.retry_after("a") == 0
    window.record("a")
    assert window.retry_after("a") == 4


def test_behind_a_trusted_proxy_the_lockout_counts_the_forwarded_address(db_url, family):
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "k",
            "TRUSTED_PROXIES": 1,
            "AUTH_FAILURE_LIMIT": 2,
            "AUTH_FAILURE_WINDOW": 60,
        }
    )
    try:
        client = application.test_client()
        for _ in range(2):
            client.get(trend(family["a"]), headers=BAD | {"X-Forwarded-For": "198.51.100.1"})
        good = {"Authorization": f"Bearer {family['token']}"}
        assert client.get(trend(family["a"]), headers=good | {"X-Forwarded-For": "198.51.100.1"}).status_code == 429
        # another client behind the same proxy is not locked out
        assert client.get(trend(family["a"]), headers=good | {"X-Forwarded-For": "198.51.100.2"}).status_code == 200
    finally:
        close_pool(application)


def test_without_trusted_proxies_a_forwarded_address_is_ignored(strict_app, family):
    client = strict_app.test_client()
    for n in range(3):
        client.get(trend(family["a"]), headers=BAD | {"X-Forwarded-For": f"198.51.100.{n}"})
    assert client.get(trend(family["a"]), headers=BAD | {"X-Forwarded-For": "203.0.113.9"}).status_code == 429
