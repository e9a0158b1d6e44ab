"""`weekly-trends demo-mail` (run by `make run`): a demo invite, digest and alerts, into a local maildir only.

Whatever MAIL_BACKEND says, the demo writes to the maildir (MAILDIR, default ./maildir, git-ignored):
nothing is ever sent to a real address by the demo.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, time

from psycopg.rows import dict_row

from web.connection import connect
from web.mail.transport import Mailer, MailSettings
from web.settings import Settings


def demo_settings(config: Settings, port: int) -> MailSettings:
    """The settings' mail ones, but always the maildir, and links to this port unless PUBLIC_BASE_URL says."""
    return MailSettings.from_settings(
        config.replace(mail_backend="maildir", public_base_url=config.public_base_url or f"http://127.0.0.1:{port}"),
        check_maildir=True,
    )


def cmd_demo_mail(args: argparse.Namespace) -> int:
    from web.isoweek import iso_week_name
    from web.mail.alerts import run_alerts
    from web.mail.digest import last_complete_week, run_digest
    from web.mail.invites import invite
    from web.ops.demo import DEMO_PARENT_EMAIL

    try:
        settings = demo_settings(args.settings, args.port)
    except ValueError as error:
        print(f"weekly-trends demo-mail: {error}", file=sys.stderr)
        return 2
    url = args.settings.database_url
    with connect(args.settings, "weekly-trends-demo-mail", url, row_factory=dict_row) as conn:
        guardian = conn.execute(
            "select id, email, display_name from guardian where email = %s", (DEMO_PARENT_EMAIL,)
        ).fetchone()
        if guardian is None:
            print("No demo school: run `weekly-trends demo-data` first.", file=sys.stderr)
            return 1
        with Mailer(settings) as mailer:
            invite(conn, mailer, settings, guardian, 30)
    monday = last_complete_week(args.clock(), args.settings.school_zone)
    summary = run_digest(url, monday, settings=settings, email=DEMO_PARENT_EMAIL, config=args.settings)
    # The alerts as the hourly job sends them, at noon today in the school's time zone (never in quiet
    # hours): the demo's missing work, each alert once (a second demo-mail finds nothing new).
    zone = args.settings.school_zone
    noon = datetime.combine(args.clock().astimezone(zone).date(), time(12), zone)
    alerts = run_alerts(url, noon, config=args.settings, settings=settings)
    print(
        f"Demo mails (an invite, the digest of {iso_week_name(monday)}: {summary.counts['sent']} sent now, "
        f"{summary.counts['already_sent']} already there; alerts: {alerts.counts['sent']} email(s) now) are in the"
        f" maildir {settings.maildir}/new/"
    )
    print("  Open a file there with any mail program (or `less`); nothing was sent to a real address.")
    return 0
