"""The import: a OneRoster set staged, checked and applied file by file, then the scores derived, in one transaction.

Everything runs in one transaction. Each file is applied in dependency order
(categories, classes, users, line items, results), so a file is validated
against what the import has already written: a result's line item is known
when it is in the database after lineItems.csv. Bad rows are collected; by
default any bad row rolls the whole transaction back (nothing is written),
with --skip-bad-rows the good rows stay. The results finally become
quiz_attempt and assignment_submission rows (derivation.py).

The modules: reader.py (the files, the manifest, CSV reading), staging.py (COPY into temporary tables,
checks, bad rows, the mapping tables' generic writes), steps/ (one module per OneRoster file),
derivation.py (the score tables), this one (the order and the transaction) and cli.py (the command).
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

from web.oneroster.derivation import derive, line_item_kinds
from web.oneroster.reader import MB, CsvSet, InputError, read_category_map, read_manifest
from web.oneroster.staging import KEPT_BAD_ROWS, BadRow, Options, Staging, Summary
from web.oneroster.steps.categories import categories
from web.oneroster.steps.classes import classes
from web.oneroster.steps.course_teachers import course_teachers
from web.oneroster.steps.demographics import demographics
from web.oneroster.steps.enrollments import enrollments
from web.oneroster.steps.line_items import line_items
from web.oneroster.steps.results import results
from web.oneroster.steps.users import users

__all__ = ["KEPT_BAD_ROWS", "BadRow", "BadRowsRefused", "Import", "Options", "Summary", "import_oneroster"]

# The tables the import inserts into with ids from their sequences.
ID_TABLES = ("student_profile", "guardian", "course", "quiz_attempt", "assignment_submission")
# Those it moves past their highest id itself (advance_id_sequence() keeps the five above only).
OWN_ID_TABLES = ("course_work", "enrollment")
# The steps before the line items' kinds, in dependency order (results.csv comes after the kinds).
STEPS = (
    ("categories", categories),
    ("classes", classes),
    ("users", users),
    ("demographics", demographics),
    ("enrollments", enrollments),
    ("enrollments", course_teachers),  # after classes and users: who teaches what (issue 27)
    ("lineItems", line_items),
)


class BadRowsRefused(Exception):
    """Rows failed validation and --skip-bad-rows was not given: the transaction was rolled back."""

    def __init__(self, summary: Summary) -> None:
        super().__init__(f"{summary.bad_row_count} bad row(s)")
        self.summary = summary


class Import(Staging):
    """One import: the files staged, each file's step, the line items' kinds, results.csv, the scores."""

    def run(self) -> Summary:
        from tqdm import tqdm

        names = [
            n
            for n in ("categories", "classes", "roles", "users", "demographics", "enrollments", "lineItems", "results")
            if self.mode(n) != "absent"
        ]
        self.files.check_size([f"{n}.csv" for n in names])
        total = sum(self.files.size(f"{n}.csv") for n in names)
        zone_ok = self.one(
            "select exists (select from pg_timezone_names where name = %(z)s)", {"z": self.options.time_zone}
        )[0]
        if not zone_ok:
            raise InputError(
                f"--time-zone {self.options.time_zone!r} is not a time zone PostgreSQL knows"
                " (an IANA name such as Europe/London)"
            )
        if self.options.category_map:
            read_category_map(self.options.category_map)  # a bad mapping file fails before anything is read
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc="oneroster",
            file=sys.stderr,
            disable=None if self.options.progress else True,
        ) as bar:
            # Staging tables in memory: only possible before the session's first temporary table.
            try:
                with self.conn.transaction():
                    self.x("select set_config('temp_buffers', '256MB', true)")
            except psycopg.errors.InvalidParameterValue:
                pass
            # One import of a source at a time; another source's import runs alongside.
            self.x("select pg_advisory_xact_lock(hashtextextended('weekly-trends oneroster ' || %(source)s, 0))")
            # Ids writers chose (the writer contract allows them) must not be ours to give: each sequence the
            # import takes ids from moves past its table's highest id first (advance_id_sequence(), revision
            # 0014; student_profile, guardian and course also keep theirs ahead by a trigger).
            for table in ID_TABLES:
                self.x(f"select advance_id_sequence('{table}', (select max(id) from {table}))")
            for table in OWN_ID_TABLES:
                self.x(
                    f"select setval(pg_get_serial_sequence('{table}', 'id')::regclass, max(id)) from {table}"
                    f" having max(id) > coalesce(pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id')::regclass), 0)"
                )
            self.create_bad_rows()
            for name in names:
                bar.set_description(f"reading {name}.csv")
                self.stage(name, bar)
            users = self.readers.get("users")
            if users is not None and "role" not in users.present and self.mode("roles") == "absent":
                raise InputError("users.csv: no role column and no roles.csv (OneRoster 1.2 keeps roles in roles.csv)")
            for name, step in STEPS:
                if name in names:
                    bar.set_description(f"applying {name}.csv")
                    step(self)
            line_item_kinds(self)
            if "results" in names:
                bar.set_description("applying results.csv")
                results(self)
            bar.set_description("writing scores")
            derive(self)
            bar.set_description("done")
        self.collect_bad_rows()
        return self.summary


def import_oneroster(conn: psycopg.Connection, path: Path, options: Options) -> Summary:
    """Imports a OneRoster CSV set in one transaction on conn (autocommit).

    Raises InputError (nothing written) for a missing or malformed file or manifest, and
    BadRowsRefused (nothing written) when rows fail validation without options.skip_bad_rows.
    """
    max_bytes = None if options.max_megabytes is None else options.max_megabytes * MB
    with CsvSet(Path(path), max_bytes) as files:
        manifest = read_manifest(files)
        job = Import(conn, files, manifest, options)
        summary = None
        try:
            with conn.transaction():
                summary = job.run()
                if summary.bad_row_count and not options.skip_bad_rows:
                    raise BadRowsRefused(summary)
        except BadRowsRefused:
            summary.changes = {}
            raise
        summary.committed = True
        return summary
