"""Sign-in links by email: `weekly-trends invite`, and the staff page's "send sign-in link" button.

Both mail a token the one way, mail_sign_in_link(), as the digest does: claim (issue the token and
commit), send with no transaction open and no pooled connection held, then record: a message not
sent has its token revoked, so no link the guardian never received stays valid. A refused or unsent
invitation leaves no live token behind, and `--all-without-link` picks that guardian up again on the
next run. (A crash between the commit and that revocation leaves a live token nobody holds: its
value was never stored, and it expires.) The CLI issues and revokes as the owner; the staff page
through staff_issue_guardian_token() and staff_revoke_unsent_guardian_token() (web/staff/pages.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from email.message import EmailMessage

import psycopg
from psycopg.rows import dict_row

from web.auth import hash_token
from web.connection import connect
from web.db import guardian_children, student_guardians
from web.mail.transport import Mailer, MailError, MailSettings, build_message, mask_email, recipient, render
from web.signin import sign_in_link

log = logging.getLogger("weekly_trends.mail")
DEFAULT_DAYS = 30


def invitation(settings: MailSettings, guardian: dict, token: str, days: int) -> EmailMessage:
    """The invitation carrying the link of `token`, in the guardian's language (BadRecipient when no
    message can be addressed to the guardian). A student's own invitation has to_student in `guardian`."""
    subject, text, html = render(
        "invite",
        guardian.get("preferred_language"),
        fallback=settings.language,
        guardian=guardian,
        sign_in_url=sign_in_link(settings.base_url, token),
        days=days,
        to_student=guardian.get("to_student", False),
    )
    return build_message(settings, guardian["email"], subject, text, html, display_name=guardian.get("display_name"))


def mail_sign_in_link(
    settings: MailSettings,
    guardian: dict,
    days: int,
    *,
    claim: Callable[[], str],
    unclaim: Callable[[bytes], None],
    mailer: Mailer | None = None,
) -> None:
    """Mail the guardian a fresh sign-in link: claim, commit, send, record (the module's text).

    claim(): issues the token and commits it, holding no transaction once it returns; unclaim(sha256):
    revokes that token when the message was not sent. mailer: an open one (a run of many), else one
    for this message. Raises MailError (BadRecipient before any token is issued) or the settings'
    ValueError when nothing was sent."""
    recipient(guardian["email"], guardian.get("display_name"))  # a bad address: no token at all
    token = claim()
    try:
        message = invitation(settings, guardian, token, days)
        if mailer is None:
            with Mailer(settings) as own:
                own.send(message)
        else:
            mailer.send(message)
    except (MailError, ValueError):
        unclaim(hash_token(token))  # the link went nowhere: it must not stay valid
        raise


def invite(conn: psycopg.Connection, mailer: Mailer, settings: MailSettings, guardian: dict, days: int) -> None:
    """`weekly-trends invite`'s: mail_sign_in_link() on the CLI's autocommit connection, as the owner."""

    def claim() -> str:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                "select issue_guardian_token(%s, make_interval(days => %s)) as token", (guardian["id"], days)
            ).fetchone()["token"]

    def unclaim(token_hash: bytes) -> None:
        conn.execute(
            "update guardian_token set revoked_at = now() where token_hash = %s and revoked_at is null", (token_hash,)
        )

    if not conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise RuntimeError("invite() needs an autocommit connection outside a transaction: none is held across SMTP")
    mail_sign_in_link(settings, guardian, days, claim=claim, unclaim=unclaim, mailer=mailer)


def access_ended_on(conn: psycopg.Connection, guardian_id: int, student_id: int | None = None) -> str | None:
    """The first day a link of the guardian (to student_id, else to any child) stopped giving access at the
    rights age (guardian_link_states()), or None."""
    row = conn.execute(
        "select min(access_ended_on)::text as since from guardian_link_states(%s)"
        " where state = 'access_ended' and (%s::bigint is null or student_profile_id = %s)",
        (guardian_id, student_id, student_id),
    ).fetchone()
    return row["since"] if isinstance(row, dict) else row[0]


def ended_words(email: str, since: str) -> str:
    return (
        f"The guardian {mask_email(email)}'s access ended on {since}: the student came of age"
        " (WEEKLY_TRENDS_RIGHTS_AGE) and has not shared the record with them, so no link was sent."
    )


def select_guardians(conn: psycopg.Connection, args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """The guardians to invite, and why any the command named gets none (the command then exits 1).
    Whose link gives access is guardian_link_states()'s decision: a restricted link is as none."""
    if args.guardian_email is not None:
        rows = conn.execute(
            "select id, email, display_name, preferred_language from guardian where email = %s", (args.guardian_email,)
        ).fetchall()
        if not rows:
            raise LookupError(f"No guardian with email {mask_email(args.guardian_email)}.")
        if not guardian_children(conn, rows[0]["id"]):
            since = access_ended_on(conn, rows[0]["id"])
            if since is not None:
                raise LookupError(ended_words(args.guardian_email, since))
            # Asked for by name: saying nothing was sent is not enough (the bulk runs count it as skipped).
            raise LookupError(
                f"The guardian {mask_email(args.guardian_email)} has no linked student:"
                " a sign-in link would open an empty page, so none was sent."
            )
        return rows, []
    if args.student_id is not None:
        if not conn.execute("select 1 from student_profile where id = %s", (args.student_id,)).fetchone():
            raise LookupError(f"No student with id {args.student_id}.")
        linked = [g for g in student_guardians(conn, args.student_id) if g["state"] != "restricted"]
        rows = [g for g in linked if g["gives_access"]]
        refused = [
            ended_words(g["email"], access_ended_on(conn, g["id"], args.student_id))
            for g in linked
            if g["state"] == "access_ended"
        ]
        if not linked:
            raise LookupError(f"The student {args.student_id} has no guardian linked.")
        return rows, refused
    return conn.execute(
        """
        select g.id, g.email, g.display_name, g.preferred_language from guardian g
         where not exists (select from guardian_token t
                            where t.guardian_id = g.id and t.revoked_at is null and t.expires_at > now())
         order by g.id
        """
    ).fetchall(), []


def invite_student(conn: psycopg.Connection, settings: MailSettings, student_id: int, days: int) -> None:
    """`invite --student-id N --to-student`: mail the student their own sign-in link (claim, commit, send,
    record, as a guardian's). LookupError when the student is unknown, has no email or may not sign in."""
    student = conn.execute(
        "select id, display_name, email, student_may_sign_in(id) as may from student_profile where id = %s",
        (student_id,),
    ).fetchone()
    if student is None:
        raise LookupError(f"No student with id {student_id}.")
    if student["email"] is None:
        raise LookupError(f"The student {student_id} has no email address (student_profile.email): nothing was sent.")
    if not student["may"]:
        raise LookupError(
            f"The student {student_id} may not sign in (WEEKLY_TRENDS_STUDENT_ACCESS, rights age): nothing was sent."
        )
    recipient_ = {"email": student["email"], "display_name": student["display_name"], "to_student": True}

    def claim() -> str:
        return conn.execute(
            "select issue_student_token(%s, make_interval(days => %s)) as token", (student_id, days)
        ).fetchone()["token"]

    def unclaim(token_hash: bytes) -> None:
        conn.execute("select revoke_unsent_student_token(%s, %s)", (student_id, token_hash))

    mail_sign_in_link(settings, recipient_, days, claim=claim, unclaim=unclaim)


def cmd_invite(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.days < 1:
        print("--days must be at least 1.", file=sys.stderr)
        return 2
    try:
        settings = MailSettings.from_settings(args.settings, check_maildir=True)
    except ValueError as error:
        print(f"weekly-trends invite: {error}", file=sys.stderr)
        return 2
    if args.to_student and args.student_id is None:
        print("--to-student needs --student-id.", file=sys.stderr)
        return 2
    sent = skipped = failed = 0
    with connect(args.settings, "weekly-trends-invite", row_factory=dict_row) as conn:
        if args.to_student:
            try:
                invite_student(conn, settings, args.student_id, args.days)
            except LookupError as error:
                print(error, file=sys.stderr)
                return 1
            except MailError as error:
                print(f"The student's sign-in link could not be sent: {error}", file=sys.stderr)
                return 1
            print(f"Invitation: sent to student {args.student_id}.")
            return 0
        try:
            guardians, refused = select_guardians(conn, args)
        except LookupError as error:
            print(error, file=sys.stderr)
            return 1
        for why in refused:  # named through --student-id, but their access ended: said, and exit 1
            print(why, file=sys.stderr)
        bulk = args.guardian_email is None
        quiet = args.quiet or not bulk
        with Mailer(settings) as mailer:
            for guardian in tqdm(guardians, unit="guardian", desc="invite", file=sys.stderr, disable=quiet):
                if not guardian_children(conn, guardian["id"]):  # the link would open an empty page
                    skipped += 1
                    log.info("invite to %s skipped: no linked student", mask_email(guardian["email"]))
                    continue
                try:
                    invite(conn, mailer, settings, guardian, args.days)
                except MailError as error:  # refused, unreachable, or an address no mail can go to
                    failed += 1
                    log.warning("invite to %s failed: %s", mask_email(guardian["email"]), error)
                    print(f"  failed: {mask_email(guardian['email'])}: {error}", file=sys.stderr)
                    continue
                sent += 1
                log.info("invite sent to %s", mask_email(guardian["email"]))
    print(f"Invitations: sent {sent}, skipped {skipped} (no linked student), failed {failed}.")
    return 1 if failed or refused else 0
