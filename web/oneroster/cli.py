"""The command: `weekly-trends import oneroster PATH [options]`; exit status 0, 1 (bad rows refused) or 2 (bad input)."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from web.connection import connect
from web.oneroster.importer import BadRowsRefused, import_oneroster
from web.oneroster.reader import InputError
from web.oneroster.staging import Options, Summary
from web.settings import IMPORT_MAX_MB_RANGE as MAX_MB_RANGE

TIME_ZONE_ENV = "WEEKLY_TRENDS_IMPORT_TIME_ZONE"


def megabytes(text: str) -> int:
    """A size limit in MB, 1 to 1,048,576 (argparse turns the ValueError into exit status 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MAX_MB_RANGE[0] <= value <= MAX_MB_RANGE[1]:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of MB from {MAX_MB_RANGE[0]} to {MAX_MB_RANGE[1]:,}, got {text!r}"
        )
    return value


SHOWN_BAD_ROWS = 20


def write_report(path: Path, summary: Summary) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "line", "sourcedId", "reason"])
        for bad in summary.bad_rows:
            writer.writerow([bad.file, bad.line, bad.sourced_id, bad.reason])


def print_bad_rows(summary: Summary, report: Path) -> None:
    for bad in summary.bad_rows[:SHOWN_BAD_ROWS]:
        print(f"  {bad.file} line {bad.line}, sourcedId {bad.sourced_id or '(none)'}: {bad.reason}", file=sys.stderr)
    if summary.bad_row_count > SHOWN_BAD_ROWS:
        print(f"  ... and {summary.bad_row_count - SHOWN_BAD_ROWS:,} more", file=sys.stderr)
    if summary.bad_row_count > len(summary.bad_rows):
        print(f"Bad rows: {report} (the first {len(summary.bad_rows):,} of them)", file=sys.stderr)
    else:
        print(f"All bad rows: {report}", file=sys.stderr)


def cmd_import_oneroster(args: argparse.Namespace) -> int:
    options = Options(
        source=args.source,
        time_zone=args.time_zone or args.settings.import_time_zone,
        category_map=args.category_map,
        skip_bad_rows=args.skip_bad_rows,
        progress=not args.quiet,
        max_megabytes=args.max_size or args.settings.import_max_mb,
        allow_erased=getattr(args, "allow_erased", False),
    )
    report = args.report or Path(f"oneroster-bad-rows-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv")
    try:
        with connect(args.settings, "weekly-trends-import") as conn:
            summary = import_oneroster(conn, args.path, options)
    except InputError as error:
        print(f"Nothing imported: {error}", file=sys.stderr)
        return 2
    except BadRowsRefused as refused:
        write_report(report, refused.summary)
        print(
            f"Nothing imported: {refused.summary.bad_row_count:,} bad row(s). Fix them, or import the good rows"
            " with --skip-bad-rows.",
            file=sys.stderr,
        )
        print_bad_rows(refused.summary, report)
        return 1
    except psycopg.Error as error:
        print(f"Nothing imported: the database refused the import ({error.diag.sqlstate}): {error}", file=sys.stderr)
        return 1
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if summary.bad_row_count:
        write_report(report, summary)
        print(f"Skipped {summary.bad_row_count:,} bad row(s):", file=sys.stderr)
        print_bad_rows(summary, report)
    read = ", ".join(f"{n}.csv {c:,}" for n, c in summary.rows_read.items())
    print(f"OneRoster {summary.version} from source {summary.source!r}: read {read or 'no files'}.")
    for entity, c in summary.changes.items():
        if any(c.values()):
            print(f"  {entity}: {c['inserted']:,} inserted, {c['updated']:,} updated, {c['deleted']:,} deleted")
    if summary.erased_students or summary.erased_results:
        print(
            f"{summary.erased_students:,} erased student(s) not imported ({summary.erased_results:,} of their"
            " results skipped): weekly-trends erase removed them; --allow-erased brings them back."
        )
    if summary.left_students:
        print(
            f"{summary.left_students:,} student(s) left the source: kept as they were, marked left; weekly-trends"
            " purge erases them after WEEKLY_TRENDS_LEFT_GRACE."
        )
    rows = "row" if summary.written == 1 else "rows"
    print(f"{summary.written:,} {rows} written." + (" Nothing changed." if summary.written == 0 else ""))
    return 0
