"""web/mail/transport.py: settings parsed and checked, messages built, and delivery over plain SMTP, STARTTLS and
TLS with a login (a real aiosmtpd server with a certificate made for the test), or into a maildir."""

from __future__ import annotations

import mailbox
import ssl
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from web.mail.transport import Mailer, MailError, MailSettings, build_message, mask_email
from web.settings import Settings, parse_smtp_url

from mailserver import Handler, free_port, mail_env, smtp_server  # noqa: F401 - fixtures


def settings_for(**config) -> MailSettings:
    """The mail settings from these app.config values over the defaults (never the environment)."""
    overrides = {"MAIL_FROM": "Weekly Trends <trends@school.example>", "PUBLIC_BASE_URL": "http://localhost", **config}
    return MailSettings.from_settings(Settings.load(environ={}, overrides=overrides))


@pytest.mark.parametrize(
    "url, expected",
    [
        ("smtp://mail.example", ("mail.example", 25, False, False, None, None)),
        ("smtp://u%40x:p%3Ass@mail.example:587?starttls=true", ("mail.example", 587, False, True, "u@x", "p:ss")),
        ("smtps://user:pw@mail.example", ("mail.example", 465, True, False, "user", "pw")),
    ],
)
def test_smtp_url(url, expected):
    s = parse_smtp_url(url)
    assert (s.host, s.port, s.tls, s.starttls, s.user, s.password) == expected


@pytest.mark.parametrize(
    "config, message",
    [
        ({"SMTP_URL": "http://mail.example"}, "must start with smtp:// or smtps://"),
        ({"SMTP_URL": "smtp://mail.example?tls=1"}, "unknown option(s) tls"),
        ({"SMTP_URL": "smtps://mail.example?starttls=true"}, "starttls applies to smtp:// only"),
        ({"SMTP_URL": "smtp://mail.example:notaport"}, "SMTP_URL"),
        ({"MAIL_BACKEND": "pigeon"}, "MAIL_BACKEND must be one of smtp, maildir"),
        ({"MAIL_BACKEND": "smtp"}, "SMTP_URL is not set"),
        ({"MAIL_BACKEND": "maildir", "MAIL_FROM": "nobody"}, "MAIL_FROM must be an email address"),
        (
            {"MAIL_BACKEND": "maildir", "PUBLIC_BASE_URL": "localhost:5000"},
            "PUBLIC_BASE_URL must be an http(s) address",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_message(config, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings_for(**config)


def test_mask_email():
    assert mask_email("parent@example.org") == "p***@example.org"
    assert mask_email("nonsense") == "***"


def test_a_message_has_both_parts_and_the_list_headers(smtp_server):
    settings = settings_for(SMTP_URL=smtp_server.url)
    message = build_message(
        settings,
        "p@example.org",
        "Subject é",
        "text ü",
        "<p>html ü</p>",
        unsubscribe_url="http://localhost/unsubscribe?token=x",
        display_name="Pat Parent",
    )
    with Mailer(settings) as mailer:
        mailer.send(message)
        mailer.send(message)  # one connection for a batch
    [first, second] = smtp_server.messages
    assert first.recipients == ["p@example.org"] and first.message["To"] == "Pat Parent <p@example.org>"
    assert first.message["Subject"] == "Subject é"
    assert first.part("plain").strip() == "text ü" and first.part("html").strip() == "<p>html ü</p>"
    assert first.message["List-Unsubscribe"] == "<http://localhost/unsubscribe?token=x>"
    assert first.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.message["Message-ID"].endswith("@school.example>")


LONG_UNSUBSCRIBE = "https://trends.school.example/unsubscribe?token=wtu_" + "0123456789abcdef" * 4


def test_the_list_headers_reach_the_smtp_server_raw_never_encoded(smtp_server, tmp_path):
    # RFC 8058 one-click: a receiver reads the raw header and needs the <https://…> URL in it. Longer
    # than 78 characters, policy.SMTP folded it into RFC 2047 encoded words (=?utf-8?q?=3Chttps=3A//…).
    settings = settings_for(SMTP_URL=smtp_server.url)
    message = build_message(
        settings,
        "p@example.org",
        "Subject " + "é" * 80,
        "t",
        "<p>h</p>",
        unsubscribe_url=LONG_UNSUBSCRIBE,
        display_name="Pat Parent",
    )
    with Mailer(settings) as mailer:
        mailer.send(message)
    [received] = smtp_server.messages
    head = received.raw.split(b"\r\n\r\n", 1)[0]
    assert not [line for line in head.split(b"\r\n") if b"=?" in line and b"Subject" not in line and line[:1] != b" "]
    assert f"\r\nList-Unsubscribe: <{LONG_UNSUBSCRIBE}>\r\n".encode() in head
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head
    assert received.raw_header("List-Unsubscribe") == f"<{LONG_UNSUBSCRIBE}>"
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    # other headers are still folded and encoded as before
    assert received.message["Subject"] == "Subject " + "é" * 80
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-Unsubscribe:"))
    # the maildir backend writes the same header
    md = settings_for(MAIL_BACKEND="maildir", MAILDIR=str(tmp_path / "md"))
    with Mailer(md) as mailer:
        mailer.send(build_message(md, "p@example.org", "s", "t", "<p>h</p>", unsubscribe_url=LONG_UNSUBSCRIBE))
    [path] = (tmp_path / "md" / "new").iterdir()
    assert f"\nList-Unsubscribe: <{LONG_UNSUBSCRIBE}>\n".encode() in path.read_bytes()


def test_refused_and_unreachable_are_mail_errors(smtp_server):
    smtp_server.handler.refused.add("p@example.org")
    settings = settings_for(SMTP_URL=smtp_server.url)
    message = build_message(settings, "p@example.org", "s", "t", "<p>h</p>")
    with Mailer(settings) as mailer, pytest.raises(MailError, match="550"):
        mailer.send(message)
    unreachable = settings_for(SMTP_URL=f"smtp://127.0.0.1:{free_port()}?timeout=2")
    with Mailer(unreachable) as mailer, pytest.raises(MailError, match="cannot reach"):
        mailer.send(message)


def test_the_maildir_backend_writes_files_and_sends_nothing(tmp_path):
    settings = settings_for(MAIL_BACKEND="maildir", MAILDIR=str(tmp_path / "md"))
    with Mailer(settings) as mailer:
        mailer.send(build_message(settings, "p@example.org", "s", "t", "<p>h</p>"))
    [stored] = list(mailbox.Maildir(tmp_path / "md"))
    assert stored["To"] == "p@example.org"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def authenticator(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=(auth_data.login, auth_data.password) == (b"mailer@school.example", b"s3cret:/@"))


# smtps is TLS from the first byte, which aiosmtpd's require-TLS check does not know about
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_starttls_and_tls_with_a_login(certificate, monkeypatch, mode):
    key, cert = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the test's certificate, and verifies it
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler, port = Handler(), free_port()
    if mode == "starttls":
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            authenticator=authenticator,
            auth_require_tls=True,
            auth_required=True,
        )
        url = f"smtp://mailer%40school.example:s3cret%3A%2F%40@127.0.0.1:{port}?starttls=true"
    else:
        # (aiosmtpd's auth_require_tls knows STARTTLS only; this connection is TLS from the first byte)
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context,
            authenticator=authenticator,
            auth_require_tls=False,
            auth_required=True,
        )
        url = f"smtps://mailer%40school.example:s3cret%3A%2F%40@127.0.0.1:{port}"
    controller.start()
    try:
        settings = settings_for(SMTP_URL=url)
        with Mailer(settings) as mailer:
            mailer.send(build_message(settings, "p@example.org", "s", "t", "<p>h</p>"))
        assert [m.recipients for m in handler.messages] == [["p@example.org"]]
        anonymous = settings_for(SMTP_URL=url.replace("mailer%40school.example:s3cret%3A%2F%40@", ""))
        with Mailer(anonymous) as mailer, pytest.raises(MailError, match="530"):  # auth_required: the login counted
            mailer.send(build_message(anonymous, "p@example.org", "s", "t", "<p>h</p>"))
        assert len(handler.messages) == 1
    finally:
        controller.stop()
