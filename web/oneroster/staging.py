"""Generic staging: each file COPYed into a temporary table, its rows checked in SQL, bad rows collected.

Staging is the state of one import (its connection, options, summary and timings) and the statements
every per-file step (web/oneroster/steps/) is built from: stage() COPYs a file into stg_<file>;
checked() gives each staged row the reason it is bad (null: good) in v_<file> and collects the bad ones
in bad_row; leaving() and upsert_mirror() write a file's mapping table (what the file takes away, then
what it adds or changes). Nothing here knows a particular file's columns beyond reader.FILES.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from web.oneroster.reader import DEFAULT_MAX_MEGABYTES, FILES, CsvSet, FileReader, InputError, Manifest

# Characters no name or title may hold (the schema's name constraints, revision 0014): C0 with tab,
# CR and LF, DEL, C1, U+2028 and U+2029. A row with one is a bad row, never imported.
CONTROL_CHARACTERS = "[\x01-\x1f\x7f-\x9f\u2028\u2029]"
# Bad rows kept for the report and the summary: the first ones (by file and line); the others are counted.
KEPT_BAD_ROWS = 1000


@dataclass
class Options:
    source: str | None = None  # the sending system's name; default the manifest's source.systemCode
    time_zone: str = "UTC"  # new students' time zone, unless users.csv has metadata.timeZone
    category_map: Path | None = None  # CSV: category,kind
    skip_bad_rows: bool = False
    progress: bool = True
    max_megabytes: int | None = DEFAULT_MAX_MEGABYTES  # the most the files to read may hold uncompressed
    allow_erased: bool = False  # import students erased before (their tombstones forgotten)


@dataclass
class BadRow:
    file: str
    line: int
    sourced_id: str
    reason: str


@dataclass
class Summary:
    source: str
    version: str
    modes: dict[str, str]
    rows_read: dict[str, int] = field(default_factory=dict)
    # entity -> {"inserted": n, "updated": n, "deleted": n}
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)  # the first KEPT_BAD_ROWS of them
    bad_row_count: int = 0  # all of them
    warnings: list[str] = field(default_factory=list)
    committed: bool = False
    erased_students: int = 0  # students of the set erased before, not imported (no --allow-erased)
    erased_results: int = 0  # their results, skipped likewise
    left_students: int = 0  # students this import marked as left (kept until the purge erases them)
    timings: list[tuple[float, str]] = field(default_factory=list)  # (seconds, statement), for the benchmark

    @property
    def written(self) -> int:
        return sum(sum(c.values()) for c in self.changes.values())

    def count(self, entity: str, what: str, n: int) -> None:
        bucket = self.changes.setdefault(entity, {"inserted": 0, "updated": 0, "deleted": 0})
        bucket[what] += max(n, 0)


SOURCE_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")  # only ever a parameter, never an identifier


class Staging:
    """One import's state and the generic statements its per-file steps are made of."""

    def __init__(self, conn: psycopg.Connection, files: CsvSet, manifest: Manifest, options: Options) -> None:
        self.conn = conn
        self.files = files
        self.manifest = manifest
        self.options = options
        source = options.source or manifest.system_code or manifest.system_name or "default"
        if not SOURCE_NAME.match(source):
            raise InputError(f"source name {source!r}: 1 to 100 characters, no control characters (give --source)")
        self.summary = Summary(source, manifest.version, dict(manifest.modes), warnings=list(manifest.warnings))
        self.readers: dict[str, FileReader] = {}
        # Client-side binding: parameters inside CREATE TABLE AS and DDL, quoted by psycopg.
        self.cur = psycopg.ClientCursor(conn)
        self.seq: dict[str, str] = {}  # the score tables' id sequences (derivation.sequences())
        self.timings = self.summary.timings  # (seconds, statement): where an import spends its time

    # -- helpers ---------------------------------------------------------------------------------------

    def params(self, params: dict | None = None) -> dict:
        """The import's parameters (%(source)s, %(control)s) with a statement's own."""
        return {"source": self.summary.source, "control": CONTROL_CHARACTERS, **(params or {})}

    def x(self, query: str, params: dict | None = None) -> int:
        """Runs one statement with the import's parameters; returns its row count."""
        started = time.perf_counter()
        rowcount = self.cur.execute(query, self.params(params)).rowcount
        self.timings.append((time.perf_counter() - started, " ".join(query.split())[:100]))
        return rowcount

    def one(self, query: str, params: dict | None = None):
        started = time.perf_counter()
        row = self.cur.execute(query, self.params(params)).fetchone()
        self.timings.append((time.perf_counter() - started, " ".join(query.split())[:100]))
        return row

    def mode(self, name: str) -> str:
        return self.manifest.modes[name]

    def bulk(self, name: str) -> bool:
        return self.mode(name) == "bulk"

    # -- staging ---------------------------------------------------------------------------------------

    def stage(self, name: str, bar) -> None:
        reader = FileReader(name, self.files)
        self.readers[name] = reader
        columns = [s[0] for s in FILES[name]]
        table = sql.Identifier(f"stg_{name.lower()}")
        self.conn.execute(
            sql.SQL("create temp table {} (line_no integer not null, problem text, {}) on commit drop").format(
                table, sql.SQL(", ").join(sql.SQL("{} text not null").format(sql.Identifier(c)) for c in columns)
            )
        )
        count = 0
        started = time.perf_counter()
        with self.conn.cursor() as cur:
            with cur.copy(sql.SQL("copy {} from stdin").format(table)) as copy:
                for row in reader.rows(bar.update):
                    copy.write_row(row)
                    count += 1
        self.summary.rows_read[name] = count
        self.timings.append((time.perf_counter() - started, f"read and COPY {name}.csv"))

    def common_checks(self, name: str) -> str:
        """The reason text shared by every file: a problem found while reading, then the keys and status."""
        return """
          when s.problem is not null then s.problem
          when s.sourced_id = '' then 'missing sourcedId'
          when lower(s.status) not in ('', 'active', 'tobedeleted') then 'unknown status ' || quote_literal(s.status)
          when d.first_line is not null then 'duplicate sourcedId (first on line ' || d.first_line || ')'
        """

    @staticmethod
    def printable(columns: dict[str, str]) -> str:
        """Reasons for a control character in the named columns (staging column: the CSV's header)."""
        return "".join(
            f"when s.{column} ~ %(control)s then 'control character in {header}'\n"
            for column, header in columns.items()
        )

    def checked(
        self, name: str, extra_columns: str, extra_reasons: str, joins: str = "", base: str | None = None
    ) -> None:
        """v_<name>: the staging rows with deleting and the reason each is bad (null: good)."""
        stg = f"stg_{name.lower()}"
        base = base or stg
        # Grouping (hashed) rather than a window (sorted): most files have no duplicate at all.
        self.x(f"""
          create temp table dup_{name.lower()} on commit drop as
          select sourced_id, min(line_no) as first_line from {stg} group by sourced_id having count(*) > 1
        """)
        self.x(f"""
          create temp table v_{name.lower()} on commit drop as
          select s.*, lower(s.status) = 'tobedeleted' as deleting,
                 case {self.common_checks(name)}
                      when lower(s.status) = 'tobedeleted' then null
                      {extra_reasons}
                 end as reason
                 {extra_columns}
            from {base} s
            left join dup_{name.lower()} d on d.sourced_id = s.sourced_id and d.first_line <> s.line_no
            {joins}
        """)
        self.x(
            f"""
          insert into bad_row select %(file)s, line_no, sourced_id, reason from v_{name.lower()} where reason is not null
        """,
            {"file": f"{name}.csv"},
        )

    def leaving(self, name: str, mapping: str, also: str | None = None) -> str:
        """Creates leaving_<mapping>: the mapped sourcedIds of this source that the file <name> takes away.

        leaving is true for a row marked tobedeleted and, in bulk, for one the file no longer lists (listed
        means any row with that sourcedId, good or bad: a typo never deletes); false where only `also`, a
        condition on a good row v of v_<name>, takes it away. Built from joins, never from a subquery per
        mapping row: an OR of subqueries cannot be a join, and at district scale (a million results) its
        "is it listed?" rescanned the staging table for every row.
        """
        table = f"leaving_{mapping}"
        v = f"v_{name.lower()}"
        parts = [f"select sourced_id, true as leaving from {v} where reason is null and deleting"]
        if also:
            parts.append(
                f"select v.sourced_id, false from {v} v where v.reason is null and not v.deleting and ({also})"
            )
        listed = ""
        if self.bulk(name):
            listed = f"""
              union all
              select m.sourced_id, true from {mapping} m
               where m.source = %(source)s
                 and not exists (select from stg_{name.lower()} l where l.sourced_id = m.sourced_id)"""
        self.x(f"""
          create temp table {table} on commit drop as
          select sourced_id, bool_or(leaving) as leaving
            from (select m.sourced_id, x.leaving
                    from {mapping} m join ({" union all ".join(parts)}) x on x.sourced_id = m.sourced_id
                   where m.source = %(source)s
                  {listed}) t
           group by sourced_id
        """)
        self.x(f"analyze {table}")
        return table

    def upsert_mirror(self, entity: str, table: str, name: str, columns: list[str], select: str) -> None:
        """Removes what the file removes, then inserts or updates (only where a value differs)."""
        leaving = self.leaving(name, table)
        deleted = self.x(
            f"delete from {table} m where m.source = %(source)s"
            f" and m.sourced_id in (select sourced_id from {leaving} where leaving)"
        )
        cols = ", ".join(columns)
        excluded = ", ".join(f"excluded.{c}" for c in columns)
        current = ", ".join(f"{table}.{c}" for c in columns)
        inserted, updated = self.one(f"""
          with w as (
            insert into {table} (source, sourced_id, {cols})
            {select}
            on conflict (source, sourced_id) do update set ({cols}) = row({excluded})
              where ({current}) is distinct from ({excluded})
            returning (xmax = 0) as inserted)
          select count(*) filter (where inserted), count(*) filter (where not inserted) from w
        """)
        self.summary.count(entity, "deleted", deleted)
        self.summary.count(entity, "inserted", inserted)
        self.summary.count(entity, "updated", updated)

    # -- bad rows --------------------------------------------------------------------------------------

    def create_bad_rows(self) -> None:
        """bad_row: every file's bad rows, filled by checked()."""
        self.x("create temp table bad_row (file text, line integer, sourced_id text, reason text) on commit drop")

    def collect_bad_rows(self) -> None:
        """The summary's bad rows: all of them counted, the first KEPT_BAD_ROWS (by file and line) kept.

        Memory stays bounded however many rows are bad (a hostile file of a million duplicates).
        """
        self.summary.bad_row_count = self.one("select count(*) from bad_row")[0]
        self.summary.bad_rows = [
            BadRow(*r)
            for r in self.cur.execute(
                "select file, line, sourced_id, reason from bad_row order by file, line limit %(n)s",
                {"n": KEPT_BAD_ROWS},
            ).fetchall()
        ]
