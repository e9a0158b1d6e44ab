"""Alerts each family chooses: `weekly-trends alerts [--dry-run]`, run from cron (hourly).

Each guardian chooses, per linked child, which alerts they get (guardian_alert_setting; defaults in
guardian_alert_settings(), db/functions/630_alerts.sql): missing_work, course_average_below,
score_below and sustained_decline. new_alerts() says which are due for a guardian now and not yet
mailed. A run sends each household at most one email, listing every new alert of every child.

Delivery, as the digest's (web/mail/digest.py), with the log keyed by the alert rather than the week:

1. Each guardian is taken under an advisory lock of its own ('weekly-trends alerts <guardian>',
   pg_try_advisory_xact_lock in a transaction of a second connection, held until the outcome is
   recorded): a second run skips a guardian the first holds, and reads under the lock what the
   first committed. Two concurrent runs never both send.
2. Under the lock: a message left in 'sending' (its run died after DATA began) becomes 'ambiguous' and
   is never resent; its alerts stay logged (at most once). A message waiting ('pending': a run died
   before DATA; 'failed': refused) is tried again with its alerts, up to
   WEEKLY_TRENDS_DIGEST_MAX_ATTEMPTS, then 'gave_up'.
3. Claim: the new alerts are logged in alert_delivery (guardian, child, kind, subject: the primary
   key, so each alert is mailed at most once ever) against the message, whose attempt, Message-ID and
   unsubscribe token hash are committed. Then MAIL FROM, RCPT TO; 'sending' just before DATA; then
   'sent', 'failed' or 'ambiguous'.

Never between 21:00 and 07:00 in the school's time zone (WEEKLY_TRENDS_SCHOOL_TIME_ZONE): a run then
sends and writes nothing, and reports what it holds to the next run. An alert email carries no sign-in
link (an hourly mail would multiply live links); it links to the child's page and to the settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from web.auth import hash_token
from web.connection import connect
from web.mail.transport import BadRecipient, Mailer, MailError, MailSettings, build_message, mask_email, render
from web.settings import Settings

log = logging.getLogger("weekly_trends.mail")

KINDS = ("missing_work", "course_average_below", "score_below", "sustained_decline")
QUIET_FROM, QUIET_UNTIL = 21, 7  # hours, in the school's time zone: nothing is sent from 21:00 to 07:00
OUTCOMES = ("sent", "nothing_new", "failed", "ambiguous", "gave_up", "busy", "held", "would_send")


def quiet_hours(now: datetime, tz: ZoneInfo) -> bool:
    """Whether now is between 21:00 and 07:00 in tz (the school's time zone)."""
    hour = now.astimezone(tz).hour
    return hour >= QUIET_FROM or hour < QUIET_UNTIL


@dataclass
class Summary:
    quiet: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    alerts: int = 0  # alerts in the messages sent
    failures: list[str] = field(default_factory=list)  # masked

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def line(self) -> str:
        c = self.counts
        if self.quiet:
            return (
                f"Alerts: quiet hours ({QUIET_FROM}:00 to 0{QUIET_UNTIL}:00 in the school's time zone): nothing sent;"
                f" {c['held']} household(s) held to the next run."
            )
        text = f"Alerts: sent {c['sent']} email(s) with {self.alerts} alert(s), nothing new for {c['nothing_new']}, failed {c['failed']}"
        extras = [
            f"{c[k]} {label}"
            for k, label in (
                ("ambiguous", "ambiguous (a run died while sending: not resent, see docs/mail.md)"),
                ("gave_up", "given up after the attempts allowed"),
                ("busy", "being sent by another run"),
            )
            if c[k]
        ]
        return text + ("; " + "; ".join(extras) if extras else "") + "."


def guardians(conn: psycopg.Connection) -> list[dict]:
    """Guardians with at least one child their link gives access to now: the digest's rule of who hears
    about which child (guardian_link_states(), the one home of a guardian's access)."""
    return conn.execute(
        "select g.id, g.email, g.display_name, g.preferred_language from guardian g"
        " where exists (select from guardian_link_states(g.id) s where s.gives_access) order by g.id"
    ).fetchall()


def lock_key(guardian_id: int) -> str:
    """A guardian's advisory lock, as text (hashtextextended(key, 0) is the lock's number)."""
    return f"weekly-trends alerts {guardian_id}"


class Job:
    """What a run and a dry run share: the reads of one guardian's state."""

    def __init__(self, conn: psycopg.Connection, summary: Summary, config: Settings, now: datetime, out=None):
        self.conn, self.summary, self.config, self.now, self.out = conn, summary, config, now, out
        self.limit = config.digest_max_attempts

    def new_alerts(self, guardian_id: int) -> list[dict]:
        return self.conn.execute(
            "select * from new_alerts(%s, %s, %s, %s)", (guardian_id, self.now, *self.config.alert_thresholds)
        ).fetchall()

    def messages(self, guardian_id: int) -> list[dict]:
        """The guardian's messages that are not settled: 'sending', 'pending' and 'failed'."""
        return self.conn.execute(
            "select id, outcome, attempts, message_id from alert_message"
            " where guardian_id = %s and outcome in ('sending', 'pending', 'failed') order by id",
            (guardian_id,),
        ).fetchall()

    def report(self, guardian: dict, what: str) -> None:
        self.summary.add(what)
        if self.out is not None:
            print(f"  {mask_email(guardian['email'])}: {what.replace('_', ' ')}", file=self.out)


def decide(
    messages: list[dict], new: list[dict], *, limit: int, quiet: bool
) -> tuple[list[tuple[dict, str]], str, dict | None]:
    """The one decision of a run and a dry run for a household: what becomes of its unsettled messages
    ((message, 'ambiguous' | 'gave_up') pairs), then 'send', 'held' (quiet hours) or 'nothing_new', and
    the message waiting to be tried again (None: a new one)."""
    settle, open_message = [], None
    for m in messages:
        if m["outcome"] == "sending":
            settle.append((m, "ambiguous"))  # its run died after DATA began: never resent
        elif m["attempts"] >= limit:
            settle.append((m, "gave_up"))
        else:
            open_message = m
    if open_message is None and not new:
        return settle, "nothing_new", None
    return settle, "held" if quiet else "send", open_message


class DryRun(Job):
    """--dry-run: each household's decision, reported, never applied; nothing written, no lock taken."""

    def held_elsewhere(self, guardian_id: int) -> bool:
        return self.conn.execute(
            "select exists (select from pg_locks l where l.locktype = 'advisory' and l.objsubid = 1"
            " and l.database = (select oid from pg_database where datname = current_database())"
            " and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)) as held",
            (lock_key(guardian_id),),
        ).fetchone()["held"]

    def one(self, guardian: dict) -> None:
        gid = guardian["id"]
        if self.held_elsewhere(gid):
            self.report(guardian, "busy")
            return
        settle, what, _ = decide(self.messages(gid), self.new_alerts(gid), limit=self.limit, quiet=self.summary.quiet)
        for _, step in settle:
            self.report(guardian, step)
        self.report(guardian, "would_send" if what == "send" else what)


class Run(Job):
    def __init__(self, conn, summary, config, now, settings: MailSettings, mailer: Mailer, locks: psycopg.Connection):
        super().__init__(conn, summary, config, now)
        self.settings, self.mailer, self.locks = settings, mailer, locks

    def set_outcome(self, message: int, outcome: str, error: str | None = None) -> None:
        self.conn.execute(
            "update alert_message set outcome = %s, last_error = %s, updated_at = now(),"
            " sent_at = case when %s = 'sent' then now() end where id = %s",
            (outcome, error[:1000] if error else None, outcome, message),
        )

    def one(self, guardian: dict) -> None:
        gid = guardian["id"]
        with self.locks.transaction():  # the lock ends with this transaction: outcome recorded, or the run died
            if not self.locks.execute(
                "select pg_try_advisory_xact_lock(hashtextextended(%s, 0))", (lock_key(gid),)
            ).fetchone()[0]:
                self.summary.add("busy")
                return
            # read under the lock: what another run did is committed and visible
            new = self.new_alerts(gid)
            settle, what, open_message = decide(self.messages(gid), new, limit=self.limit, quiet=False)
            for m, step in settle:
                if step == "ambiguous":
                    self.set_outcome(
                        m["id"], "ambiguous", "a run died after DATA began, before it recorded the outcome"
                    )
                    log.warning(
                        "alerts to %s ambiguous (Message-ID %s): not resent",
                        mask_email(guardian["email"]),
                        m["message_id"],
                    )
                    self.summary.add("ambiguous")
                elif step == "gave_up":
                    self.set_outcome(m["id"], "gave_up", f"refused {m['attempts']} times")
                    self.summary.add("gave_up")
            if what == "nothing_new":
                self.summary.add("nothing_new")
            else:
                self.deliver(guardian, open_message, new)

    def claim(self, guardian: dict, open_message: dict | None, new: list[dict]) -> tuple[int, int, str, str]:
        """Logs the new alerts against the message (a new one unless one waits) and commits the attempt:
        (message row, attempt, Message-ID, unsubscribe token)."""
        gid = guardian["id"]
        token = "wtu_" + secrets.token_hex(32)
        with self.conn.transaction():
            if open_message is None:
                row = self.conn.execute("insert into alert_message (guardian_id) values (%s) returning id", (gid,))
                message, attempt = row.fetchone()["id"], 1
            else:
                message, attempt = open_message["id"], open_message["attempts"] + 1
            # each alert at most once ever: the primary key (guardian, child, kind, subject)
            for a in new:
                self.conn.execute(
                    "insert into alert_delivery (guardian_id, student_profile_id, kind, subject, message, detail)"
                    " values (%s, %s, %s, %s, %s, %s)",
                    (gid, a["student_profile_id"], a["kind"], a["subject"], message, json.dumps(a["detail"])),
                )
            message_id = f"<alerts.{gid}.{message}.{attempt}.{secrets.token_hex(6)}@{self.settings.sender_domain}>"
            self.conn.execute(
                "update alert_message set attempts = %s, message_id = %s, unsubscribe_token_hash = %s,"
                " last_error = null, updated_at = now() where id = %s",
                (attempt, message_id, hash_token(token), message),
            )
        return message, attempt, message_id, token

    def deliver(self, guardian: dict, open_message: dict | None, new: list[dict]) -> None:
        message, attempt, message_id, token = self.claim(guardian, open_message, new)
        alerts = message_alerts(self.conn, message)
        try:
            built = alert_email(self.settings, guardian, alerts, token, message_id)
        except BadRecipient as error:
            self.set_outcome(message, "failed", str(error))
            self.failed(guardian, attempt, error)
            return

        def before_data() -> None:
            # From here the server may hold the message: a crash leaves 'sending', later 'ambiguous'.
            self.conn.execute(
                "update alert_message set outcome = 'sending', updated_at = now() where id = %s", (message,)
            )

        try:
            self.mailer.send(built, before_data=before_data)
        except MailError as error:
            if error.ambiguous:
                self.set_outcome(message, "ambiguous", str(error))
                log.warning(
                    "alerts to %s ambiguous (Message-ID %s): %s; not resent",
                    mask_email(guardian["email"]),
                    message_id,
                    error,
                )
                self.summary.add("ambiguous")
                return
            self.set_outcome(message, "failed", str(error))
            self.failed(guardian, attempt, error)
            return
        self.set_outcome(message, "sent")
        log.info("alerts sent to %s (%s alerts), Message-ID %s", mask_email(guardian["email"]), len(alerts), message_id)
        self.summary.add("sent")
        self.summary.alerts += len(alerts)

    def failed(self, guardian: dict, attempt: int, error: MailError) -> None:
        log.warning(
            "alerts to %s failed (attempt %s of %s): %s", mask_email(guardian["email"]), attempt, self.limit, error
        )
        self.summary.add("failed")
        self.summary.failures.append(f"{mask_email(guardian['email'])}: {error}")


def message_alerts(conn: psycopg.Connection, message: int) -> list[dict]:
    """The alerts a message carries, with each child's name and time zone, child by child."""
    return conn.execute(
        "select d.student_profile_id, sp.display_name, sp.time_zone, d.kind, d.subject, d.detail"
        " from alert_delivery d join student_profile sp on sp.id = d.student_profile_id"
        " where d.message = %s order by sp.display_name, sp.id, d.kind, d.created_at, d.subject",
        (message,),
    ).fetchall()


def local_day(value: str, zone: str) -> date:
    return datetime.fromisoformat(value).astimezone(ZoneInfo(zone)).date()


def alert_email(settings: MailSettings, guardian: dict, alerts: list[dict], token: str, message_id: str):
    """The household's alert email: every alert, child by child, in the guardian's language, with an
    unsubscribe link per kind it carries (the List-Unsubscribe header: every kind it carries)."""
    kids: dict[int, dict] = {}
    for a in alerts:
        kid = kids.setdefault(
            a["student_profile_id"],
            {"id": a["student_profile_id"], "name": a["display_name"], "alerts": []},
        )
        detail = dict(a["detail"])
        for key in ("at", "due_at"):
            if detail.get(key):
                detail["day"] = local_day(detail[key], a["time_zone"])
        if detail.get("week_start"):
            detail["week"] = date.fromisoformat(detail["week_start"])
        kid["alerts"].append({"kind": a["kind"], **detail})
    kinds = [k for k in KINDS if any(a["kind"] == k for a in alerts)]

    def unsubscribe(which: list[str]) -> str:
        return settings.link("/unsubscribe/alerts?" + urlencode([("token", token)] + [("kind", k) for k in which]))

    subject, text, html = render(
        "alerts",
        guardian.get("preferred_language"),
        fallback=settings.language,
        guardian=guardian,
        kids=list(kids.values()),
        count=len(alerts),
        kinds=kinds,
        unsubscribe_urls={k: unsubscribe([k]) for k in kinds},
        base_url=settings.base_url,
    )
    return build_message(
        settings,
        guardian["email"],
        subject,
        text,
        html,
        message_id=message_id,
        unsubscribe_url=unsubscribe(kinds),
        display_name=guardian["display_name"],
    )


def run_alerts(
    url: str, now: datetime, *, config: Settings, settings: MailSettings | None = None, dry_run: bool = False, out=None
) -> Summary:
    summary = Summary(quiet=quiet_hours(now, config.school_zone))
    with connect(config, "weekly-trends-alerts", url, row_factory=dict_row) as conn:
        rows = guardians(conn)
        if dry_run or summary.quiet:
            job = DryRun(conn, summary, config, now, out if dry_run else None)
            for g in rows:
                job.one(g)
            return summary
        settings = settings or MailSettings.from_settings(config)
        with Mailer(settings) as mailer, connect(config, "weekly-trends-alerts-locks", url) as locks:
            job = Run(conn, summary, config, now, settings, mailer, locks)
            for g in rows:
                job.one(g)
    return summary


def cmd_alerts(args: argparse.Namespace) -> int:
    try:
        settings = None if args.dry_run else MailSettings.from_settings(args.settings, check_maildir=True)
        if args.dry_run:
            print("Dry run: nothing is sent or written.")
        summary = run_alerts(
            args.settings.database_url,
            args.clock(),
            config=args.settings,
            settings=settings,
            dry_run=args.dry_run,
            out=sys.stdout,
        )
    except ValueError as error:
        print(f"weekly-trends alerts: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        c = summary.counts
        print(
            f"Alerts (dry run{', quiet hours' if summary.quiet else ''}): would send {c['would_send']},"
            f" held {c['held']}, nothing new {c['nothing_new']}, given up {c['gave_up']},"
            f" ambiguous {c['ambiguous']}, busy {c['busy']}."
        )
        return 0
    print(summary.line())
    for failure in summary.failures:
        print(f"  failed: {failure}", file=sys.stderr)
    return 1 if summary.counts["failed"] else 0
