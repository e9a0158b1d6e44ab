"""Outgoing mail: settings, message building, and two backends (SMTP, or a local maildir).

Settings (environment; each also read as WEEKLY_TRENDS_<NAME>):

- MAIL_BACKEND   smtp | maildir (default smtp)
- SMTP_URL       smtp://[user:password@]host[:port][?starttls=true]  (plain, 25; STARTTLS when asked)
                 smtps://[user:password@]host[:port]                  (TLS from the start, 465)
                 user and password percent-encoded; ?timeout=seconds (default 30)
- MAILDIR        the maildir of the maildir backend (default ./maildir, git-ignored)
- MAIL_FROM      the From address (default "Weekly Trends <no-reply@localhost>")
- PUBLIC_BASE_URL  the site's address as parents reach it, for links (default http://127.0.0.1:5000)

Nothing here logs a token or a whole email address (mask_email).
"""

from __future__ import annotations

import mailbox
import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email import errors, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from web.i18n import TRANSLATIONS, format_day, format_long_date, format_number, format_short_date, parse_locale
from web.settings import Settings, SmtpServer, ensure_maildir, parse_smtp_url

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"
DEFAULT_FROM = "Weekly Trends <no-reply@localhost>"
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
# Headers written as they are: folded only at whitespace between list items, never RFC 2047-encoded.
RAW_HEADERS = {"list-unsubscribe", "list-unsubscribe-post"}
MAX_LINE = 998  # RFC 5322 2.1.1: no line longer, CRLF excluded


class MailPolicy(policy.EmailPolicy):
    """email.policy.default, except that List-Unsubscribe and List-Unsubscribe-Post are written raw.

    The default policy folds a header line longer than max_line_length (78) and, when a single word
    (here the whole <https://…> URL) does not fit, turns it into RFC 2047 encoded words
    (=?utf-8?q?=3Chttps=3A//…?=). A receiver doing RFC 8058 one-click reads the raw header and finds
    no URL there. These two headers are ASCII by construction (build_message checks): written as
    they are, folded only after the comma between two <…> items, a line at most 998 characters.
    """

    def fold(self, name: str, value: str) -> str:
        if name.lower() in RAW_HEADERS:
            return raw_header_lines(name, str(value), self.linesep, self.max_line_length or MAX_LINE)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in RAW_HEADERS:
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


def raw_header_lines(name: str, value: str, linesep: str, width: int) -> str:
    """`Name: value` + linesep, folded (linesep + space) only after a comma between items, when the
    line would pass `width`; never inside an item."""
    items = [item.strip() for item in value.split(",")]
    lines = [f"{name}: {items[0]}"]
    for item in items[1:]:
        if len(lines[-1]) + 2 + len(item) > width:
            lines[-1] += ","
            lines.append(f" {item}")
        else:
            lines[-1] += f", {item}"
    return linesep.join(lines) + linesep


# The message's own policy (the maildir backend writes with it, \n line ends, unfolded).
MAIL_POLICY = MailPolicy()
# CRLF line ends, other headers folded at 78: what an SMTP server expects in DATA.
SMTP_POLICY = MAIL_POLICY.clone(linesep="\r\n")


RAW_URL = re.compile(r"https?://[!-+\--;=?-~]+")  # printable ASCII but space, comma, < and >
EMAIL_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


class MailError(Exception):
    """A message that could not be handed over (refused, or the server unreachable).

    ambiguous: the connection was lost after DATA began, so the server may hold the message.
    """

    def __init__(self, text: str, *, ambiguous: bool = False):
        # A server's refusal often names the recipient: masked, as everywhere it is logged or stored.
        super().__init__(EMAIL_ADDRESS.sub(lambda m: mask_email(m[0]), text))
        self.ambiguous = ambiguous


class BadRecipient(MailError):
    """A recipient no message can be addressed to: a display name with a control character (CR/LF
    would be a header injection; the mail library refuses it), or an email that is not exactly one
    address (a,b@c.example would be two). Nothing was handed over; retrying cannot help until the
    guardian's row is fixed. The text names the address masked only."""


# C0 (tab, CR, LF included), DEL, C1, and the Unicode line and paragraph separators: what revision
# 0014's name constraints refuse (db/migrations/versions/0014/010_names_schema.sql).
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def recipient(email: str, display_name: str | None = None) -> Address:
    """The To: address of a guardian, or BadRecipient."""
    masked = mask_email(email)
    if display_name and CONTROL_CHARACTERS.search(display_name):
        raise BadRecipient(f"the display name of {masked} contains a control character (fix it in the guardian's row)")
    try:
        address = Address(display_name or "", addr_spec=email)
    except (ValueError, IndexError, errors.HeaderParseError):
        address = None
    if (
        address is None
        or CONTROL_CHARACTERS.search(email)
        or address.addr_spec != email
        or not address.username
        or not address.domain
    ):
        raise BadRecipient(f"{masked} is not one valid email address (fix it in the guardian's row)")
    return address


@dataclass(frozen=True)
class MailSettings:
    backend: str
    smtp: SmtpServer | None
    maildir: Path
    sender: str
    base_url: str
    language: str = "en"  # the school's (WEEKLY_TRENDS_DEFAULT_LOCALE): a guardian's without a choice

    @classmethod
    def from_settings(cls, config: Settings, *, check_maildir: bool = False) -> MailSettings:
        """The mail part of the settings checked at start (web/settings.py). A command that sends calls this
        first: MAIL_BACKEND=smtp without SMTP_URL is refused here (ValueError), and with check_maildir a
        maildir that cannot take a file (SettingError)."""
        if config.mail_backend == "smtp" and not config.smtp_url:
            raise ValueError("MAIL_BACKEND is smtp but SMTP_URL is not set (or set MAIL_BACKEND=maildir)")
        if check_maildir and config.mail_backend == "maildir":
            ensure_maildir(config.maildir)
        return cls(
            backend=config.mail_backend,
            smtp=parse_smtp_url(config.smtp_url) if config.mail_backend == "smtp" else None,
            maildir=config.maildir,
            sender=config.mail_from,
            base_url=config.public_base_url or DEFAULT_BASE_URL,
            language=config.default_locale,
        )

    @property
    def sender_domain(self) -> str:
        return parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"

    def link(self, path: str) -> str:
        return self.base_url + path


def mask_email(email: str) -> str:
    """p***@example.org: enough to tell recipients apart in a log, not to write to them."""
    local, at, domain = (email or "").partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"


_environments: dict[tuple[str, bool], Environment] = {}


def templates(language: str | None = None, fallback: str = "en", *, html: bool = False) -> Environment:
    """The mail templates in `language` (the parents' pages' catalogs and formats; the school's default
    language, `fallback` (MailSettings.language), when None or a language we do not ship).

    html=True: the environment of the HTML part, where EVERY template autoescapes, whatever its name
    (the sentence macros in digest/_macros.txt serve both parts: a name in them is escaped in the
    HTML part and stays plain text in the text part). Escaping is decided when a template compiles,
    by its environment: one environment per part, so no template reaches HTML unescaped.
    """
    locale = parse_locale(language) or parse_locale(fallback) or parse_locale("en")
    key = (str(locale), html)
    if key not in _environments:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=html,
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(Translations.load(str(TRANSLATIONS), [str(locale)]), newstyle=True)
        rtl = locale.text_direction == "rtl"
        env.globals.update(
            lang=locale.language,
            dir=locale.text_direction,
            # Inline styles name physical sides (mail clients ignore logical ones): the reading side first.
            start="right" if rtl else "left",
            end="left" if rtl else "right",
            num=lambda value, signed=False: format_number(value, locale, signed),
            short_date=lambda day: format_short_date(day, locale),
            long_date=lambda day: format_long_date(day, locale),
            day=lambda day: format_day(day, locale),
        )
        _environments[key] = env
    return _environments[key]


def render(folder: str, language: str | None = None, *, fallback: str = "en", **context) -> tuple[str, str, str]:
    """(subject, text, html) of templates/mail/<folder>/, in the guardian's language (else `fallback`): the subject and
    the text part from the plain environment, the HTML part from the autoescaping one."""
    text_env, html_env = templates(language, fallback), templates(language, fallback, html=True)
    subject = " ".join(text_env.get_template(f"{folder}/subject.txt").render(**context).split())
    text = text_env.get_template(f"{folder}/body.txt").render(**context)
    html = html_env.get_template(f"{folder}/body.html").render(**context)
    return subject, text, html


def build_message(
    settings: MailSettings,
    to: str,
    subject: str,
    text: str,
    html: str,
    *,
    message_id: str | None = None,
    unsubscribe_url: str | None = None,
    display_name: str | None = None,
) -> EmailMessage:
    """Every message: text/plain with a text/html alternative, a Message-ID, and for list mail the
    List-Unsubscribe headers (RFC 2369, one-click POST as RFC 8058 describes). BadRecipient when `to`
    and `display_name` make no single valid address."""
    message = EmailMessage(policy=MAIL_POLICY)
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = recipient(to, display_name)  # BadRecipient before anything else is done
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id or make_msgid(domain=settings.sender_domain)
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        if not RAW_URL.fullmatch(unsubscribe_url) or len(unsubscribe_url) > MAX_LINE - 40:
            raise ValueError(
                "the unsubscribe URL must be printable ASCII without spaces, <, > or commas,"
                f" and at most {MAX_LINE - 40} characters (check PUBLIC_BASE_URL)"
            )
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class Mailer:
    """Hands messages over, one connection for a batch: `with Mailer(settings) as m: m.send(msg)`."""

    def __init__(self, settings: MailSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._maildir: mailbox.Maildir | None = None

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _connect(self) -> smtplib.SMTP:
        server = self.settings.smtp
        context = ssl.create_default_context()
        if server.tls:
            smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout, context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
            if server.starttls:
                smtp.starttls(context=context)
        if server.user:
            smtp.login(server.user, server.password or "")
        return smtp

    def send(self, message: EmailMessage, before_data: Callable[[], None] | None = None) -> None:
        """Hand one message over; MailError when the server refuses it or cannot be reached.

        before_data() runs once the server accepted sender and recipient, just before the DATA
        command: the point from which the server may hold the message. A failure before it is a
        plain failure (nothing was handed over); a lost connection or timeout after it leaves the
        message's fate unknown: MailError with ambiguous=True.
        """
        if self.settings.backend == "maildir":
            if self._maildir is None:
                self.settings.maildir.parent.mkdir(parents=True, exist_ok=True)
                self._maildir = mailbox.Maildir(self.settings.maildir, create=True)
            if before_data:
                before_data()
            self._maildir.add(message)
            return
        sender = parseaddr(str(message["From"]))[1]
        recipients = [address.addr_spec for address in message["To"].addresses]
        payload = message.as_bytes(policy=SMTP_POLICY)
        for attempt in (1, 2):
            try:
                if self._smtp is None:
                    self._smtp = self._connect()
                self._envelope(sender, recipients)
                break
            except smtplib.SMTPServerDisconnected as error:
                self._smtp = None
                if attempt == 2:  # a reused connection the server had closed: once more on a fresh one
                    raise MailError(f"the mail server closed the connection: {error}") from None
            except smtplib.SMTPResponseException as error:
                raise MailError(
                    f"the mail server answered {error.smtp_code} {error.smtp_error.decode(errors='replace')}"
                ) from None
            except (smtplib.SMTPException, OSError) as error:
                self.close()
                raise MailError(f"cannot reach the mail server: {error}") from None
        if before_data:
            before_data()
        try:
            code, reply = self._smtp.data(payload)
        except smtplib.SMTPResponseException as error:  # DATA itself refused (no 354): nothing was handed over
            self._reset()
            raise MailError(
                f"the mail server answered {error.smtp_code} {error.smtp_error.decode(errors='replace')}"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise MailError(f"the connection was lost during DATA: {error}", ambiguous=True) from None
        if code != 250:
            self._reset()
            raise MailError(f"the mail server answered {code} {reply.decode(errors='replace')}")

    def _envelope(self, sender: str, recipients: list[str]) -> None:
        """MAIL FROM and RCPT TO, as smtplib.sendmail() does them; refusals raise."""
        smtp = self._smtp
        smtp.ehlo_or_helo_if_needed()
        code, reply = smtp.mail(sender)
        if code != 250:
            self._reset()
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._reset()
                raise smtplib.SMTPResponseException(code, b"recipient refused: " + reply)

    def _reset(self) -> None:
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()
