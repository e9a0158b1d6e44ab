"""A real SMTP server in-process on 127.0.0.1 (aiosmtpd), keeping what it received."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes = b""  # the DATA exactly as the server received it (before any parsing)

    def raw_header(self, name: str) -> str:
        """A header's raw value as received, unfolded (CRLF + whitespace removed), never decoded."""
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        for line in head.replace("\r\n ", " ").replace("\r\n\t", "\t").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == name.lower():
                return value.strip()
        raise KeyError(name)

    def part(self, subtype: str) -> str:
        return self.message.get_body(preferencelist=(subtype,)).get_content()


@dataclass
class Handler:
    messages: list[Received] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # RCPT TO answered 550
    on_message: object = None  # called with the count after each message is stored, before the 250
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: mailbox unavailable"  # as Postfix says it
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
            count = len(self.messages)
        if self.on_message is not None:
            self.on_message(count)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    def __init__(self):
        self.handler = Handler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port())

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.recipients]


import pytest  # noqa: E402


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_env(monkeypatch, db_url, smtp_server):
    """The CLI's settings: this test's database, the in-process SMTP server, a fixed public address."""
    for name, value in {
        "DATABASE_URL": db_url,
        "MAIL_BACKEND": "smtp",
        "SMTP_URL": smtp_server.url,
        "MAIL_FROM": "Weekly Trends <trends@school.example>",
        "PUBLIC_BASE_URL": "http://localhost",
        "WEEKLY_TRENDS_SCHOOL_TIME_ZONE": "Europe/London",
    }.items():
        monkeypatch.setenv(name, value)
    return {"DATABASE_URL": db_url, "SMTP_URL": smtp_server.url}
