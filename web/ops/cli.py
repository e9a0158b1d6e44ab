"""`weekly-trends`: operate the app and its database (migrations, serving, demo data, tokens, rebuilds, checks)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from web.connection import connect
from web.isoweek import iso_week_name, monday_of
from web.ops.embedded import database_url
from web.settings import SettingError, Settings, cores
from web.signin import sign_in_link


def migrate(url: str, revision: str = "head") -> None:
    """alembic upgrade, with the migrations of the db package wherever it is (no alembic.ini needed)."""
    from alembic import command

    from db.migrations import alembic_config

    command.upgrade(alembic_config(url), revision)


def cmd_migrate(args: argparse.Namespace) -> int:
    from alembic.util import CommandError

    try:
        migrate(args.settings.database_url, args.revision)
    except CommandError as error:  # e.g. a revision that does not exist
        print(f"weekly-trends migrate: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_downgrade(args: argparse.Namespace) -> int:
    from alembic import command
    from alembic.util import CommandError

    from db.migrations import alembic_config

    try:
        command.downgrade(alembic_config(args.settings.database_url), args.revision)
    except CommandError as error:
        print(f"weekly-trends downgrade: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from web.ops.demo import DEMO_PARENT_EMAIL, DEMO_STAFF_EMAIL, demo_staff_member, demo_student_ids, load_demo_school

    with connect(args.settings, "weekly-trends-cli") as conn:
        created = load_demo_school(conn)
        token = conn.execute(
            "select issue_guardian_token(id, '30 days') from guardian where email = %s", (DEMO_PARENT_EMAIL,)
        ).fetchone()[0]
        student_id = demo_student_ids(conn)[0]
        staff_token = conn.execute("select issue_staff_token(%s, '1 day')", (demo_staff_member(conn),)).fetchone()[0]
    base = f"http://127.0.0.1:{args.port}"
    print("Demo school " + ("loaded." if created else "already present."))
    print(f"Demo parent {DEMO_PARENT_EMAIL}, token valid 30 days. Once the server below is up, open in a browser:")
    print(f"  {sign_in_link(base, token)}")
    print("or ask the API:")
    print(f"  curl -H 'Authorization: Bearer {token}' {base}/api/v1/students/{student_id}/weekly-trend")
    print(f"Demo staff {DEMO_STAFF_EMAIL}, token valid 1 day:")
    print(f"  {sign_in_link(base, staff_token, '/staff')}")
    return 0


def issue_token(
    settings: Settings, function: str, table: str, email: str, days: int, link_prefix: str | None = None
) -> int:
    with connect(settings, "weekly-trends-cli") as conn:
        row = conn.execute(
            sql.SQL("select {}(id, make_interval(days => %s)) from {} where email = %s").format(
                sql.Identifier(function), sql.Identifier(table)
            ),
            (days, email),
        ).fetchone()
    if row is None:
        print(f"No {table.replace('_', ' ')} with email {email}.", file=sys.stderr)
        return 1
    print(row[0])
    if link_prefix is not None:  # the sign-in link too: PUBLIC_BASE_URL{prefix}/login?token=…
        from web.mail.transport import DEFAULT_BASE_URL

        print(sign_in_link(settings.public_base_url or DEFAULT_BASE_URL, row[0], link_prefix))
    return 0


def cmd_issue_token(args: argparse.Namespace) -> int:
    """The token, then the sign-in link (PUBLIC_BASE_URL/login?token=…) on a line of its own."""
    return issue_token(args.settings, "issue_guardian_token", "guardian", args.guardian_email, args.days, "")


def cmd_issue_staff_token(args: argparse.Namespace) -> int:
    return issue_token(args.settings, "issue_staff_token", "staff_member", args.email, args.days)


def cmd_add_staff(args: argparse.Namespace) -> int:
    """A staff member by email (table staff_member), idempotent: an existing one keeps its id, and its name
    changes only when --name is given. Then `issue-staff-token --email` gives them a sign-in token."""
    email = args.email.strip()
    name = args.name.strip() if args.name is not None else None
    try:
        with connect(args.settings, "weekly-trends-cli") as conn:
            created = conn.execute(
                "insert into staff_member (email, display_name) values (%s, %s)"
                " on conflict (email) do nothing returning id",
                (email, name),
            ).fetchone()
            if created is None and name is not None:
                conn.execute("update staff_member set display_name = %s where email = %s", (name, email))
            staff_id = conn.execute("select id from staff_member where email = %s", (email,)).fetchone()[0]
    except psycopg.errors.CheckViolation as error:
        what = "email" if "email" in (error.diag.constraint_name or "") else "name"
        print(f"weekly-trends add-staff: not a usable {what}: {error.diag.message_primary}", file=sys.stderr)
        return 2
    print(f"Staff member {staff_id} {'added' if created else 'already present'}: {email}.")
    return 0


def print_drift(rows: list[tuple]) -> None:
    print(f"{'student':>8} {'week':>8}  stored -> expected")
    for student_id, week_start, stored, expected in rows:
        print(f"{student_id:>8} {iso_week_name(week_start)}  {stored} -> {expected}")


def cmd_backfill(args: argparse.Namespace) -> int:
    """The seed's backfill command, over refresh_weekly_performance() and check_weekly_performance(): the
    --weeks ISO weeks up to this one in the student's time zone (all students: the school's)."""
    if args.weeks < 1:
        print("--weeks must be at least 1.", file=sys.stderr)
        return 2
    with connect(args.settings, "weekly-trends-cli") as conn:
        zone = args.settings.school_time_zone
        if args.student_id is not None:
            try:
                student_ids(conn, args.student_id)
            except LookupError as error:
                print(error, file=sys.stderr)
                return 1
            zone = conn.execute("select time_zone from student_profile where id = %s", (args.student_id,)).fetchone()[0]
        # This week is the student's (else the school's, WEEKLY_TRENDS_SCHOOL_TIME_ZONE), not the host's.
        today = args.clock().astimezone(ZoneInfo(zone)).date()
        since = monday_of(today) - timedelta(weeks=args.weeks - 1)
        if args.dry_run:
            rows = conn.execute(
                "select student_profile_id, week_start_date, stored, expected"
                "  from check_weekly_performance(%s) where week_start_date >= %s",
                (args.student_id, since),
            ).fetchall()
            print(f"Dry run: {len(rows)} weekly row(s) since {since} would change.")
            if rows:
                print_drift(rows)
            return 0
        written = conn.execute("select refresh_weekly_performance(%s, %s)", (args.student_id, since)).fetchone()[0]
    print(f"Rebuilt the weeks since {since}: {written} aggregate row(s) written.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from web.ops.serve import serve

    serve(args.settings, args.bind, args.workers, args.threads, args.timeout, args.max_requests, args.pid)
    return 0


def student_ids(conn: psycopg.Connection, student_id: int | None) -> list[int]:
    if student_id is None:
        return [row[0] for row in conn.execute("select id from student_profile order by id")]
    if not conn.execute("select 1 from student_profile where id = %s", (student_id,)).fetchone():
        raise LookupError(f"No student with id {student_id}.")
    return [student_id]


BATCH_ATTEMPTS = 5


def refresh_batch(conn: psycopg.Connection, batch: list[int], since: date | None) -> int:
    """One transaction for the batch: its students' locks end with it, so writers wait a batch at most.

    A writer whose foreign-key checks lock students out of id order can deadlock with the
    batch's FOR UPDATE locks; the batch is then rolled back and run again.
    """
    attempt = 1
    while True:
        try:
            with conn.transaction():
                return sum(
                    conn.execute(
                        "select refresh_weekly_performance(p_student_profile_id => %s, p_since => %s,"
                        " p_refresh_class_view => false)",
                        (sid, since),
                    ).fetchone()[0]
                    for sid in batch
                )
        except psycopg.errors.DeadlockDetected:
            if attempt == BATCH_ATTEMPTS:
                raise
            attempt += 1


def cmd_refresh(args: argparse.Namespace) -> int:
    """Rebuild in batches of students, each batch its own short transaction, then the class view once
    (--class-view: only the class view, the nightly job's)."""
    from tqdm import tqdm

    if args.class_view:
        if args.student_id is not None or args.since is not None:
            print("--class-view refreshes the whole class view: no --student-id or --since.", file=sys.stderr)
            return 2
        with connect(args.settings, "weekly-trends-cli") as conn:
            conn.execute("select refresh_course_weekly_performance()")
        print("Class view refreshed.")
        return 0
    if args.batch_size < 1:
        print("--batch-size must be at least 1.", file=sys.stderr)
        return 2
    written = 0
    with connect(args.settings, "weekly-trends-cli") as conn:
        try:
            ids = student_ids(conn, args.student_id)
        except LookupError as error:
            print(error, file=sys.stderr)
            return 1
        with tqdm(total=len(ids), unit="student", desc="refresh", file=sys.stderr, disable=args.quiet) as bar:
            for start in range(0, len(ids), args.batch_size):
                batch = ids[start : start + args.batch_size]
                written += refresh_batch(conn, batch, args.since)
                bar.update(len(batch))
        conn.execute("select refresh_course_weekly_performance()")
    print(f"Refreshed {len(ids)} student(s): {written} aggregate row(s) written; class view refreshed.")
    return 0


def cmd_stop_db(args: argparse.Namespace) -> int:
    from web.ops.embedded import stop_server

    try:
        for line in stop_server(args.settings.data_dir, delete=args.delete):
            print(line)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """The weekly rows against the source rows (check_weekly_performance()), then the class view
    (check_class_view(): unpopulated, or not refreshed within --class-view-max-age hours)."""
    if args.class_view_max_age <= 0:
        print("--class-view-max-age must be above 0 hours.", file=sys.stderr)
        return 2
    with connect(args.settings, "weekly-trends-cli") as conn:
        rows = conn.execute(
            "select student_profile_id, week_start_date, stored, expected from check_weekly_performance(%s)",
            (args.student_id,),
        ).fetchall()
        problems = conn.execute(
            "select problem, detail from check_class_view(%s * interval '1 hour')", (args.class_view_max_age,)
        ).fetchall()
    if not rows:
        print("No drift: every weekly row matches the source rows.")
    else:
        print(f"{len(rows)} weekly row(s) drifted from the source rows:")
        print_drift(rows)
        print("Repair with: weekly-trends refresh [--student-id N]")
    if not problems:
        print(f"Class view: populated and refreshed within the last {args.class_view_max_age:g} hours.")
    for problem, detail in problems:
        print(f"Class view {problem}: {detail}.")
    if problems:
        print("Repair with: weekly-trends refresh --class-view")
    return 1 if rows or problems else 0


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def school_hour(raw: str) -> tuple[int, int]:
    """--at 'Mon 07': (ISO weekday - 1, hour)."""
    parts = raw.strip().lower().split()
    if len(parts) == 2 and parts[0][:3] in WEEKDAYS and parts[1].isdigit() and 0 <= int(parts[1]) <= 23:
        return WEEKDAYS.index(parts[0][:3]), int(parts[1])
    raise argparse.ArgumentTypeError(f"not a weekday and an hour such as 'Mon 07': {raw!r}")


def cmd_digest(args: argparse.Namespace) -> int:
    """The digest; with --at 'Mon 07' only when it is that weekday and hour in the school's time zone
    (WEEKLY_TRENDS_SCHOOL_TIME_ZONE), else nothing and exit status 0: cron runs it hourly in the server's
    time, and the school's time zone (its summer time included) is decided here, not by CRON_TZ."""
    from web.mail import digest

    if args.at is not None:
        now = args.clock().astimezone(args.settings.school_zone)
        if (now.weekday(), now.hour) != args.at:
            return 0
    return digest.cmd_digest(args)


def since_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date as YYYY-MM-DD: {raw!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and option of `weekly-trends`, declared here; each runs a cmd_* function (this
    module's, or its job's: web/mail/, web/ops/demo_mail.py, web/oneroster/cli.py)."""
    from web.mail import alerts, invites
    from web.oneroster import cli as oneroster_cli
    from web.oneroster.reader import DEFAULT_MAX_MEGABYTES
    from web.oneroster.staging import KEPT_BAD_ROWS
    from web.ops import demo_mail, privacy

    parser = argparse.ArgumentParser(prog="weekly-trends", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="alembic upgrade (DATABASE_URL)")
    p.add_argument("revision", nargs="?", default="head")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("downgrade", help="alembic downgrade to REVISION (rolling back a release: docs/operations.md)")
    p.add_argument("revision", help="the revision to go back to, e.g. 0013")
    p.set_defaults(func=cmd_downgrade)

    p = sub.add_parser("demo-data", help="load the demo school (once) and print a demo token")
    p.add_argument("--port", type=int, default=5000, help="port shown in the printed curl line")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("issue-token", help="issue a guardian token (printed once), and its sign-in link")
    p.add_argument("--guardian-email", required=True)
    p.add_argument("--days", type=int, default=90)
    p.set_defaults(func=cmd_issue_token)

    p = sub.add_parser("issue-staff-token", help="issue a staff token (printed once) for the staff pages")
    p.add_argument("--email", required=True, help="the staff member's email (table staff_member)")
    p.add_argument("--days", type=int, default=30)
    p.set_defaults(func=cmd_issue_staff_token)

    p = sub.add_parser("add-staff", help="add a staff member (idempotent), then issue-staff-token --email")
    p.add_argument("--email", required=True, help="their email, unique among staff members")
    p.add_argument("--name", help="the name shown on the staff pages (kept when omitted)")
    p.set_defaults(func=cmd_add_staff)

    p = sub.add_parser("backfill", help="rebuild weekly rows from the source rows")
    p.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    p.add_argument("--student-id", type=int)
    p.add_argument("--weeks", type=int, default=12, help="how many ISO weeks back, this one included (default 12)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("serve", help="serve the app with gunicorn (DATABASE_URL)")
    p.add_argument(
        "--bind",
        default=f"127.0.0.1:{os.environ.get('PORT', '8000')}",
        help="address:port (default 127.0.0.1:$PORT or 8000)",
    )
    p.add_argument("--workers", type=int, help=f"worker processes (default cores + 1 = {cores() + 1})")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    p.add_argument("--timeout", type=int, default=30, help="seconds before a silent worker is restarted (default 30)")
    p.add_argument(
        "--max-requests",
        type=int,
        default=10_000,
        help="restart a worker after about this many requests (default 10000; 0: never)",
    )
    p.add_argument("--pid", metavar="FILE", help='write the master\'s pid there (kill -HUP "$(cat FILE)": roll-out)')
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("refresh", help="rebuild the weekly rows from the source rows, in batches, with a progress bar")
    p.add_argument("--student-id", type=int, help="one student (default: all)")
    p.add_argument("--since", type=since_date, help="only the ISO weeks from this date's week on (YYYY-MM-DD)")
    p.add_argument("--batch-size", type=int, default=100, help="students per transaction (default 100)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--class-view", action="store_true", help="only the class view (nightly; also fills it after a restore)"
    )
    p.set_defaults(func=cmd_refresh)

    p = sub.add_parser("stop-db", help="stop the embedded server if it runs (never starts one)")
    p.add_argument("--delete", action="store_true", help="then delete its data directory")
    p.set_defaults(func=cmd_stop_db, needs_database=False)

    p = sub.add_parser("invite", help="mail guardians a fresh sign-in link (PUBLIC_BASE_URL/login?token=…)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--guardian-email", help="one guardian")
    who.add_argument("--all-without-link", action="store_true", help="every guardian without a live token")
    who.add_argument("--student-id", type=int, help="the guardians of this student")
    p.add_argument(
        "--days",
        type=int,
        default=invites.DEFAULT_DAYS,
        help=f"how long the link works (default {invites.DEFAULT_DAYS})",
    )
    p.add_argument(
        "--to-student",
        action="store_true",
        help="with --student-id: mail the student their own sign-in link (student_profile.email)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=invites.cmd_invite)

    p = sub.add_parser(
        "digest",
        help="send the weekly household digest (one email per guardian per ISO week, exactly once)",
        description="Send each guardian the digest of an ISO week (default: the last complete week in "
        "WEEKLY_TRENDS_SCHOOL_TIME_ZONE). Reruns send only what is missing; see docs/mail.md.",
    )
    p.add_argument("--week", help="the ISO week as YYYY-Www (default: the last complete week)")
    p.add_argument("--dry-run", action="store_true", help="list who would get it; send and write nothing")
    p.add_argument("--guardian-email", help="only this guardian")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--at",
        type=school_hour,
        metavar="'DAY HH'",
        help="run only at this weekday and hour of the school's time zone, e.g. 'Mon 07' (cron: hourly)",
    )
    p.set_defaults(func=cmd_digest)

    p = sub.add_parser(
        "alerts",
        help="mail each household its new alerts (the kinds each family chose; from cron, hourly)",
        description="Send each guardian one email listing every new alert of every linked child, each alert "
        "once ever; nothing between 21:00 and 07:00 in WEEKLY_TRENDS_SCHOOL_TIME_ZONE (held to the next run). "
        "See docs/mail.md.",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be sent; send and write nothing")
    p.set_defaults(func=alerts.cmd_alerts)

    p = sub.add_parser("demo-mail", help="write a demo invite and a demo digest to the local maildir (make run)")
    p.add_argument("--port", type=int, default=5000, help="port of the links (default 5000)")
    p.set_defaults(func=demo_mail.cmd_demo_mail)

    p = sub.add_parser("check", help="list drifted weeks and class-view problems (exit status 1 when any)")
    p.add_argument("--student-id", type=int, help="one student (default: all)")
    p.add_argument(
        "--class-view-max-age",
        type=float,
        default=36,
        help="hours since the class view's last refresh before it counts as stale (default 36)",
    )
    p.set_defaults(func=cmd_check)

    # weekly-trends export / erase / purge (docs/privacy.md)
    privacy.add_commands(sub)

    # weekly-trends import oneroster PATH (docs/oneroster.md)
    p = sub.add_parser("import", help="import data from another system")
    kinds = p.add_subparsers(dest="kind", required=True)
    o = kinds.add_parser(
        "oneroster",
        help="a OneRoster 1.1 or 1.2 CSV set (folder or .zip) with manifest.csv",
        description="Imports students, guardians, classes and graded results from a OneRoster CSV"
        " set. Idempotent: importing the same files again writes nothing.",
    )
    o.add_argument("path", type=Path, help="the folder or .zip holding manifest.csv and the CSV files")
    o.add_argument(
        "--source",
        help="name of the sending system, keeping its sourcedIds apart from another's"
        " (default: the manifest's source.systemCode, else source.systemName)",
    )
    o.add_argument(
        "--time-zone",
        "--timezone",
        dest="time_zone",
        default=None,
        help=f"IANA time zone of new students (default ${oneroster_cli.TIME_ZONE_ENV}, else UTC); a users.csv column"
        " metadata.timeZone wins",
    )
    o.add_argument(
        "--category-map",
        type=Path,
        help="CSV 'category,kind': a category title or sourcedId, and quiz"
        " or assignment (overrides the default title rule)",
    )
    o.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="import the good rows and write the bad ones to the report (default: refuse everything)",
    )
    o.add_argument(
        "--report",
        type=Path,
        help=f"CSV of the bad rows, the first {KEPT_BAD_ROWS:,} of them (default: oneroster-bad-rows-<time>.csv here)",
    )
    o.add_argument(
        "--max-size",
        type=oneroster_cli.megabytes,
        metavar="MB",
        help=f"refuse (exit 2) a set whose files to read hold more than MB megabytes uncompressed"
        f" (default $WEEKLY_TRENDS_IMPORT_MAX_MB, else {DEFAULT_MAX_MEGABYTES:,})",
    )
    o.add_argument(
        "--allow-erased",
        action="store_true",
        help="import students erased before (weekly-trends erase) again, and forget their tombstones",
    )
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.set_defaults(func=oneroster_cli.cmd_import_oneroster)
    return parser


def main(argv: list[str] | None = None, *, clock: Callable[[], datetime] | None = None) -> int:
    """The command line; every setting is checked first (exit status 2 and a message naming the bad one),
    then passed to the command as args.settings. clock: now (tests pass a fixed one)."""
    args = build_parser().parse_args(argv)
    try:
        args.settings = Settings.load()
    except SettingError as error:
        print(f"weekly-trends: {error}", file=sys.stderr)
        return 2
    if getattr(args, "needs_database", True) and args.settings.database_url is None:
        # No DATABASE_URL: with WEEKLY_TRENDS_EMBEDDED_DB=1 only (development), the embedded server's
        # database, started here once (before `serve` forks); else a message and exit status 2.
        try:
            args.settings = args.settings.replace(database_url=database_url(args.settings))
        except SettingError as error:
            print(f"weekly-trends: {error}", file=sys.stderr)
            return 2
    args.clock = clock or (lambda: datetime.now(UTC))
    try:
        return args.func(args)
    except psycopg.errors.InsufficientPrivilege as error:
        # e.g. digest or check as the app's role: which role runs what is in docs/operations.md.
        print(
            f"weekly-trends {args.command}: the database role of DATABASE_URL may not do this"
            f" ({error.diag.message_primary}). Run it as the role docs/operations.md names for it"
            ' ("Which role runs what"), usually the owner.',
            file=sys.stderr,
        )
        return 1
    except psycopg.OperationalError as error:
        print(f"weekly-trends {args.command}: the database cannot be reached: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
