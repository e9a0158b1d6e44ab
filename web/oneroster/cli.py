"""The command: `weekly-trends import oneroster PATH [options]`; exit status 0, 1 (bad rows refused) or 2 (bad input)."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from ..connection import connect
from .importer import BadRowsRefused, Options, Summary, import_oneroster
from .reader import InputError

TIME_ZONE_ENV = "WEEKLY_TRENDS_IMPORT_TIME_ZONE"
SHOWN_BAD_ROWS = 20


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="import data from another system")
    kinds = p.add_subparsers(dest="kind", required=True)
    o = kinds.add_parser("oneroster", help="a OneRoster 1.1 or 1.2 CSV set (folder or .zip) with manifest.csv",
                         description="Imports students, guardians, classes and graded results from a OneRoster CSV"
                                     " set. Idempotent: importing the same files again writes nothing.")
    o.add_argument("path", type=Path, help="the folder or .zip holding manifest.csv and the CSV files")
    o.add_argument("--source", help="name of the sending system, keeping its sourcedIds apart from another's"
                                    " (default: the manifest's source.systemCode, else source.systemName)")
    o.add_argument("--time-zone", "--timezone", dest="time_zone", default=os.environ.get(TIME_ZONE_ENV, "UTC"),
                   help=f"IANA time zone of new students (default ${TIME_ZONE_ENV}, else UTC); a users.csv column"
                        " metadata.timeZone wins")
    o.add_argument("--category-map", type=Path, help="CSV 'category,kind': a category title or sourcedId, and quiz"
                                                     " or assignment (overrides the default title rule)")
    o.add_argument("--skip-bad-rows", action="store_true",
                   help="import the good rows and write the bad ones to the report (default: refuse everything)")
    o.add_argument("--report", type=Path, help="CSV of the bad rows (default: oneroster-bad-rows-<time>.csv here)")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.set_defaults(func=cmd_import_oneroster)


def write_report(path: Path, summary: Summary) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "line", "sourcedId", "reason"])
        for bad in summary.bad_rows:
            writer.writerow([bad.file, bad.line, bad.sourced_id, bad.reason])


def print_bad_rows(summary: Summary, report: Path) -> None:
    for bad in summary.bad_rows[:SHOWN_BAD_ROWS]:
        print(f"  {bad.file} line {bad.line}, sourcedId {bad.sourced_id or '(none)'}: {bad.reason}", file=sys.stderr)
    if len(summary.bad_rows) > SHOWN_BAD_ROWS:
        print(f"  ... and {len(summary.bad_rows) - SHOWN_BAD_ROWS} more", file=sys.stderr)
    print(f"All bad rows: {report}", file=sys.stderr)


def cmd_import_oneroster(args: argparse.Namespace) -> int:
    options = Options(source=args.source, time_zone=args.time_zone, category_map=args.category_map,
                      skip_bad_rows=args.skip_bad_rows, progress=not args.quiet)
    report = args.report or Path(f"oneroster-bad-rows-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.csv")
    try:
        with connect("weekly-trends-import") as conn:
            summary = import_oneroster(conn, args.path, options)
    except InputError as error:
        print(f"Nothing imported: {error}", file=sys.stderr)
        return 2
    except BadRowsRefused as refused:
        write_report(report, refused.summary)
        print(f"Nothing imported: {len(refused.summary.bad_rows)} bad row(s). Fix them, or import the good rows"
              " with --skip-bad-rows.", file=sys.stderr)
        print_bad_rows(refused.summary, report)
        return 1
    except psycopg.Error as error:
        print(f"Nothing imported: the database refused the import ({error.diag.sqlstate}): {error}", file=sys.stderr)
        return 1
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if summary.bad_rows:
        write_report(report, summary)
        print(f"Skipped {len(summary.bad_rows)} bad row(s):", file=sys.stderr)
        print_bad_rows(summary, report)
    read = ", ".join(f"{n}.csv {c:,}" for n, c in summary.rows_read.items())
    print(f"OneRoster {summary.version} from source {summary.source!r}: read {read or 'no files'}.")
    for entity, c in summary.changes.items():
        if any(c.values()):
            print(f"  {entity}: {c['inserted']:,} inserted, {c['updated']:,} updated, {c['deleted']:,} deleted")
    rows = "row" if summary.written == 1 else "rows"
    print(f"{summary.written:,} {rows} written." + (" Nothing changed." if summary.written == 0 else ""))
    return 0
