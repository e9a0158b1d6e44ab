"""Sign-in links by email, through a real SMTP server: `weekly-trends invite`, `issue-token`'s link,
and the staff page's "send sign-in link" and "revoke links" buttons; end to end to the dashboard."""

from __future__ import annotations

import re

import pytest

from web.ops.cli import main

from factories import add_guardian, add_student
from mailserver import mail_env, smtp_server  # noqa: F401 - fixtures

LINK = re.compile(r"http://localhost(/login\?token=(wt_[0-9a-f]{64}))")


@pytest.fixture
def guardians(conn):
    a, b = add_student(conn, "Ann Able"), add_student(conn, "Ben Baker")
    ids = {
        "a": add_guardian(conn, "a.parent@example.org", a),
        "b": add_guardian(conn, "b.parent@example.org", b),
        "b2": add_guardian(conn, "b.other@example.org", b),
        "lonely": add_guardian(conn, "lonely@example.org"),
    }
    return {"a": a, "b": b, "ids": ids}


def live_tokens(conn, guardian_id: int) -> int:
    return conn.execute(
        "select count(*) from guardian_token where guardian_id = %s and revoked_at is null and expires_at > now()",
        (guardian_id,),
    ).fetchone()[0]


def test_invite_end_to_end_mail_link_dashboard(mail_env, smtp_server, guardians, client, capsys):
    assert main(["invite", "--guardian-email", "a.parent@example.org"]) == 0
    assert "sent 1, skipped 0 (no linked student), failed 0" in capsys.readouterr().out
    [mail] = smtp_server.messages
    assert mail.recipients == ["a.parent@example.org"]
    assert [p.get_content_type() for p in mail.message.iter_parts()] == ["text/plain", "text/html"]
    path, token = LINK.search(mail.part("plain")).groups()
    assert f'href="http://localhost{path}"' in mail.part("html")
    assert "List-Unsubscribe" not in mail.message  # a sign-in link is not list mail
    followed = client.get(path)
    assert followed.status_code == 303
    dashboard = client.get(followed.headers["Location"])
    assert dashboard.status_code == 200 and "Ann Able" in dashboard.get_data(as_text=True)
    assert "Ben Baker" not in dashboard.get_data(as_text=True)


def test_an_invitation_speaks_the_guardians_language(mail_env, smtp_server, guardians, conn):
    conn.execute("update guardian set preferred_language = 'ar' where id = %s", (guardians["ids"]["a"],))
    assert main(["invite", "--guardian-email", "a.parent@example.org", "--quiet"]) == 0
    [mail] = smtp_server.messages
    assert mail.message["Subject"] == "رابط تسجيل الدخول إلى الاتجاهات الأسبوعية"
    assert '<html lang="ar" dir="rtl">' in mail.part("html")
    assert "افتح هذا الرابط لتسجيل الدخول" in mail.part("plain") and LINK.search(mail.part("plain"))


def test_invite_all_without_link_reports_and_fails_non_zero_then_catches_up(
    mail_env, smtp_server, guardians, conn, capsys
):
    conn.execute("select issue_guardian_token(%s)", (guardians["ids"]["a"],))  # A has a live link already
    smtp_server.handler.refused.add("b.other@example.org")
    assert main(["invite", "--all-without-link", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "sent 1, skipped 1 (no linked student), failed 1" in captured.out
    assert "b***@example.org" in captured.err and "b.other@example.org" not in captured.err
    assert [m.recipients for m in smtp_server.messages] == [["b.parent@example.org"]]
    assert live_tokens(conn, guardians["ids"]["b2"]) == 0  # the refused invitation left no live token
    smtp_server.handler.refused.clear()
    assert main(["invite", "--all-without-link", "--quiet"]) == 0
    assert "sent 1, skipped 1" in capsys.readouterr().out  # only the one still without a link
    assert [m.recipients[0] for m in smtp_server.messages] == ["b.parent@example.org", "b.other@example.org"]


def test_invite_skips_a_bad_address_with_a_message_and_goes_on(mail_env, smtp_server, guardians, conn, capsys):
    # a row from before revision 0014's name constraint (planted with it dropped); a comma in an email
    conn.execute("alter table guardian drop constraint guardian_display_name_printable")
    conn.execute(
        "update guardian set display_name = 'Evil\r\nBcc: x@evil.example' where id = %s", (guardians["ids"]["a"],)
    )
    comma = add_guardian(conn, "a,b@c.example", guardians["a"])
    assert main(["invite", "--all-without-link", "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "sent 2, skipped 1 (no linked student), failed 2" in out
    assert "failed: a***@example.org" in err and "failed: a***@c.example" in err and "Traceback" not in err
    assert "a,b@c.example" not in out + err
    assert sorted(m.recipients[0] for m in smtp_server.messages) == ["b.other@example.org", "b.parent@example.org"]
    assert live_tokens(conn, guardians["ids"]["a"]) == 0 and live_tokens(conn, comma) == 0
    assert main(["invite", "--guardian-email", "a,b@c.example"]) == 1
    assert "failed: a***@c.example" in capsys.readouterr().err


def test_invite_holds_no_transaction_across_smtp(mail_env, smtp_server, guardians, conn, db_url, capsys):
    # The CLI mails a token as the staff button and the digest do: claim (the token committed), send with
    # no transaction open, record. While the server holds each message, the invite's connection is idle
    # (not "idle in transaction") and the token being mailed is already live.
    import psycopg

    seen = []

    def during_data(count: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as probe:
            busy = probe.execute(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and application_name = 'weekly-trends-invite' and state <> 'idle'"
            ).fetchone()[0]
            seen.append((busy, live_tokens(probe, guardians["ids"]["b"]) + live_tokens(probe, guardians["ids"]["b2"])))

    smtp_server.handler.on_message = during_data
    assert main(["invite", "--student-id", str(guardians["b"]), "--quiet"]) == 0
    assert seen == [(0, 1), (0, 2)]
    # a refused message leaves no live token (its claim is revoked), as before
    smtp_server.handler.refused.add("a.parent@example.org")
    assert main(["invite", "--guardian-email", "a.parent@example.org"]) == 1
    assert live_tokens(conn, guardians["ids"]["a"]) == 0
    assert (
        conn.execute(
            "select count(*) from guardian_token where guardian_id = %s and revoked_at is not null",
            (guardians["ids"]["a"],),
        ).fetchone()[0]
        == 1
    )


def test_invite_a_students_guardians_with_a_progress_bar(mail_env, smtp_server, guardians, capsys):
    assert main(["invite", "--student-id", str(guardians["b"])]) == 0
    captured = capsys.readouterr()
    assert "sent 2" in captured.out
    assert "invite: 100%" in captured.err and "2/2" in captured.err  # tqdm's bar
    assert sorted(m.recipients[0] for m in smtp_server.messages) == ["b.other@example.org", "b.parent@example.org"]
    tokens = [LINK.search(m.part("plain"))[2] for m in smtp_server.messages]
    assert len(set(tokens)) == 2  # a fresh token each


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["--guardian-email", "nobody@example.org"], 1, "No guardian with email n***@example.org"),
        (["--guardian-email", "lonely@example.org"], 1, "The guardian l***@example.org has no linked student"),
        (["--student-id", "999999"], 1, "No student with id 999999"),
        (["--all-without-link", "--days", "0"], 2, "--days must be at least 1"),
    ],
)
def test_invite_bad_input(mail_env, guardians, capsys, args, status, message):
    assert main(["invite", *args]) == status
    assert message in capsys.readouterr().err


def test_invite_needs_exactly_one_selection(mail_env, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["invite"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["invite", "--all-without-link", "--student-id", "1"])


def test_invite_without_smtp_settings_says_what_is_missing(mail_env, monkeypatch, guardians, capsys):
    monkeypatch.delenv("SMTP_URL")
    assert main(["invite", "--all-without-link"]) == 2
    assert "SMTP_URL is not set" in capsys.readouterr().err


def test_issue_token_prints_the_full_link_too(mail_env, guardians, capsys):
    assert main(["issue-token", "--guardian-email", "a.parent@example.org"]) == 0
    token, link = capsys.readouterr().out.split()
    assert re.fullmatch(r"wt_[0-9a-f]{64}", token)
    assert link == f"http://localhost/login?token={token}"


def staff_client(client, conn):
    member = conn.execute("insert into staff_member (email) values ('teacher@school.example') returning id").fetchone()[
        0
    ]
    token = conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0]
    assert client.get("/staff/login", query_string={"token": token}).status_code == 303
    return member


def test_staff_page_sends_a_sign_in_link_and_revokes_links(mail_env, smtp_server, guardians, client, conn, caplog):
    member = staff_client(client, conn)
    b = guardians["b"]
    page = client.get(f"/staff/students/{b}").get_data(as_text=True)
    assert "b.parent@example.org" in page and "b.other@example.org" in page and "a.parent@example.org" not in page
    assert "Send sign-in link" in page and "Revoke links" in page
    gid = guardians["ids"]["b"]
    with caplog.at_level("INFO"):
        answer = client.post(f"/staff/students/{b}/guardians/{gid}/send-sign-in-link")
    assert answer.status_code == 303
    [mail] = smtp_server.messages
    assert mail.recipients == ["b.parent@example.org"]
    token = LINK.search(mail.part("plain"))[2]
    ours = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")
    )  # not the test server's
    assert "weekly_trends.access" in {r.name for r in caplog.records}
    assert token not in ours and "b.parent@example.org" not in ours
    assert "was sent to b.parent@example.org" in client.get(f"/staff/students/{b}").get_data(as_text=True)
    assert live_tokens(conn, gid) == 1
    logged = conn.execute(
        "select staff_member_id, student_profile_id, endpoint from access_log where staff_member_id is not null"
        " and endpoint like 'POST %%' order by id"
    ).fetchall()
    assert logged == [(member, b, "POST /staff/students/<student_id>/guardians/<guardian_id>/send-sign-in-link")]

    assert client.post(f"/staff/students/{b}/guardians/{gid}/revoke-links").status_code == 303
    assert live_tokens(conn, gid) == 0
    assert conn.execute("select count(*) from access_log where endpoint like '%%revoke-links'").fetchone()[0] == 1
    # the revoked link no longer signs in
    assert client.get(f"/login?token={token}").status_code == 401


def test_the_staff_button_holds_no_connection_or_transaction_across_smtp(
    mail_env, smtp_server, guardians, app, client, conn, db_url
):
    # Claim (issue the token), commit, give the connection back, send, record: as the digest does. While
    # the SMTP server holds the message, the token is committed and the app holds no pooled connection
    # and no open transaction (an SMTP timeout of 30 s no longer outlasts the pool's 10 s wait).
    import psycopg

    from web.db import pool_stats

    staff_client(client, conn)
    b, gid = guardians["b"], guardians["ids"]["b"]
    seen = {}

    def during_data(count: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as probe:
            seen["busy"] = probe.execute(
                "select count(*) from pg_stat_activity where datname = current_database()"
                " and application_name = 'weekly-trends-web' and state <> 'idle'"
            ).fetchone()[0]
            seen["live"] = live_tokens(probe, gid)
        stats = pool_stats(app)["primary"]
        seen["in_use"] = stats["pool_size"] - stats.get("pool_available", 0)

    smtp_server.handler.on_message = during_data
    assert client.post(f"/staff/students/{b}/guardians/{gid}/send-sign-in-link").status_code == 303
    assert len(smtp_server.messages) == 1
    assert seen == {"busy": 0, "live": 1, "in_use": 0}
    assert live_tokens(conn, gid) == 1


def test_staff_buttons_refuse_other_origins_unlinked_guardians_and_refused_mail(
    mail_env, smtp_server, guardians, client, conn
):
    staff_client(client, conn)
    b, gid = guardians["b"], guardians["ids"]["b"]
    url = f"/staff/students/{b}/guardians/{gid}/send-sign-in-link"
    assert client.post(url, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post(url, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    other = guardians["ids"]["a"]
    assert client.post(f"/staff/students/{b}/guardians/{other}/send-sign-in-link").status_code == 404
    assert client.post(f"/staff/students/{b}/guardians/{other}/revoke-links").status_code == 404
    assert client.post(f"/staff/students/{b}/guardians/x/revoke-links").status_code == 400
    assert smtp_server.messages == []
    smtp_server.handler.refused.add("b.parent@example.org")
    assert client.post(url).status_code == 303
    assert "could not be sent" in client.get(f"/staff/students/{b}").get_data(as_text=True)
    assert live_tokens(conn, gid) == 0  # no token outlives a refused mail
    # signed out: 401, nothing sent
    client.post("/staff/logout")
    assert client.post(url).status_code == 401


def test_the_staff_role_issues_tokens_only_through_the_page_functions(conn, guardians):
    from psycopg import errors

    conn.execute("set role weekly_trends_staff")
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute("select staff_issue_guardian_token(%s, %s, '1 day')", (guardians["b"], guardians["ids"]["b"]))
    conn.execute("select set_config('app.staff_member_id', '1', false)")
    with pytest.raises(errors.NoDataFound):
        conn.execute("select staff_issue_guardian_token(%s, %s, '1 day')", (guardians["b"], guardians["ids"]["a"]))
    conn.execute("reset role")
