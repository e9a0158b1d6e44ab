"""The weekly household digest: one email per guardian per ISO week, covering all their children.

Delivery is recorded in digest_delivery, keyed (guardian, ISO year, ISO week):

1. Every due guardian gets a 'pending' row (insert … on conflict do nothing).
2. Each row is claimed under an advisory lock of its own (pg_try_advisory_xact_lock), held by an open
   transaction of a second connection until the row's outcome is recorded: a second run skips what
   the first holds, then re-reads the row, so a row is sent by one run only. (A transaction's lock,
   not a session's: through a transaction-mode pooler a session's lock would stay on whichever server
   connection took it.)
3. Claiming revokes the household's earlier digest links (one live digest link per guardian) and
   commits the attempt, the Message-ID and the links' token hashes. Then MAIL FROM and
   RCPT TO; once the server accepted those, and just before DATA, the row is committed as 'sending';
   then DATA; then 'sent' or 'failed' (refused, unreachable: retried by the next run while
   attempts < WEEKLY_TRENDS_DIGEST_MAX_ATTEMPTS). A crash before DATA leaves the row due again.
4. A row found in 'sending' whose lock is free belongs to a run that died after DATA began and
   before it recorded the outcome: the server may have accepted that message. It becomes 'ambiguous'
   and is not resent (at most once; docs/mail.md says why), as does a connection lost during DATA.
   Its Message-ID identifies the message in the server's logs.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from web.auth import hash_token
from web.connection import connect
from web.db import guardian_children
from web.isoweek import iso_week_name, monday_of, parse_iso_week
from web.mail.transport import BadRecipient, Mailer, MailError, MailSettings, build_message, mask_email, render
from web.settings import Settings
from web.signin import sign_in_link

log = logging.getLogger("weekly_trends.mail")

WEEKS_SHOWN = 6
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_LINK_DAYS = 14
OUTCOMES = ("sent", "already_sent", "failed", "skipped", "ambiguous", "gave_up", "busy", "would_send")


def last_complete_week(now: datetime | None = None, tz: ZoneInfo | None = None) -> date:
    """The Monday of the last ISO week that has ended in the school's time zone (tz; UTC when None)."""
    tz = tz or ZoneInfo("UTC")
    today = (now or datetime.now(tz)).astimezone(tz).date()
    return monday_of(today) - timedelta(weeks=1)


@dataclass
class Summary:
    week: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    failures: list[str] = field(default_factory=list)  # "p***@example.org: why", addresses masked

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def failed(self, email: str, error: MailError) -> None:
        self.add("failed")
        self.failures.append(f"{mask_email(email)}: {error}")

    def line(self) -> str:
        c = self.counts
        text = (
            f"Digest {self.week}: sent {c['sent']}, already sent {c['already_sent']}, failed {c['failed']}, "
            f"skipped {c['skipped']} (digest turned off)"
        )
        extras = [
            f"{c[k]} {label}"
            for k, label in (
                ("ambiguous", "ambiguous (a run died while sending: not resent, see docs/mail.md)"),
                ("gave_up", f"given up after {self.max_attempts} failed attempts"),
                ("busy", "being sent by another run"),
            )
            if c[k]
        ]
        return text + ("; " + "; ".join(extras) if extras else "") + "."


def guardians(conn: psycopg.Connection, email: str | None) -> list[dict]:
    """Guardians with at least one linked child (one of them when email is given), with their preference
    (guardian_weekly_digest(), db/functions/610_mail.sql: on unless turned off)."""
    rows = conn.execute(
        """
        select g.id, g.email, g.display_name, g.preferred_language, guardian_weekly_digest(g.id) as weekly_digest
          from guardian g
         where exists (select from guardian_student gs where gs.guardian_id = g.id)
           and (%(email)s::text is null or g.email = %(email)s)
         order by g.id
        """,
        {"email": email},
    ).fetchall()
    if email is not None and not rows:
        if conn.execute("select 1 from guardian where email = %s", (email,)).fetchone():
            raise LookupError(f"The guardian {mask_email(email)} has no linked student: there is nothing to send.")
        raise LookupError(f"No guardian with email {mask_email(email)}.")
    return rows


def child_weeks(
    conn: psycopg.Connection, student_id: int, monday: date, thresholds: tuple[int, int], *, guardian_id: int
) -> dict:
    """A child's WEEKS_SHOWN weeks up to the one of monday, as the parents' answer shows them to the guardian
    guardian_id (student_weekly_stats(): the weekly figures, missing counts, alerts, weeks_with_data,
    last_updated and trend), and the work missing in those weeks (linked_missing_work(), by due date)."""
    first = monday - timedelta(weeks=WEEKS_SHOWN - 1)
    # The missing work is the guardian's view of it (app.guardian_id, as the parents' answer sets it): in a
    # transaction (a savepoint inside the run's), so that the setting ends with it.
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("select set_config('app.guardian_id', %s, true)", (str(guardian_id),))
        stats = cur.execute(
            "select weekly_trend, weeks_with_data, last_updated, trend from student_weekly_stats(%s, %s, %s, %s, %s)",
            (student_id, first, WEEKS_SHOWN, *thresholds),
        ).fetchone()
        missing = cur.execute(
            "select m.course_name, m.title, m.kind, (m.due_at at time zone sp.time_zone)::date as due_on"
            "  from linked_missing_work(%s, %s, %s) m, student_profile sp where sp.id = %s",
            (student_id, first, monday, student_id),
        ).fetchall()
    return stats | {"missing": missing}


def children(conn: psycopg.Connection, guardian_id: int, monday: date, thresholds: tuple[int, int]) -> list[dict]:
    """Each linked child's last six weeks up to the digest's week, with the trend, alerts and missing work."""
    result = []
    for kid in guardian_children(conn, guardian_id):
        stats = child_weeks(conn, kid["id"], monday, thresholds, guardian_id=guardian_id)
        weeks = [
            w
            | {
                "scores": w["quiz_count"] + w["assignment_count"],
                "date": date.fromisoformat(w["week_start"]),
                "bar": 0 if w["overall_avg"] is None else max(1, min(100, round(w["overall_avg"]))),
            }
            for w in stats["weekly_trend"]
        ]
        result.append(
            {
                "id": kid["id"],
                "name": kid["display_name"],
                "weeks": weeks,
                "this_week": weeks[-1],
                "trend": stats["trend"],
                "alert": weeks[-1]["alert"],
                "missing": stats["missing"],
            }
        )
    return result


def digest_content(
    settings: MailSettings,
    guardian: dict,
    monday: date,
    kids: list[dict],
    sign_in_url: str,
    unsubscribe_url: str,
    link_days: int = DEFAULT_LINK_DAYS,
    drop: int = 10,
) -> tuple[str, str, str]:
    year, week, _ = monday.isocalendar()
    return render(
        "digest",
        guardian.get("preferred_language"),
        fallback=settings.language,
        guardian=guardian,
        kids=kids,
        year=year,
        week=week,
        monday=monday,
        sunday=monday + timedelta(days=6),
        sign_in_url=sign_in_url,
        unsubscribe_url=unsubscribe_url,
        base_url=settings.base_url,
        drop=drop,
        link_days=link_days,
    )


# A run's decision for one guardian's row (besides the outcomes it reports as they are): the state
# machine of the module's text, decided by decide() alone. Run applies it; DryRun only reports it.
SEND, MARK_AMBIGUOUS, TURN_OFF = "send", "mark_ambiguous", "turn_off"
REPORTED = {SEND: "would_send", MARK_AMBIGUOUS: "ambiguous", TURN_OFF: "skipped"}  # a dry run's words


def decide(row: dict | None, *, held_elsewhere: bool, limit: int) -> str | None:
    """What a run does with a guardian's row of the week (outcome, attempts, weekly_digest as row() reads
    it), or None when there is no row (the guardian was deleted since the run started).

    held_elsewhere: another run holds the row's lock (step 2). A row in 'sending' that no run holds
    belongs to a run that died after DATA began: it is marked ambiguous, never resent (step 4).
    """
    if held_elsewhere:
        return "busy"
    if row is None:
        return None
    if row["outcome"] == "sent":
        return "already_sent"
    if row["outcome"] == "sending":
        return MARK_AMBIGUOUS
    if row["outcome"] in ("ambiguous", "skipped"):
        return row["outcome"]
    if row["attempts"] >= limit:
        return "gave_up"
    if not row["weekly_digest"]:
        return TURN_OFF
    return SEND


class Week:
    """The rows of one ISO week's digest, as a run and a dry run read them."""

    def __init__(self, conn: psycopg.Connection, monday: date, summary: Summary, config: Settings):
        self.conn, self.monday, self.summary = conn, monday, summary
        self.year, self.week, _ = monday.isocalendar()
        self.limit = config.digest_max_attempts

    def key(self, guardian_id: int) -> str:
        """The row's advisory lock, as text (hashtextextended(key, 0) is the lock's number)."""
        return f"weekly-trends digest {guardian_id} {iso_week_name(self.monday)}"

    def row(self, guardian_id: int) -> dict | None:
        return self.conn.execute(
            "select d.outcome, d.attempts, d.message_id, guardian_weekly_digest(d.guardian_id) as weekly_digest"
            " from digest_delivery d where d.guardian_id = %s and d.iso_year = %s and d.iso_week = %s",
            (guardian_id, self.year, self.week),
        ).fetchone()


class DryRun(Week):
    """--dry-run: each row's decision, reported and never applied; nothing is written, no lock is taken."""

    def __init__(self, conn: psycopg.Connection, monday: date, summary: Summary, config: Settings, out):
        super().__init__(conn, monday, summary, config)
        self.out = out

    def held_elsewhere(self, guardian_id: int) -> bool:
        """Some run holds the row's lock now (read from pg_locks: a dry run never takes one, so it cannot
        make a real run find the row busy). An advisory lock on a bigint shows as its high and low halves."""
        return self.conn.execute(
            "select exists (select from pg_locks l where l.locktype = 'advisory' and l.objsubid = 1"
            " and l.database = (select oid from pg_database where datname = current_database())"
            " and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)) as held",
            (self.key(guardian_id),),
        ).fetchone()["held"]

    def one(self, guardian: dict) -> None:
        gid = guardian["id"]
        # A guardian with no row yet gets a fresh 'pending' one from the run (step 1).
        row = self.row(gid) or {"outcome": "pending", "attempts": 0, "message_id": None, "weekly_digest": True}
        what = decide(row, held_elsewhere=self.held_elsewhere(gid), limit=self.limit)
        self.report(guardian, REPORTED.get(what, what))

    def skipped(self, guardian: dict) -> None:
        self.report(guardian, "skipped")

    def report(self, guardian: dict, what: str) -> None:
        self.summary.add(what)
        print(f"  {mask_email(guardian['email'])}: {what.replace('_', ' ')}", file=self.out or sys.stdout)


class Run(Week):
    def __init__(
        self,
        conn: psycopg.Connection,
        settings: MailSettings,
        mailer: Mailer,
        monday: date,
        summary: Summary,
        config: Settings,
        locks: psycopg.Connection,
    ):
        super().__init__(conn, monday, summary, config)
        self.settings, self.mailer = settings, mailer
        self.locks = locks  # holds each claim's lock in a transaction of its own (step 2)
        self.link_days = config.digest_link_days
        self.thresholds = config.alert_thresholds

    def set_outcome(self, guardian_id: int, outcome: str, error: str | None = None) -> None:
        self.conn.execute(
            "update digest_delivery set outcome = %s, last_error = %s, updated_at = now(),"
            " sent_at = case when %s = 'sent' then now() end"
            " where guardian_id = %s and iso_year = %s and iso_week = %s",
            (outcome, error[:1000] if error else None, outcome, guardian_id, self.year, self.week),
        )

    def one(self, guardian: dict) -> None:
        gid = guardian["id"]
        # The lock ends with this transaction: when the outcome is recorded, or when the run dies.
        with self.locks.transaction():
            held_elsewhere = not self.locks.execute(
                "select pg_try_advisory_xact_lock(hashtextextended(%s, 0))", (self.key(gid),)
            ).fetchone()[0]
            # read under the lock: what another run did is committed and visible
            row = None if held_elsewhere else self.row(gid)
            self.apply(guardian, row, decide(row, held_elsewhere=held_elsewhere, limit=self.limit))

    def skipped(self, guardian: dict) -> None:
        self.summary.add("skipped")

    def apply(self, guardian: dict, row: dict | None, what: str | None) -> None:
        gid = guardian["id"]
        if what is None:
            return
        if what == MARK_AMBIGUOUS:
            self.set_outcome(gid, "ambiguous", "a run died after DATA began, before it recorded the outcome")
            log.warning(
                "digest %s to %s ambiguous (Message-ID %s): not resent",
                iso_week_name(self.monday),
                mask_email(guardian["email"]),
                row["message_id"],
            )
            self.summary.add("ambiguous")
        elif what == TURN_OFF:
            self.set_outcome(gid, "skipped", "the guardian turned the weekly digest off")
            self.summary.add("skipped")
        elif what == SEND:
            self.deliver(guardian, row["attempts"] + 1)
        else:
            self.summary.add(what)

    def failed(self, guardian: dict, attempt: int, error: MailError) -> None:
        """Logged (masked) and counted; the row was recorded 'failed' by the caller."""
        log.warning(
            "digest %s to %s failed (attempt %s of %s): %s",
            iso_week_name(self.monday),
            mask_email(guardian["email"]),
            attempt,
            self.limit,
            error,
        )
        self.summary.failed(guardian["email"], error)

    def deliver(self, guardian: dict, attempt: int) -> None:
        gid = guardian["id"]
        where = (gid, self.year, self.week)
        unsubscribe_token = "wtu_" + secrets.token_hex(32)
        # short enough not to be folded: <digest.GUARDIAN.YYYY-Www.ATTEMPT.RANDOM@domain>
        week = iso_week_name(self.monday)
        message_id = f"<digest.{gid}.{week}.{attempt}.{secrets.token_hex(6)}@{self.settings.sender_domain}>"
        try:
            with self.conn.transaction():
                # One live digest link per household: the new one replaces every earlier digest's (and
                # the link of an earlier attempt that died before DATA, which nobody received). The
                # sessions opened with them end too. Invitations' links are not digest links: kept.
                self.conn.execute(
                    "update guardian_token set revoked_at = now()"
                    " where guardian_id = %s and revoked_at is null and token_hash in"
                    " (select sign_in_token_hash from digest_delivery where guardian_id = %s and sign_in_token_hash is not null)",
                    (gid, gid),
                )
                sign_in_token = self.conn.execute(
                    "select issue_guardian_token(%s, make_interval(days => %s)) as token", (gid, self.link_days)
                ).fetchone()["token"]
                kids = children(self.conn, gid, self.monday, self.thresholds)
                unsubscribe_url = self.settings.link(f"/unsubscribe?token={unsubscribe_token}")
                subject, text, html = digest_content(
                    self.settings,
                    guardian,
                    self.monday,
                    kids,
                    sign_in_link(self.settings.base_url, sign_in_token),
                    unsubscribe_url,
                    self.link_days,
                    self.thresholds[0],
                )
                message = build_message(
                    self.settings,
                    guardian["email"],
                    subject,
                    text,
                    html,
                    message_id=message_id,
                    unsubscribe_url=unsubscribe_url,
                    display_name=guardian["display_name"],
                )
                # Claimed: the attempt counts. Until DATA begins a crash leaves the row due again.
                self.conn.execute(
                    """
                    update digest_delivery
                       set attempts = %s, message_id = %s, last_error = null, unsubscribe_token_hash = %s,
                           sign_in_token_hash = %s, updated_at = now()
                     where guardian_id = %s and iso_year = %s and iso_week = %s
                    """,
                    (attempt, message_id, hash_token(unsubscribe_token), hash_token(sign_in_token), *where),
                )
        except BadRecipient as error:
            # No message can be addressed to this guardian (the claim above rolled back: no new link
            # was issued). Recorded like a refusal, masked; the run goes on with the next household.
            with self.conn.transaction():
                self.conn.execute(
                    "update guardian_token set revoked_at = now() where revoked_at is null and token_hash ="
                    " (select sign_in_token_hash from digest_delivery where guardian_id = %s and iso_year = %s and iso_week = %s)",
                    where,
                )
                self.conn.execute(
                    "update digest_delivery set attempts = %s, message_id = %s"  # the attempt's id, never sent
                    " where guardian_id = %s and iso_year = %s and iso_week = %s",
                    (attempt, message_id, *where),
                )
                self.set_outcome(gid, "failed", str(error))
            self.failed(guardian, attempt, error)
            return

        def before_data() -> None:
            # From here the server may hold the message: a crash leaves 'sending', later 'ambiguous'.
            self.conn.execute(
                "update digest_delivery set outcome = 'sending', updated_at = now()"
                " where guardian_id = %s and iso_year = %s and iso_week = %s",
                where,
            )

        try:
            self.mailer.send(message, before_data=before_data)
        except MailError as error:
            if error.ambiguous:
                self.set_outcome(gid, "ambiguous", str(error))
                log.warning(
                    "digest %s to %s ambiguous (Message-ID %s): %s; not resent",
                    iso_week_name(self.monday),
                    mask_email(guardian["email"]),
                    message_id,
                    error,
                )
                self.summary.add("ambiguous")
                return
            with self.conn.transaction():
                self.set_outcome(gid, "failed", str(error))
                # the link went nowhere: it must not stay valid
                self.conn.execute(
                    "update guardian_token set revoked_at = now() where token_hash = %s", (hash_token(sign_in_token),)
                )
            self.failed(guardian, attempt, error)
            return
        self.set_outcome(gid, "sent")
        log.info(
            "digest %s sent to %s, Message-ID %s", iso_week_name(self.monday), mask_email(guardian["email"]), message_id
        )
        self.summary.add("sent")


def run_digest(
    url: str,
    monday: date,
    *,
    settings: MailSettings | None = None,
    email: str | None = None,
    dry_run: bool = False,
    quiet: bool = True,
    out=None,
    config: Settings | None = None,
) -> Summary:
    """Send (or with dry_run list) the digests of the week starting `monday`; see the module's text.
    config: the checked settings (the CLI's; else read now)."""
    config = config or Settings.load()
    summary = Summary(iso_week_name(monday), max_attempts=config.digest_max_attempts)
    year, week, _ = monday.isocalendar()
    with connect(config, "weekly-trends-digest", url, row_factory=dict_row) as conn:
        rows = guardians(conn, email)
        if dry_run:
            each_guardian(rows, DryRun(conn, monday, summary, config, out), summary, quiet=True)
            return summary
        settings = settings or MailSettings.from_settings(config)
        wanted = [g["id"] for g in rows if g["weekly_digest"]]
        conn.execute(
            "insert into digest_delivery (guardian_id, iso_year, iso_week)"
            " select unnest(%s::bigint[]), %s, %s on conflict do nothing",
            (wanted, year, week),
        )
        with Mailer(settings) as mailer, connect(config, "weekly-trends-digest-locks", url) as locks:
            each_guardian(rows, Run(conn, settings, mailer, monday, summary, config, locks), summary, quiet=quiet)
    return summary


def each_guardian(rows: list[dict], job: DryRun | Run, summary: Summary, *, quiet: bool) -> None:
    """The one walk of a run and a dry run: a guardian who turned the digest off is skipped (no row,
    no lock); every other guardian's row is decided by decide()."""
    from tqdm import tqdm

    for g in tqdm(rows, unit="guardian", desc=f"digest {summary.week}", file=sys.stderr, disable=quiet):
        if g["weekly_digest"]:
            job.one(g)
        else:
            job.skipped(g)


def cmd_digest(args: argparse.Namespace) -> int:
    try:
        tz = args.settings.school_zone
        now = args.clock()
        monday = parse_iso_week(args.week) if args.week else last_complete_week(now, tz)
        if monday > last_complete_week(now, tz):
            raise ValueError(
                f"the week {iso_week_name(monday)} has not ended yet in {tz.key}: a digest covers a complete week"
            )
        settings = None if args.dry_run else MailSettings.from_settings(args.settings, check_maildir=True)
        if args.dry_run:
            print(f"Dry run for {iso_week_name(monday)}: nothing is sent or written.")
        summary = run_digest(
            args.settings.database_url,
            monday,
            settings=settings,
            email=args.guardian_email,
            dry_run=args.dry_run,
            quiet=args.quiet,
            config=args.settings,
        )
    except (ValueError, LookupError) as error:
        print(f"weekly-trends digest: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    if args.dry_run:
        c = summary.counts
        print(
            f"Digest {summary.week} (dry run): would send {c['would_send']}, already sent {c['already_sent']}, "
            f"skipped {c['skipped']} (digest turned off), given up {c['gave_up']}, ambiguous {c['ambiguous']}, "
            f"busy {c['busy']}."
        )
        return 0
    print(summary.line())
    for failure in summary.failures:
        print(f"  failed: {failure}", file=sys.stderr)
    return 1 if summary.counts["failed"] else 0
