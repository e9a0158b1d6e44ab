"""The parents' side in a browser's shoes: sign-in link, session cookie, same-origin rule,
/me/students, sign-out, and the dashboard page."""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request

import pytest

from factories import add_guardian, add_student

PROBLEM = "application/problem+json"


def sign_in(client, token):
    return client.get("/login", query_string={"token": token})


def trend_path(student_id, suffix="") -> str:
    return f"/api/v1/students/{student_id}/weekly-trend{suffix}"


def session_cookie(client):
    return client.get_cookie("weekly_trends_session")


def test_sign_in_link_sets_the_cookie_and_redirects_without_the_token(client, family):
    r = sign_in(client, family["token"])
    assert r.status_code == 303
    assert r.headers["Location"] == "/"
    assert family["token"] not in r.headers["Location"]
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert r.headers["Cache-Control"] == "private, no-store"
    assert r.headers["Referrer-Policy"] == "same-origin"
    page = client.get("/")
    assert page.status_code == 200 and "Ann" in page.get_data(as_text=True)


def test_the_cookie_is_secure_over_https(client, family):
    r = client.get("/login", query_string={"token": family["token"]}, base_url="https://localhost")
    assert "Secure" in r.headers["Set-Cookie"]


def test_the_session_holds_the_token_id_only(app, client, family):
    sign_in(client, family["token"])
    raw = session_cookie(client).value
    assert family["token"] not in raw and family["token"][3:] not in raw
    data = app.session_interface.get_signing_serializer(app).loads(raw)
    token_id = family["conn"].execute("select id from guardian_token").fetchone()[0]
    assert data == {"guardian_token_id": token_id}


def test_sign_in_form_post(client, family):
    r = client.post("/login", data={"token": family["token"]})
    assert r.status_code == 303 and r.headers["Location"] == "/"
    assert client.get(trend_path(family["a"])).status_code == 200


def test_sign_in_page_and_bad_tokens(client, family):
    form = client.get("/login")
    assert form.status_code == 200 and 'name="token"' in form.get_data(as_text=True)
    for token in ["wt_" + "0" * 64, "nonsense", ""]:
        r = sign_in(client, token)
        assert r.status_code == 401 and r.mimetype == "text/html"
        assert 'name="token"' in r.get_data(as_text=True)
        assert session_cookie(client) is None


def test_the_dashboard_needs_a_sign_in(client, family):
    r = client.get("/")
    assert r.status_code == 401 and r.mimetype == "text/html"
    assert 'action="/login"' in r.get_data(as_text=True)


def test_cookie_and_bearer_give_the_same_answers(client, family):
    bearer = {"Authorization": f"Bearer {family['token']}"}
    paths = [
        trend_path(family["a"]) + "?end=2024-02-01",
        trend_path(family["a"], ".csv") + "?end=2024-02-01",
        "/api/v1/me/students",
    ]
    by_bearer = [client.get(p, headers=bearer).get_data() for p in paths]
    assert client.get(paths[0]).status_code == 401
    sign_in(client, family["token"])
    by_cookie = [client.get(p) for p in paths]
    assert [r.status_code for r in by_cookie] == [200, 200, 200]
    assert [r.get_data() for r in by_cookie] == by_bearer


def test_me_students(client, family):
    conn = family["conn"]
    c = add_student(conn, "Aaron")
    conn.execute(
        "insert into guardian_student (guardian_id, student_profile_id) values (%s, %s)", (family["guardian"], c)
    )
    r = client.get("/api/v1/me/students", headers={"Authorization": f"Bearer {family['token']}"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-store"
    assert r.get_json() == {
        "students": [{"id": c, "display_name": "Aaron"}, {"id": family["a"], "display_name": "Ann"}]
    }
    assert client.get("/api/v1/me/students").status_code == 401


def test_me_students_without_children(client, conn):
    guardian = add_guardian(conn, "lonely@example.org")
    token = conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0]
    assert client.get("/api/v1/me/students", headers={"Authorization": f"Bearer {token}"}).get_json() == {
        "students": []
    }
    sign_in(client, token)
    assert "No children linked" in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
    ],
)
@pytest.mark.parametrize("path", ["trend", "csv", "/api/v1/me/students"])
def test_cookie_requests_from_another_origin_are_refused(client, family, headers, path):
    path = {"trend": trend_path(family["a"]), "csv": trend_path(family["a"], ".csv")}.get(path, path)
    sign_in(client, family["token"])
    r = client.get(path, headers=headers)
    assert r.status_code == 403 and r.mimetype == PROBLEM
    assert r.get_json()["status"] == 403
    # the same request with the bearer token is not cookie-authenticated: no CSRF to fear
    assert client.get(path, headers=headers | {"Authorization": f"Bearer {family['token']}"}).status_code == 200


def test_same_origin_cookie_requests_pass(client, family):
    sign_in(client, family["token"])
    for headers in [{"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}]:
        assert client.get(trend_path(family["a"]), headers=headers).status_code == 200


def test_cross_site_posts_with_the_cookie_are_refused(client, family):
    sign_in(client, family["token"])
    assert client.post("/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert (
        client.post("/login", data={"token": family["token"]}, headers={"Sec-Fetch-Site": "cross-site"}).status_code
        == 403
    )
    assert client.get("/").status_code == 200  # still signed in


def test_a_link_from_another_site_opens_the_page_but_not_the_api(client, family):
    sign_in(client, family["token"])
    navigation = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    assert client.get("/", headers=navigation).status_code == 200
    assert client.get(trend_path(family["a"]), headers=navigation).status_code == 403


@pytest.mark.parametrize("suffix", ["", ".csv"])
@pytest.mark.parametrize("auth", ["bearer", "cookie"])
def test_another_familys_child_is_a_404_like_an_unknown_id(client, family, suffix, auth):
    headers = {"Authorization": f"Bearer {family['token']}"} if auth == "bearer" else {}
    if auth == "cookie":
        sign_in(client, family["token"])
    other = client.get(trend_path(family["b"], suffix), headers=headers)
    unknown = client.get(trend_path(987654, suffix), headers=headers)
    assert other.status_code == unknown.status_code == 404
    assert other.mimetype == unknown.mimetype == PROBLEM
    assert other.get_data() == unknown.get_data()
    assert other.headers["Cache-Control"] == "private, no-store"


def test_another_familys_child_page_is_a_404_like_an_unknown_id(client, family):
    sign_in(client, family["token"])
    other, unknown = client.get(f"/students/{family['b']}"), client.get("/students/987654")
    assert other.status_code == unknown.status_code == 404
    assert other.get_data() == unknown.get_data()
    assert "Ben" not in other.get_data(as_text=True)
    assert client.get("/students/abc").status_code == 400


def test_sign_out_ends_the_session(client, family):
    sign_in(client, family["token"])
    r = client.post("/logout")
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    assert client.get(trend_path(family["a"])).status_code == 401
    assert client.get("/").status_code == 401


def test_a_replayed_cookie_after_sign_out_is_refused(app, client, family):
    # Sign-out is server-side: the session's token is revoked, so a copy of the old cookie (a shared
    # computer, a stolen cookie) opens nothing. The sign-in link goes with it: a new one is needed.
    sign_in(client, family["token"])
    old = session_cookie(client).value
    assert client.get(trend_path(family["a"])).status_code == 200
    assert client.post("/logout").status_code == 303
    replay = app.test_client()
    replay.set_cookie("weekly_trends_session", old)
    assert replay.get(trend_path(family["a"])).status_code == 401
    assert replay.get("/").status_code == 401
    assert sign_in(app.test_client(), family["token"]).status_code == 401
    revoked = family["conn"].execute("select count(*) from guardian_token where revoked_at is not null").fetchone()[0]
    assert revoked == 1
    # signing out without a session, or with one already dead, is harmless
    assert client.post("/logout").status_code == 303 and replay.post("/logout").status_code == 303


def test_sign_out_revokes_only_a_token_of_the_guardian_the_request_acts_for(family):
    conn = family["conn"]
    other = conn.execute("select id from guardian where email = 'b@example.org'").fetchone()[0]
    token_id = conn.execute("select id from guardian_token where guardian_id = %s", (family["guardian"],)).fetchone()[0]
    with conn.transaction():
        conn.execute("set local role weekly_trends_reader")
        assert conn.execute("select sign_out_guardian_token(%s)", (token_id,)).fetchone()[0] is False  # nobody
        conn.execute("select set_config('app.guardian_id', %s, true)", (str(other),))
        assert conn.execute("select sign_out_guardian_token(%s)", (token_id,)).fetchone()[0] is False  # not theirs
        conn.execute("select set_config('app.guardian_id', %s, true)", (str(family["guardian"]),))
        assert conn.execute("select sign_out_guardian_token(%s)", (token_id,)).fetchone()[0] is True
    assert conn.execute("select revoked_at is not null from guardian_token where id = %s", (token_id,)).fetchone()[0]


def test_revoking_the_token_ends_its_sessions_at_once(client, family):
    sign_in(client, family["token"])
    assert client.get(trend_path(family["a"])).status_code == 200
    family["conn"].execute("update guardian_token set revoked_at = now()")
    r = client.get(trend_path(family["a"]))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/").status_code == 401


def test_expiry_ends_the_session_too(client, family):
    sign_in(client, family["token"])
    family["conn"].execute(
        "update guardian_token set created_at = now() - interval '2 days', expires_at = now() - interval '1 second'"
    )
    assert client.get(trend_path(family["a"])).status_code == 401


def test_the_dashboard_shows_the_weeks_the_trend_and_the_unofficial_label(client, family):
    sign_in(client, family["token"])
    r = client.get(f"/students/{family['a']}", query_string={"end": "2024-02-01"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-store"
    html = r.get_data(as_text=True)
    assert "<svg" in html and "<table" in html and "unofficial" in html
    row = html.split('data-week-start="2024-01-15"')[1].split("</tr>")[0]
    assert all(figure in row for figure in ["88.60", "87.67", "90.00", "<td>3</td>", "<td>2</td>"])
    assert "Figures last updated" in html and 'data-direction="insufficient_data"' in html
    assert f"/api/v1/students/{family['a']}/weekly-trend.csv?end=2024-02-01" in html
    assert "Content-Security-Policy" in r.headers


def test_secret_key_is_kept_in_the_instance_folder(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from web import create_app
    from web.settings import instance_secret_key

    app = SimpleNamespace(instance_path=str(tmp_path / "instance"))  # what create_app passes: the Flask app
    key = instance_secret_key(app)
    assert len(key) == 64 and instance_secret_key(app) == key  # a restart reads the same key
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("SECRET_KEY", "plain")
    assert create_app().config["SECRET_KEY"] == "plain"
    monkeypatch.setenv("WEEKLY_TRENDS_SECRET_KEY", "from-env")
    assert create_app().config["SECRET_KEY"] == "from-env"


def test_the_request_log_never_shows_the_token(app, family, caplog):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            url = f"http://127.0.0.1:{server.server_port}/login?token={family['token']}&x=1"
            with pytest.raises(urllib.error.HTTPError):  # urllib follows the 303 to / without the cookie: 401
                urllib.request.urlopen(url, timeout=10)
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/healthz", timeout=10).close()
    finally:
        server.shutdown()
        thread.join()
    assert "/login?token=[redacted]&x=1" in caplog.text
    assert family["token"] not in caplog.text and family["token"][3:] not in caplog.text


def test_workers_starting_together_share_one_whole_secret_key(tmp_path, monkeypatch):
    # `serve` builds the app in each worker after the fork: on a first start they all look for the key
    # at once. One that found the file created but not yet written read an empty key and failed to boot.
    import itertools
    import threading
    import time
    from types import SimpleNamespace

    from web import settings

    numbers = itertools.count()
    real_token_hex = settings.secrets.token_hex

    def slow_token_hex(n: int) -> str:
        time.sleep(0.3)  # the creating worker is between creating the file and writing its key
        return real_token_hex(n)[:-2] + f"{next(numbers):02d}"

    monkeypatch.setattr(settings.secrets, "token_hex", slow_token_hex)
    app = SimpleNamespace(instance_path=str(tmp_path / "instance"))
    keys, errors = [], []

    def start_worker():
        try:
            keys.append(settings.instance_secret_key(app))
        except Exception as error:  # noqa: BLE001 - any failure is the finding
            errors.append(error)

    first = threading.Thread(target=start_worker)
    first.start()
    time.sleep(0.1)  # the second worker starts while the first is writing
    second = threading.Thread(target=start_worker)
    second.start()
    first.join(timeout=10)
    second.join(timeout=10)
    assert errors == [] and len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 64
    assert (tmp_path / "instance" / "secret_key").read_text() == keys[0]
    assert [p.name for p in (tmp_path / "instance").iterdir()] == ["secret_key"]  # no temporary file left
