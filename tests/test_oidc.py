"""Staff sign-in with the school's accounts (OpenID Connect, web/staff/oidc.py) against a real OpenID
provider: npm's oidc-provider run by tests/oidc/provider.js on 127.0.0.1 (tests/oidc_provider.py). The app
side through Flask's test client, the provider over real HTTP (the app's own calls too: discovery, the
token exchange, the key set). No mock of the flow: the bad tokens come from providers configured to issue
them (another client's record, another key under the signing kid, a clock 10 minutes slow).
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from conftest import in_ci
from oidc_provider import CLIENT_ID, OidcProvider, missing, sign_in_at_provider

if missing() and in_ci():
    pytest.fail(f"CI=true: the OpenID sign-in tests cannot run: {missing()}", pytrace=False)
pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))

CONTACT = "the school office (office@school.example)"


@pytest.fixture(scope="module")
def provider():
    with OidcProvider() as running:
        yield running


@pytest.fixture
def staff_members(conn):
    rows = {}
    for email in ["teacher@school.example", "casey.teacher@school.example", "removed@school.example"]:
        rows[email] = conn.execute("insert into staff_member (email) values (%s) returning id", (email,)).fetchone()[0]
    rows["outsider@other-school.example"] = conn.execute(
        "insert into staff_member (email) values ('outsider@other-school.example') returning id"
    ).fetchone()[0]
    return rows


@pytest.fixture
def make_app(db_url):
    from web import create_app
    from web.db import close_pool

    apps = []

    def make(oidc: dict):
        application = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": db_url,
                "POOL_MAX_SIZE": 4,
                "SECRET_KEY": "test-secret-key",
                "SCHOOL_CONTACT": CONTACT,
            }
            | oidc
        )
        apps.append(application)
        return application

    yield make
    for application in apps:
        close_pool(application)


def start(client) -> str:
    """The app's sign-in button: the authorization URL the app sends the browser to."""
    response = client.get("/staff/oidc/start")
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    return response.headers["Location"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def sign_in(client, login: str):
    return client.get(local(sign_in_at_provider(start(client), login)))


def signed_in(client) -> bool:
    response = client.get("/staff/", headers={"Accept": "text/html"})
    assert response.status_code in (200, 401), response.status_code
    return response.status_code == 200


def live_tokens(conn, member: int) -> int:
    return conn.execute(
        "select count(*) from staff_token where staff_member_id = %s and revoked_at is null and expires_at > now()",
        (member,),
    ).fetchone()[0]


def test_a_staff_member_signs_in_with_the_school_account(make_app, provider, staff_members, conn):
    client = make_app(provider.app_settings()).test_client()
    authorize = start(client)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{provider.issuer}/auth?")
    assert query["client_id"] == [CLIENT_ID] and query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 20 and len(query["nonce"][0]) >= 20
    assert "openid" in query["scope"][0].split() and "email" in query["scope"][0].split()
    assert query["redirect_uri"] == ["http://localhost/staff/oidc/callback"]
    assert not signed_in(client)

    response = client.get(local(sign_in_at_provider(authorize, "teacher")))
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/staff/"
    assert signed_in(client)
    # The session is the staff session of old: a staff token's row id, a row of the staff member's own.
    assert live_tokens(conn, staff_members["teacher@school.example"]) == 1
    lifetime = conn.execute("select expires_at - created_at from staff_token").fetchone()[0]
    assert lifetime.total_seconds() == 12 * 3600


def test_the_email_matches_whatever_its_case(make_app, provider, staff_members, conn):
    client = make_app(provider.app_settings()).test_client()
    assert sign_in(client, "casey").status_code == 303  # Casey.Teacher@School.Example
    assert signed_in(client)
    assert live_tokens(conn, staff_members["casey.teacher@school.example"]) == 1


@pytest.mark.parametrize("login", ["unverified", "stranger"])
def test_an_unverified_or_unknown_email_gets_a_page_saying_who_to_ask(make_app, provider, staff_members, conn, login):
    client = make_app(provider.app_settings()).test_client()
    response = sign_in(client, login)
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    text = response.get_data(as_text=True)
    assert CONTACT in text
    assert "Set-Cookie" not in response.headers or "staff_token_id" not in str(
        client.get_cookie("weekly_trends_session")
    )
    assert not signed_in(client)
    assert conn.execute("select count(*) from staff_token").fetchone()[0] == 0


def test_a_domain_outside_the_allowed_ones_is_refused(make_app, provider, staff_members, conn):
    client = make_app(provider.app_settings(OIDC_ALLOWED_DOMAINS="school.example")).test_client()
    response = sign_in(client, "outsider")  # a staff member, but of another domain
    assert response.status_code == 403 and CONTACT in response.get_data(as_text=True)
    assert not signed_in(client)
    assert sign_in(client, "teacher").status_code == 303
    assert signed_in(client)


def test_a_removed_staff_member_is_out_on_the_next_request(make_app, provider, staff_members, conn):
    client = make_app(provider.app_settings()).test_client()
    assert sign_in(client, "removed").status_code == 303
    assert signed_in(client)
    conn.execute("delete from staff_member where email = 'removed@school.example'")
    assert not signed_in(client)
    # and signing in again finds no one
    assert sign_in(client, "removed").status_code == 403
    assert not signed_in(client)


def test_a_revoked_session_is_out_on_the_next_request(make_app, provider, staff_members, conn):
    client = make_app(provider.app_settings()).test_client()
    assert sign_in(client, "teacher").status_code == 303
    conn.execute("update staff_token set revoked_at = now()")
    assert not signed_in(client)


def test_a_replayed_state_opens_no_session(make_app, provider, staff_members, conn):
    app = make_app(provider.app_settings())
    client = app.test_client()
    callback = local(sign_in_at_provider(start(client), "teacher"))
    assert client.get(callback).status_code == 303
    # The same browser again: the state was used up.
    again = client.get(callback)
    assert again.status_code == 400 and again.mimetype == "text/html"
    # Another browser with the captured URL: no state of its own, no session.
    other = app.test_client()
    response = other.get(callback)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert not signed_in(other)
    assert live_tokens(conn, staff_members["teacher@school.example"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        "",
        "code=abc",
        "code=abc&state=forged",
        "error=access_denied&error_description=The+user+said+no",
        "code=" + "x" * 5000 + "&state=" + "y" * 5000,
        "code=abc&state=forged&iss=https%3A%2F%2Fevil.example",
    ],
)
def test_bad_input_to_the_callback_is_a_plain_400(make_app, provider, staff_members, query):
    client = make_app(provider.app_settings()).test_client()
    start(client)  # a state of the browser's own is pending: still not these
    response = client.get(f"/staff/oidc/callback?{query}")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert not signed_in(client)


def test_an_error_from_the_provider_for_the_pending_state_is_a_plain_400(make_app, provider, staff_members):
    client = make_app(provider.app_settings()).test_client()
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    response = client.get("/staff/oidc/callback?" + urlencode({"error": "access_denied", "state": state}))
    assert response.status_code == 400 and "access_denied" in response.get_data(as_text=True)
    assert not signed_in(client)


def test_a_nonce_other_than_the_apps_is_refused(make_app, provider, staff_members, conn):
    client = make_app(provider.app_settings()).test_client()
    authorize = urlsplit(start(client))
    query = parse_qs(authorize.query)
    query["nonce"] = ["a-nonce-the-app-never-sent-0123456789"]
    tampered = urlunsplit(authorize._replace(query=urlencode(query, doseq=True)))
    response = client.get(local(sign_in_at_provider(tampered, "teacher")))
    assert response.status_code == 400 and "nonce" in response.get_data(as_text=True)
    assert not signed_in(client)
    assert conn.execute("select count(*) from staff_token").fetchone()[0] == 0


@pytest.mark.parametrize(
    "setup, word",
    [
        ({"mode": "wrong-audience"}, "aud"),
        ({"mode": "foreign-key"}, "signature"),
        ({"clock_offset": -600, "id_token_ttl": 60}, "exp"),
    ],
    ids=["wrong-audience", "bad-signature", "expired"],
)
def test_an_id_token_that_fails_verification_opens_no_session(make_app, staff_members, conn, setup, word):
    with OidcProvider(**setup) as provider:
        client = make_app(provider.app_settings()).test_client()
        response = sign_in(client, "teacher")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert word in response.get_data(as_text=True), response.get_data(as_text=True)
    assert not signed_in(client)
    assert conn.execute("select count(*) from staff_token").fetchone()[0] == 0


def test_the_providers_new_key_is_fetched_when_it_rotates(make_app, staff_members, conn):
    with OidcProvider(kid="key-1") as provider:
        app = make_app(provider.app_settings())
        assert sign_in(app.test_client(), "teacher").status_code == 303  # key-1 fetched and kept
        provider.restart(kid="key-2")
        client = app.test_client()
        assert sign_in(client, "teacher").status_code == 303  # key-2: unknown kid, the key set fetched again
        assert signed_in(client)


def test_sign_out_ends_the_session_here_and_at_the_provider(make_app, provider, staff_members, conn):
    client = make_app(provider.app_settings()).test_client()
    assert sign_in(client, "teacher").status_code == 303
    response = client.post("/staff/logout")
    # A page that goes on to the provider (a redirect would break the pages' CSP form-action 'self').
    assert response.status_code == 200 and response.mimetype == "text/html"
    location = html.unescape(
        re.search(r'http-equiv="refresh" content="0;url=([^"]+)"', response.get_data(as_text=True))[1]
    )
    target = urlsplit(location)
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider.issuer}/session/end"
    query = parse_qs(target.query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/staff/login"]
    assert query["client_id"] == [CLIENT_ID] and query["id_token_hint"][0].count(".") == 2
    assert not signed_in(client)
    assert live_tokens(conn, staff_members["teacher@school.example"]) == 0
    # The provider knows the hint: its sign-out page answers (no error).
    import requests

    assert requests.get(location, timeout=10).status_code == 200


def test_without_an_issuer_the_printed_tokens_are_the_way_in(app, client, conn):
    assert client.get("/staff/oidc/start").status_code == 404
    page = client.get("/staff/login").get_data(as_text=True)
    assert 'name="token"' in page and "/staff/oidc/start" not in page


def test_with_an_issuer_the_login_page_offers_the_school_account(make_app, provider):
    page = make_app(provider.app_settings()).test_client().get("/staff/login").get_data(as_text=True)
    assert 'href="/staff/oidc/start"' in page


def test_a_provider_that_does_not_answer_is_a_plain_page(make_app, staff_members):
    provider = OidcProvider()  # never started: nothing listens on its port
    response = make_app(provider.app_settings()).test_client().get("/staff/oidc/start")
    assert response.status_code == 503 and response.mimetype == "text/html"


def test_the_session_function_finds_one_staff_member_or_none(conn):
    from psycopg import errors

    first = conn.execute("insert into staff_member (email) values ('Ann@School.example') returning id").fetchone()[0]
    token_id = conn.execute("select open_staff_session_by_email('ann@school.EXAMPLE')").fetchone()[0]
    assert conn.execute("select staff_member_id from staff_token where id = %s", (token_id,)).fetchone()[0] == first
    # Two whose emails differ only in case: no one (the page says who to ask).
    conn.execute("insert into staff_member (email) values ('ann@school.example')")
    assert conn.execute("select open_staff_session_by_email('ANN@school.example')").fetchone()[0] is None
    assert conn.execute("select open_staff_session_by_email('nobody@school.example')").fetchone()[0] is None
    for bad in [None, "", "not an email"]:
        with pytest.raises(errors.InvalidParameterValue):
            conn.execute("select open_staff_session_by_email(%s)", (bad,))
    # The staff pages' role may call it; the parents' may not.
    privileges = conn.execute(
        "select has_function_privilege(r, 'open_staff_session_by_email(text, interval)', 'execute')"
        " from unnest(array['weekly_trends_staff', 'weekly_trends_reader']) r"
    ).fetchall()
    assert [row[0] for row in privileges] == [True, False]


def test_failed_callbacks_count_toward_the_lockout(make_app, provider):
    client = make_app(provider.app_settings(AUTH_FAILURE_LIMIT=3)).test_client()
    for _ in range(3):
        assert client.get("/staff/oidc/callback?code=x&state=forged").status_code == 400
    assert client.get("/staff/oidc/callback?code=x&state=forged").status_code == 429


def test_starting_again_and_again_keeps_only_the_latest_sign_in(make_app, provider, staff_members):
    client = make_app(provider.app_settings()).test_client()
    earlier = [start(client) for _ in range(30)]
    assert len(client.get_cookie("weekly_trends_session").value) < 1000  # not 30 pending sign-ins
    assert client.get(local(sign_in_at_provider(earlier[0], "teacher"))).status_code == 400  # superseded
    assert sign_in(client, "teacher").status_code == 303
