"""`weekly-trends export`, `erase` and `purge`: the family's rights over the record (issue 25 items 5-7).

Each is one SQL call (db/functions/655_family_record.sql, 665_erasure_and_retention.sql) in one
transaction: operator_export_json(), erase_student(), purge_family_record(). docs/privacy.md says what
each keeps and deletes.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

import psycopg

from web.connection import connect

CONFIRM_WORD = "erase"


def operator_name(args: argparse.Namespace) -> str:
    """Who runs the command, for the record and the certificate: --by, else the system user."""
    if args.by:
        return args.by
    try:
        return f"{getpass.getuser()} (weekly-trends CLI)"
    except (KeyError, OSError):
        return "weekly-trends CLI"


def cmd_export(args: argparse.Namespace) -> int:
    s = args.settings
    with connect(s, "weekly-trends-cli") as conn:
        doc = conn.execute(
            "select operator_export_json(%s, %s, %s, %s, %s)::text",
            (
                args.student_id,
                operator_name(args),
                s.class_average_min_students,
                s.alert_drop_points,
                s.alert_min_scores,
            ),
        ).fetchone()[0]
    if doc is None:
        print(f"No student with id {args.student_id}.", file=sys.stderr)
        return 1
    if args.out is None:
        print(doc)
    else:
        args.out.write_text(doc + "\n", encoding="utf-8")
        print(f"Wrote the export of student {args.student_id} to {args.out}.", file=sys.stderr)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    reason = args.reason.strip()
    if not reason or len(reason) > 1000:
        print("--reason must be 1 to 1000 characters (e.g. the request's reference).", file=sys.stderr)
        return 2
    with connect(args.settings, "weekly-trends-cli") as conn:
        if not args.yes:
            if not conn.execute("select 1 from student_profile where id = %s", (args.student_id,)).fetchone():
                print(f"No student with id {args.student_id}.", file=sys.stderr)
                return 1
            answer = input(
                f"This deletes student {args.student_id} and every row about them, for good."
                f" Type '{CONFIRM_WORD}' to go on: "
            )
            if answer.strip().lower() != CONFIRM_WORD:
                print("Nothing erased.", file=sys.stderr)
                return 1
        try:
            certificate = conn.execute(
                "select erase_student(%s, %s, %s)::text", (args.student_id, reason, operator_name(args))
            ).fetchone()[0]
        except psycopg.errors.NoDataFound:
            print(f"No student with id {args.student_id}.", file=sys.stderr)
            return 1
    if args.certificate is not None:
        args.certificate.write_text(certificate + "\n", encoding="utf-8")
    print(certificate)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    s = args.settings
    with connect(s, "weekly-trends-cli") as conn:
        rows = conn.execute(
            "select what, rows from purge_family_record(%s::interval, %s::interval, %s, %s, %s)",
            (s.retention, s.left_grace, args.clock(), args.dry_run, operator_name(args)),
        ).fetchall()
    kept = f"retention {s.retention}" if s.retention else "retention unset: scores kept"
    heading = "Dry run, nothing deleted; would delete" if args.dry_run else "Deleted"
    print(f"{heading} ({kept}; students who left, or without scores, after {s.left_grace}):")
    for what, count in rows:
        print(f"  {what}: {count:,}")
    if not any(count for _, count in rows):
        print("  nothing")
    return 0


def add_commands(sub) -> None:
    """The three subcommands, on build_parser()'s subparsers."""
    p = sub.add_parser(
        "export",
        help="write everything held about a student as one JSON document (stdout, or --out)",
        description="The same document a guardian downloads (docs/privacy.md); recorded in the child's record.",
    )
    p.add_argument("--student-id", type=int, required=True)
    p.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    p.add_argument("--by", help="who runs it, for the child's record (default: the system user)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "erase",
        help="delete every row about a student, in one transaction; prints and keeps a deletion certificate",
        description="Deletes the student, their scores, weekly rows, links, import mappings and record entries,"
        " and each guardian left with no child; recomputes the class view; keeps a tombstone so a later"
        " OneRoster import does not bring them back (docs/privacy.md).",
    )
    p.add_argument("--student-id", type=int, required=True)
    p.add_argument("--reason", required=True, help="why (e.g. the request's reference); kept in the certificate")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--by", help="who runs it, for the certificate (default: the system user)")
    p.add_argument("--certificate", type=Path, help="also write the certificate (JSON) to this file")
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser(
        "purge",
        help="apply the retention policy (WEEKLY_TRENDS_RETENTION, WEEKLY_TRENDS_LEFT_GRACE); idempotent",
        description="Deletes scores, weekly rows and deliveries of weeks older than WEEKLY_TRENDS_RETENTION"
        " (unset: kept), record entries as old, tokens expired over 30 days ago, and erases students who left"
        " (student_profile.left_at: the OneRoster import marks them) or have no scores, after"
        " WEEKLY_TRENDS_LEFT_GRACE (default 90 days). Prints what it deleted.",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be deleted; delete nothing")
    p.add_argument("--by", help="who runs it, for the certificates (default: the system user)")
    p.set_defaults(func=cmd_purge)
