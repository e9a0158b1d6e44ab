"""The import: COPY each file into a staging table, validate it in SQL, then one statement per entity and change.

Everything runs in one transaction. Each file is applied in dependency order
(categories, classes, users, line items, results), so a file is validated
against what the import has already written: a result's line item is known
when it is in the database after lineItems.csv. Bad rows are collected; by
default any bad row rolls the whole transaction back (nothing is written),
with --skip-bad-rows the good rows stay. The results finally become
quiz_attempt and assignment_submission rows by a few set-based statements
that touch only rows that change (IS DISTINCT FROM), so the triggers see a
few large statements and a reimport writes nothing.
"""

from __future__ import annotations

import csv
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from .reader import DEFAULT_MAX_MEGABYTES, FILES, MB, CsvSet, FileReader, InputError, Manifest, read_manifest

# Roles of OneRoster 1.1 and 1.2 (compared lower-case); which of them we import.
KNOWN_ROLES = {
    "administrator",
    "aide",
    "guardian",
    "parent",
    "proctor",
    "relative",
    "student",
    "teacher",
    "counselor",
    "districtadministrator",
    "principal",
    "siteadministrator",
    "systemadministrator",
}
GUARDIAN_ROLES = ("parent", "guardian")
SCORE_STATUSES = ("exempt", "fully graded", "not submitted", "partially graded", "submitted")
KINDS = ("quiz", "assignment")
KNOWN_ROLES_SQL = "'{" + ",".join(sorted(KNOWN_ROLES)) + "}'"
# Characters no name or title may hold (the schema's name constraints, revision 0014): C0 with tab,
# CR and LF, DEL, C1, U+2028 and U+2029. A row with one is a bad row, never imported.
CONTROL_CHARACTERS = "[\x01-\x1f\x7f-\x9f\u2028\u2029]"
# The default rule: a category whose title contains one of these words is a quiz.
DEFAULT_QUIZ_PATTERN = "quiz|test"
# Bad rows kept for the report and the summary: the first ones (by file and line); the others are counted.
KEPT_BAD_ROWS = 1000
# The tables the import inserts into with ids from their sequences.
ID_TABLES = ("student_profile", "guardian", "course", "quiz_attempt", "assignment_submission")


@dataclass
class Options:
    source: str | None = None  # the sending system's name; default the manifest's source.systemCode
    time_zone: str = "UTC"  # new students' time zone, unless users.csv has metadata.timeZone
    category_map: Path | None = None  # CSV: category,kind
    skip_bad_rows: bool = False
    progress: bool = True
    max_megabytes: int | None = DEFAULT_MAX_MEGABYTES  # the most the files to read may hold uncompressed


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
    timings: list[tuple[float, str]] = field(default_factory=list)  # (seconds, statement), for the benchmark

    @property
    def written(self) -> int:
        return sum(sum(c.values()) for c in self.changes.values())

    def count(self, entity: str, what: str, n: int) -> None:
        bucket = self.changes.setdefault(entity, {"inserted": 0, "updated": 0, "deleted": 0})
        bucket[what] += max(n, 0)


class BadRowsRefused(Exception):
    """Rows failed validation and --skip-bad-rows was not given: the transaction was rolled back."""

    def __init__(self, summary: Summary) -> None:
        super().__init__(f"{summary.bad_row_count} bad row(s)")
        self.summary = summary


def read_category_map(path: Path) -> list[tuple[str, str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            if header != ["category", "kind"]:
                raise InputError(f"{path}: the header must be 'category,kind', found {','.join(header)!r}")
            pairs = []
            for row in reader:
                if not row or row == [""]:
                    continue
                if len(row) != 2 or row[1].strip().lower() not in KINDS or not row[0].strip() or "\0" in row[0]:
                    raise InputError(
                        f"{path} line {reader.line_num}: expected a category and quiz or assignment, found {row!r}"
                    )
                pairs.append((row[0].strip().lower(), row[1].strip().lower()))
            return pairs
    except OSError as error:
        raise InputError(f"{path}: cannot read the category mapping ({error.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{path}: unreadable ({error})") from None


SOURCE_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")  # only ever a parameter, never an identifier


class Import:
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
        self.seq: dict[str, str] = {}
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

    # -- the files -------------------------------------------------------------------------------------

    def categories(self) -> None:
        self.checked("categories", "", "when s.title = '' then 'missing title'\n" + self.printable({"title": "title"}))
        self.upsert_mirror(
            "categories",
            "oneroster_category",
            "categories",
            ["title"],
            "select %(source)s, sourced_id, title from v_categories where reason is null and not deleting",
        )

    def classes(self) -> None:
        self.checked("classes", "", "when s.title = '' then 'missing title'\n" + self.printable({"title": "title"}))
        gone = self.x(f"""
          create temp table classes_gone on commit drop as
          select m.course_id from oneroster_class m
           where m.source = %(source)s and m.sourced_id in (select sourced_id from {self.leaving("classes", "oneroster_class")})
        """)
        if gone:
            # Scores keep their rows; their course_id becomes null (on delete set null).
            self.summary.count(
                "courses", "deleted", self.x("delete from course where id in (select course_id from classes_gone)")
            )
        self.summary.count(
            "courses",
            "updated",
            self.x("""
          update course c set name = v.title
            from v_classes v join oneroster_class m on m.source = %(source)s and m.sourced_id = v.sourced_id
           where c.id = m.course_id and v.reason is null and not v.deleting and c.name is distinct from v.title
        """),
        )
        new = self.x("""
          create temp table classes_new on commit drop as
          select v.sourced_id, v.title, nextval(pg_get_serial_sequence('course', 'id')) as id
            from v_classes v
           where v.reason is null and not v.deleting
             and not exists (select from oneroster_class m where m.source = %(source)s and m.sourced_id = v.sourced_id)
        """)
        if new:
            self.summary.count(
                "courses", "inserted", self.x("insert into course (id, name) select id, title from classes_new")
            )
            self.summary.count(
                "class mappings",
                "inserted",
                self.x(
                    "insert into oneroster_class (source, sourced_id, course_id)"
                    " select %(source)s, sourced_id, id from classes_new"
                ),
            )

    def users(self) -> None:
        role_expr = "lower(nullif(t.role, ''))"
        joins = ""
        if self.mode("roles") != "absent":
            self.checked(
                "roles",
                "",
                f"""
              when s.user_sourced_id = '' then 'missing userSourcedId'
              when lower(s.role) <> all({KNOWN_ROLES_SQL}::text[]) then 'unknown role ' || quote_literal(s.role)
            """,
            )
            self.x("""
              create temp table user_role on commit drop as
              select user_sourced_id,
                     case when bool_or(lower(role) = 'student') then 'student'
                          when bool_or(lower(role) in ('parent', 'guardian')) then 'guardian' else 'other' end as role
                from v_roles where reason is null and not deleting group by user_sourced_id
            """)
            joins = "left join user_role ur on ur.user_sourced_id = t.sourced_id"
            role_expr = "coalesce(lower(nullif(t.role, '')), ur.role)"
        self.x(f"""
          create temp table users_pre on commit drop as
          select u.*, count(*) filter (where u.kind = 'guardian' and lower(u.status) <> 'tobedeleted'
                                         and u.email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
                        over (partition by lower(u.email)) as email_uses
            from (select t.*,
                         case when {role_expr} = 'student' then 'student'
                              when {role_expr} in ('parent', 'guardian') then 'guardian'
                              when {role_expr} is not null then 'other'
                              when exists (select from oneroster_student m
                                            where m.source = %(source)s and m.sourced_id = t.sourced_id) then 'student'
                              when exists (select from oneroster_guardian m
                                            where m.source = %(source)s and m.sourced_id = t.sourced_id) then 'guardian'
                              else 'other' end as kind,
                         coalesce(nullif(btrim(concat_ws(' ',
                                    coalesce(nullif(t.preferred_given_name, ''), nullif(t.given_name, '')),
                                    coalesce(nullif(t.preferred_family_name, ''), nullif(t.family_name, '')))), ''),
                                  nullif(t.username, ''), t.sourced_id) as display_name
                    from stg_users t {joins}) u
        """)
        self.x("create temp table zone on commit drop as select name from pg_timezone_names")
        self.checked(
            "users",
            "",
            self.printable(
                {
                    "given_name": "givenName",
                    "family_name": "familyName",
                    "preferred_given_name": "preferredGivenName",
                    "preferred_family_name": "preferredFamilyName",
                    "username": "username",
                    "sourced_id": "sourcedId",
                }
            )
            + f"""
          when s.role <> '' and lower(s.role) <> all({KNOWN_ROLES_SQL}::text[])
            then 'unknown role ' || quote_literal(s.role)
          when s.time_zone <> '' and not exists (select from zone z where z.name = s.time_zone)
            then 'unknown time zone ' || quote_literal(s.time_zone)
          when s.kind = 'guardian' and s.email_uses > 1 then 'duplicate email ' || quote_literal(s.email)
          when s.kind = 'guardian' and s.email ~ '^[^@[:space:]]+@[^@[:space:]]+$' and exists (
                 select from guardian g join oneroster_guardian m on m.guardian_id = g.id
                  where g.email = s.email and m.source = %(source)s and m.sourced_id <> s.sourced_id)
            then 'email ' || quote_literal(s.email) || ' belongs to another guardian of this source'
        """,
            base="users_pre",
        )
        for row in self.cur.execute(
            "select line_no, sourced_id from v_users where reason is null and not deleting and kind = 'guardian'"
            " and email !~ '^[^@[:space:]]+@[^@[:space:]]+$' order by line_no"
        ).fetchall():
            self.summary.warnings.append(
                f"users.csv line {row[0]}: guardian {row[1]} has no valid email;"
                " not imported (a guardian signs in by email)"
            )
        self.students()
        self.guardians()
        self.links()

    def students(self) -> None:
        # Removed: tobedeleted, not listed by a bulk file, or no longer a student.
        self.summary.count(
            "students",
            "deleted",
            self.x(f"""
          delete from student_profile where id in (
            select m.student_profile_id from oneroster_student m
             where m.source = %(source)s
               and m.sourced_id in (select sourced_id from {self.leaving("users", "oneroster_student", "v.kind <> 'student'")}))
        """),
        )
        self.summary.count(
            "students",
            "updated",
            self.x("""
          update student_profile p
             set display_name = v.display_name, time_zone = coalesce(nullif(v.time_zone, ''), p.time_zone)
            from v_users v join oneroster_student m on m.source = %(source)s and m.sourced_id = v.sourced_id
           where p.id = m.student_profile_id and v.reason is null and not v.deleting and v.kind = 'student'
             and (p.display_name, p.time_zone) is distinct from (v.display_name, coalesce(nullif(v.time_zone, ''), p.time_zone))
        """),
        )
        new = self.x(
            """
          create temp table students_new on commit drop as
          select v.sourced_id, v.display_name, coalesce(nullif(v.time_zone, ''), %(zone)s) as time_zone,
                 nextval(pg_get_serial_sequence('student_profile', 'id')) as id
            from v_users v
           where v.reason is null and not v.deleting and v.kind = 'student'
             and not exists (select from oneroster_student m where m.source = %(source)s and m.sourced_id = v.sourced_id)
        """,
            {"zone": self.options.time_zone},
        )
        if new:
            self.summary.count(
                "students",
                "inserted",
                self.x(
                    "insert into student_profile (id, display_name, time_zone) select id, display_name, time_zone"
                    " from students_new order by id"
                ),
            )
            self.summary.count(
                "student mappings",
                "inserted",
                self.x(
                    "insert into oneroster_student (source, sourced_id, student_profile_id)"
                    " select %(source)s, sourced_id, id from students_new"
                ),
            )

    def guardians(self) -> None:
        valid = "v.email ~ '^[^@[:space:]]+@[^@[:space:]]+$'"
        # Leaving: the mapping goes; a guardian the import created goes too once no source maps it.
        self.x(f"""
          create temp table guardians_gone on commit drop as
          select m.sourced_id, m.guardian_id, m.created from oneroster_guardian m
           where m.source = %(source)s
             and m.sourced_id in (select sourced_id
                                    from {self.leaving("users", "oneroster_guardian", f"v.kind <> 'guardian' or not {valid}")})
        """)
        self.summary.count(
            "guardian links",
            "deleted",
            self.x("""
          delete from guardian_student gs using guardians_gone g, oneroster_student s
           where gs.guardian_id = g.guardian_id and s.source = %(source)s and gs.student_profile_id = s.student_profile_id
        """),
        )
        self.summary.count(
            "guardian mappings",
            "deleted",
            self.x("""
          delete from oneroster_guardian m using guardians_gone g
           where m.source = %(source)s and m.sourced_id = g.sourced_id
        """),
        )
        self.summary.count(
            "guardians",
            "deleted",
            self.x("""
          delete from guardian where id in (select guardian_id from guardians_gone where created)
             and not exists (select from oneroster_guardian m where m.guardian_id = guardian.id)
        """),
        )
        self.summary.count(
            "guardians",
            "updated",
            self.x(f"""
          update guardian g set email = v.email, display_name = v.display_name
            from v_users v join oneroster_guardian m on m.source = %(source)s and m.sourced_id = v.sourced_id
           where g.id = m.guardian_id and m.created and v.reason is null and not v.deleting and v.kind = 'guardian'
             and {valid} and (g.email, g.display_name) is distinct from (v.email, v.display_name)
             and not exists (select from guardian o where o.email = v.email and o.id <> g.id)
        """),
        )
        self.x(f"""
          create temp table guardians_new on commit drop as
          select v.sourced_id, v.email, v.display_name, o.id as existing_id,
                 case when o.id is null then nextval(pg_get_serial_sequence('guardian', 'id')) else o.id end as id
            from v_users v left join guardian o on o.email = v.email
           where v.reason is null and not v.deleting and v.kind = 'guardian' and {valid}
             and not exists (select from oneroster_guardian m where m.source = %(source)s and m.sourced_id = v.sourced_id)
        """)
        self.summary.count(
            "guardians",
            "inserted",
            self.x(
                "insert into guardian (id, email, display_name) select id, email, display_name from guardians_new"
                " where existing_id is null order by id"
            ),
        )
        self.summary.count(
            "guardian mappings",
            "inserted",
            self.x(
                "insert into oneroster_guardian (source, sourced_id, guardian_id, created)"
                " select %(source)s, sourced_id, id, existing_id is null from guardians_new"
            ),
        )

    def links(self) -> None:
        """guardian_student from agentSourcedIds, in both directions; the links between this source's users are ours."""
        for table in ("oneroster_student", "oneroster_guardian"):
            self.x(f"analyze {table}")  # just written: the planner would take them for empty
        self.x("""
          create temp table links_wanted on commit drop as
          select distinct g.guardian_id, s.student_profile_id
            from (select case when v.kind = 'student' then v.sourced_id else btrim(a) end as student_key,
                         case when v.kind = 'student' then btrim(a) else v.sourced_id end as guardian_key
                    from v_users v, unnest(string_to_array(v.agent_sourced_ids, ',')) a
                   where v.reason is null and not v.deleting and v.kind in ('student', 'guardian')) l
            join oneroster_student s on s.source = %(source)s and s.sourced_id = l.student_key
            join oneroster_guardian g on g.source = %(source)s and g.sourced_id = l.guardian_key
        """)
        scope = (
            ""
            if self.bulk("users")
            else """
           and (s.sourced_id in (select sourced_id from v_users where reason is null)
                or g.sourced_id in (select sourced_id from v_users where reason is null))"""
        )
        self.summary.count(
            "guardian links",
            "deleted",
            self.x(f"""
          delete from guardian_student gs using oneroster_guardian g, oneroster_student s
           where g.source = %(source)s and s.source = %(source)s
             and gs.guardian_id = g.guardian_id and gs.student_profile_id = s.student_profile_id {scope}
             and not exists (select from links_wanted w
                              where w.guardian_id = gs.guardian_id and w.student_profile_id = gs.student_profile_id)
        """),
        )
        self.summary.count(
            "guardian links",
            "inserted",
            self.x("""
          insert into guardian_student (guardian_id, student_profile_id)
          select guardian_id, student_profile_id from links_wanted order by 1, 2
          on conflict do nothing
        """),
        )

    def enrollments(self) -> None:
        # Read and checked, not stored: the product has no enrollments (a student's courses come from the results).
        self.checked(
            "enrollments",
            "",
            """
          when s.class_sourced_id = '' then 'missing classSourcedId'
          when s.user_sourced_id = '' then 'missing userSourcedId'
        """,
        )

    def line_items(self) -> None:
        self.checked(
            "lineItems",
            "",
            self.printable({"title": "title"})
            + """
          when not exists (select from oneroster_class c where c.source = %(source)s and c.sourced_id = s.class_sourced_id)
            then 'unknown class ' || quote_literal(s.class_sourced_id)
          when s.category_sourced_id <> '' and not exists (select from oneroster_category c
                where c.source = %(source)s and c.sourced_id = s.category_sourced_id)
            then 'unknown category ' || quote_literal(s.category_sourced_id)
          when s.result_value_max <> '' and not oneroster_is_number(s.result_value_max)
            then 'bad number in resultValueMax ' || quote_literal(s.result_value_max)
          when nullif(s.result_value_max, '')::numeric <= 0
            then 'resultValueMax must be above 0, found ' || s.result_value_max
        """,
        )
        self.upsert_mirror(
            "line items",
            "oneroster_line_item",
            "lineItems",
            ["title", "class_sourced_id", "category_sourced_id", "result_value_max"],
            """
          select %(source)s, sourced_id, title, class_sourced_id, nullif(category_sourced_id, ''),
                 nullif(result_value_max, '')::numeric
            from v_lineitems where reason is null and not deleting""",
        )

    def line_item_kinds(self) -> None:
        """li_kind: each line item of the source, its class, its maximum and whether it is a quiz."""
        self.x("create temp table kind_map (key text primary key, kind text not null) on commit drop")
        if self.options.category_map:
            with self.conn.cursor().copy("copy kind_map from stdin") as copy:
                seen = set()
                for key, kind in read_category_map(self.options.category_map):
                    if key not in seen:
                        seen.add(key)
                        copy.write_row((key, kind))
        self.x(
            """
          create temp table li_kind on commit drop as
          select li.sourced_id, li.class_sourced_id, li.result_value_max,
                 coalesce(by_id.kind, by_title.kind,
                          case when c.title ~* %(pattern)s then 'quiz' else 'assignment' end) as kind
            from oneroster_line_item li
            left join oneroster_category c on c.source = li.source and c.sourced_id = li.category_sourced_id
            left join kind_map by_id on by_id.key = lower(li.category_sourced_id)
            left join kind_map by_title on by_title.key = lower(c.title)
           where li.source = %(source)s
        """,
            {"pattern": DEFAULT_QUIZ_PATTERN},
        )
        self.x("alter table li_kind add primary key (sourced_id)")
        self.x("analyze li_kind")

    def results(self) -> None:
        self.x("analyze oneroster_student")
        statuses = "'{" + ",".join(f'"{s}"' for s in SCORE_STATUSES) + "}'"
        # Each text is checked and typed once, in the inner query; typed values exist only where the text is
        # valid (a statement's conditions may run in any order: a cast must never meet a bad row's text).
        # OFFSET 0 keeps that query a plan node of its own: pulled up, each reference to score_value or
        # score_date_value below would rerun its regular expression (up to seven a row; 0.78 s of a 3.1 s import).
        base = """(select t.*, lk.kind, lk.result_value_max, lk.sourced_id as line_item_found,
                          st.sourced_id as student_found, m.kind as old_kind, m.target_id as old_target_id,
                          lower(t.score_status) as score_status_value,
                          case when oneroster_is_number(t.score) then t.score::numeric end as score_value,
                          case when t.score_date <> '' and oneroster_is_datetime(t.score_date) then t.score_date
                               end as score_date_value
                     from stg_results t
                     left join li_kind lk on lk.sourced_id = t.line_item_sourced_id
                     left join oneroster_student st on st.source = %(source)s and st.sourced_id = t.student_sourced_id
                     left join oneroster_result m on m.source = %(source)s and m.sourced_id = t.sourced_id
                   offset 0)"""
        pct = (
            "case when s.result_value_max is null then round(s.score_value, 2)"
            " else round(s.score_value / s.result_value_max * 100, 2) end"
        )
        self.checked(
            "results",
            "",
            f"""
          when s.score_status_value <> all({statuses}::text[])
            then 'unknown scoreStatus ' || quote_literal(s.score_status)
          when s.line_item_found is null then 'unknown line item ' || quote_literal(s.line_item_sourced_id)
          when s.student_found is null then 'unknown student ' || quote_literal(s.student_sourced_id)
          when s.score <> '' and s.score_value is null then 'bad number in score ' || quote_literal(s.score)
          when s.score = '' and s.score_status_value = 'fully graded' then 'fully graded without a score'
          when s.score_date <> '' and s.score_date_value is null
            then 'bad date in scoreDate ' || quote_literal(s.score_date)
          when s.score_date = '' and s.score_status_value = 'fully graded' then 'fully graded without a scoreDate'
          -- the score tables hold instants from 1900 to 2199 (a day's margin for any time zone)
          when s.score_date_value is not null and substr(s.score_date_value, 1, 10) not between '1900-01-02' and '2199-12-30'
            then 'scoreDate out of range: ' || quote_literal(s.score_date) || ', outside 1900-01-02 to 2199-12-30'
          when s.score_status_value <> 'not submitted' and s.score_status_value <> 'exempt'
               and ({pct}) not between 0 and 999.99
            then 'score out of range: ' || s.score || coalesce(' of ' || s.result_value_max, '')
                 || ' is ' || ({pct}) || '%%, outside 0 to 999.99'
        """,
            base=base,
        )
        # The rows that lose their quiz or assignment row first: leaving, or changing kind.
        self.x(f"""
          create temp table results_gone on commit drop as
          select m.sourced_id, m.kind, m.target_id, g.leaving
            from oneroster_result m join {self.leaving("results", "oneroster_result", "v.kind <> v.old_kind")} g
                 on g.sourced_id = m.sourced_id
           where m.source = %(source)s
        """)
        self.delete_targets("results_gone", "true")
        self.summary.count(
            "result mappings",
            "deleted",
            self.x("""
          delete from oneroster_result m using results_gone g
           where m.source = %(source)s and m.sourced_id = g.sourced_id and g.leaving
        """),
        )
        seq = self.sequences()
        new_id = f"case when v.kind = 'quiz' then nextval({seq['quiz']}) else nextval({seq['assignment']}) end"
        values = (
            "v.line_item_sourced_id, v.student_sourced_id, v.score_status_value, v.score_value,"
            " v.score_date_value, v.kind"
        )
        columns = "line_item_sourced_id, student_sourced_id, score_status, score, score_date, kind"
        # Known results: an UPDATE of those whose values differ (a new id only when the kind changes).
        self.summary.count(
            "result mappings",
            "updated",
            self.x(f"""
          update oneroster_result m
             set ({columns}, target_id) = ({values}, case when v.kind = v.old_kind then v.old_target_id else {new_id} end)
            from v_results v
           where m.source = %(source)s and m.sourced_id = v.sourced_id and v.reason is null and not v.deleting
             and v.old_kind is not null and ({", ".join("m." + c.strip() for c in columns.split(","))})
                 is distinct from ({values})
        """),
        )
        # New results: a plain INSERT (no conflict to look for: the join above found none).
        self.summary.count(
            "result mappings",
            "inserted",
            self.x(f"""
          insert into oneroster_result (source, sourced_id, {columns}, target_id)
          select %(source)s, v.sourced_id, {values}, {new_id}
            from v_results v where v.reason is null and not v.deleting and v.old_kind is null
        """),
        )

    def sequences(self) -> dict[str, str]:
        """The id sequences of the two score tables, as regclass literals (looked up once, not per row)."""
        if not self.seq:
            for kind, table in (("quiz", "quiz_attempt"), ("assignment", "assignment_submission")):
                name = self.one("select pg_get_serial_sequence(%(t)s, 'id')", {"t": table})[0]
                self.seq[kind] = "'" + name.replace("'", "''") + "'::regclass"
        return self.seq

    def delete_targets(self, table: str, condition: str) -> None:
        for kind, target in (("quiz", "quiz_attempt"), ("assignment", "assignment_submission")):
            self.summary.count(
                target,
                "deleted",
                self.x(
                    f"delete from {target} where id in (select target_id from {table} where kind = '{kind}' and {condition})"
                ),
            )

    def derive(self) -> None:
        """Makes quiz_attempt and assignment_submission match every result of the source, writing only differences."""
        # Fresh statistics for the joins below (written in this transaction, or never analysed yet): without them
        # the planner takes the mapping tables for a few rows and loops over them for every result.
        for table in ("oneroster_student", "oneroster_class", "oneroster_result"):
            self.x(f"analyze {table}")
        self.x("""
          create temp table plan on commit drop as
          select r.sourced_id, r.kind, r.target_id, lk.kind as want_kind, st.id as student_id, c.course_id,
                 r.score_status = 'fully graded' as graded,
                 case when lk.result_value_max is null then round(r.score, 2)
                      else round(r.score / lk.result_value_max * 100, 2) end as value,
                 case when r.score_date is not null then oneroster_instant(r.score_date, st.time_zone) end as at,
                 coalesce(q.id, a.id) is not null as present,
                 lk.sourced_id is not null and st.id is not null
                   and r.score_status in ('fully graded', 'partially graded', 'submitted') as wanted
            from oneroster_result r
            left join li_kind lk on lk.sourced_id = r.line_item_sourced_id
            left join oneroster_student sm on sm.source = r.source and sm.sourced_id = r.student_sourced_id
            left join student_profile st on st.id = sm.student_profile_id
            left join oneroster_class c on c.source = r.source and c.sourced_id = lk.class_sourced_id
            left join quiz_attempt q on r.kind = 'quiz' and q.id = r.target_id
            left join assignment_submission a on r.kind = 'assignment' and a.id = r.target_id
           where r.source = %(source)s
        """)
        # A line item's maximum may have changed since a result was checked: out of range now means not imported.
        for row in self.cur.execute(
            "select sourced_id, value from plan where wanted and value not between 0 and 999.99 order by 1 limit 20"
        ):
            self.summary.warnings.append(
                f"result {row[0]}: {row[1]}% is outside 0 to 999.99 after its line item changed; not imported"
            )
        self.x("update plan set wanted = false where wanted and value not between 0 and 999.99")
        self.delete_targets("plan", "present and not (wanted and want_kind = kind)")
        # A line item whose category now maps to the other kind: its results move table, under new ids.
        seq = self.sequences()
        flipped = self.x(f"""
          update plan set kind = want_kind, present = false,
                 target_id = case when want_kind = 'quiz' then nextval({seq["quiz"]})
                                  else nextval({seq["assignment"]}) end
           where wanted and want_kind <> kind
        """)
        if flipped:
            self.summary.count(
                "result mappings",
                "updated",
                self.x("""
              update oneroster_result r set kind = p.kind, target_id = p.target_id from plan p
               where r.source = %(source)s and r.sourced_id = p.sourced_id and (r.kind, r.target_id) <> (p.kind, p.target_id)
            """),
            )
        self.summary.count(
            "quiz_attempt",
            "updated",
            self.x("""
          update quiz_attempt q
             set student_profile_id = p.student_id, course_id = p.course_id, score = p.value,
                 completed_at = case when p.graded then p.at end
            from plan p
           where p.kind = 'quiz' and p.wanted and p.present and q.id = p.target_id
             and (q.student_profile_id, q.course_id, q.score, q.completed_at)
                 is distinct from (p.student_id, p.course_id, p.value, case when p.graded then p.at end)
        """),
        )
        self.summary.count(
            "quiz_attempt",
            "inserted",
            self.x("""
          insert into quiz_attempt (id, student_profile_id, course_id, score, completed_at)
          select target_id, student_id, course_id, value, case when graded then at end
            from plan where kind = 'quiz' and wanted and not present
           order by student_id, target_id
        """),
        )
        self.summary.count(
            "assignment_submission",
            "updated",
            self.x("""
          update assignment_submission a
             set student_profile_id = p.student_id, course_id = p.course_id, percentage = p.value,
                 is_graded = p.graded, graded_at = case when p.graded then p.at end,
                 submitted_at = case when not p.graded then p.at end
            from plan p
           where p.kind = 'assignment' and p.wanted and p.present and a.id = p.target_id
             and (a.student_profile_id, a.course_id, a.percentage, a.is_graded, a.graded_at, a.submitted_at)
                 is distinct from (p.student_id, p.course_id, p.value, p.graded, case when p.graded then p.at end,
                                   case when not p.graded then p.at end)
        """),
        )
        self.summary.count(
            "assignment_submission",
            "inserted",
            self.x("""
          insert into assignment_submission (id, student_profile_id, course_id, percentage, is_graded, submitted_at,
                                             graded_at)
          select target_id, student_id, course_id, value, graded, case when not graded then at end,
                 case when graded then at end
            from plan where kind = 'assignment' and wanted and not present
           order by student_id, target_id
        """),
        )

    # -- the whole import ------------------------------------------------------------------------------

    def run(self) -> Summary:
        from tqdm import tqdm

        names = [
            n
            for n in ("categories", "classes", "roles", "users", "enrollments", "lineItems", "results")
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
            self.x("create temp table bad_row (file text, line integer, sourced_id text, reason text) on commit drop")
            for name in names:
                bar.set_description(f"reading {name}.csv")
                self.stage(name, bar)
            users = self.readers.get("users")
            if users is not None and "role" not in users.present and self.mode("roles") == "absent":
                raise InputError("users.csv: no role column and no roles.csv (OneRoster 1.2 keeps roles in roles.csv)")
            steps = [
                ("categories", self.categories),
                ("classes", self.classes),
                ("users", self.users),
                ("enrollments", self.enrollments),
                ("lineItems", self.line_items),
            ]
            for name, step in steps:
                if name in names:
                    bar.set_description(f"applying {name}.csv")
                    step()
            self.line_item_kinds()
            if "results" in names:
                bar.set_description("applying results.csv")
                self.results()
            bar.set_description("writing scores")
            self.derive()
            bar.set_description("done")
        # Memory stays bounded however many rows are bad (a hostile file of a million duplicates): the
        # first ones are kept, the rest counted.
        self.summary.bad_row_count = self.one("select count(*) from bad_row")[0]
        self.summary.bad_rows = [
            BadRow(*r)
            for r in self.cur.execute(
                "select file, line, sourced_id, reason from bad_row order by file, line limit %(n)s",
                {"n": KEPT_BAD_ROWS},
            ).fetchall()
        ]
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
