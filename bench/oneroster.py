"""OneRoster import: a district written as OneRoster 1.1 CSV, imported by `weekly-trends import oneroster`.

A database of its own. Times the whole import (reading the files, COPY, validation, the writes with our
triggers on, commit) three times: the first import into an empty database, the same files again (must
write nothing) and a delta results file that changes 5% of the results.
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

from web.oneroster import Options, import_oneroster

from .common import Check, Section, checkpoint, log
from .district import TIME_ZONES

CLASS_SIZE = 25
CLASSES_PER_STUDENT = 6
ITEMS_PER_CLASS = 8  # 48 results a student: 96,000 at 2,000 students, 960,000 at 20,000
TARGET_ROWS_PER_SECOND = 50_000
CATEGORIES = (("cat-q", "Quizzes"), ("cat-t", "Tests"), ("cat-h", "Homework"), ("cat-p", "Projects"))
STATUSES = ["fully graded"] * 17 + ["submitted", "not submitted", "exempt"]
FIRST_MONDAY = date(2025, 9, 1)
WEEKS = 36

MANIFEST = """propertyName,value
manifest.version,1.0
oneroster.version,1.1
file.categories,{m}
file.classes,{m}
file.users,{m}
file.lineItems,{m}
file.results,{r}
source.systemName,Bench SIS
source.systemCode,bench
"""


def write_csv(path: Path, header: str, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header.split(","))
        writer.writerows(rows)


def result_row(r: random.Random, rid: str, item: str, student: str, top: int, day: date) -> tuple:
    status = r.choice(STATUSES)
    score = "" if status in ("not submitted", "exempt") else str(r.randint(0, top * 10) / 10)
    when = (
        ""
        if not score and status != "submitted"
        else (
            day.isoformat()
            if r.random() < 0.5
            else f"{day.isoformat()}T{r.randint(7, 16):02d}:{r.randint(0, 59):02d}:00Z"
        )
    )
    return ("", "", rid, item, student, status, score, when, "")


def write_district(directory: Path, students: int, seed: int) -> tuple[int, list[tuple]]:
    """The full set (bulk); returns the number of results and the results, for the delta."""
    r = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.csv").write_text(MANIFEST.format(m="bulk", r="bulk"))
    write_csv(
        directory / "users.csv",
        "sourcedId,status,dateLastModified,role,givenName,familyName,email,agentSourcedIds,metadata.timeZone",
        [
            row
            for s in range(students)
            for row in (
                (f"s{s}", "", "", "student", "Student", str(s), "", f"p{s}", TIME_ZONES[s % len(TIME_ZONES)]),
                (f"p{s}", "", "", "parent", "Parent", str(s), f"p{s}@families.example.org", f"s{s}", ""),
            )
        ],
    )
    classes = students * CLASSES_PER_STUDENT // CLASS_SIZE
    write_csv(
        directory / "classes.csv",
        "sourcedId,status,dateLastModified,title",
        [(f"c{c}", "", "", f"Class {c}") for c in range(classes)],
    )
    write_csv(
        directory / "categories.csv",
        "sourcedId,status,dateLastModified,title",
        [(cid, "", "", title) for cid, title in CATEGORIES],
    )
    items, tops = [], {}
    for c in range(classes):
        for k in range(ITEMS_PER_CLASS):
            top = r.choice((10, 20, 50, 100))
            tops[f"i{c}-{k}"] = (top, FIRST_MONDAY + timedelta(days=r.randrange(WEEKS * 7)))
            items.append((f"i{c}-{k}", "", "", f"Item {k}", f"c{c}", r.choice(CATEGORIES)[0], "0", str(top)))
    write_csv(
        directory / "lineItems.csv",
        "sourcedId,status,dateLastModified,title,classSourcedId,categorySourcedId,resultValueMin,resultValueMax",
        items,
    )
    results = []
    for c in range(classes):
        # Class c holds CLASS_SIZE consecutive students (wrapping), so each student is in 6 classes.
        members = [(c * CLASS_SIZE + m) % students for m in range(CLASS_SIZE)]
        for k in range(ITEMS_PER_CLASS):
            item = f"i{c}-{k}"
            top, day = tops[item]
            for m in members:
                results.append(result_row(r, f"r{c}-{k}-{m}", item, f"s{m}", top, day))
    header = "status,dateLastModified,sourcedId,lineItemSourcedId,studentSourcedId,scoreStatus,score,scoreDate,comment"
    write_csv(directory / "results.csv", header, results)
    return len(results), results


def write_delta(directory: Path, results: list[tuple], share: float, seed: int) -> int:
    r = random.Random(seed + 1)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.csv").write_text(MANIFEST.format(m="absent", r="delta"))
    changed = []
    for row in r.sample(results, k=max(1, int(len(results) * share))):
        status, modified, rid, item, student, _, _, _, comment = row
        if r.random() < 0.2:
            changed.append(("tobedeleted", modified, rid, item, student, "", "", "", comment))
        else:
            day = FIRST_MONDAY + timedelta(days=r.randrange(WEEKS * 7))
            changed.append(
                (
                    "active",
                    modified,
                    rid,
                    item,
                    student,
                    "fully graded",
                    str(r.randint(0, 10)),
                    day.isoformat(),
                    comment,
                )
            )
    write_csv(
        directory / "results.csv",
        "status,dateLastModified,sourcedId,lineItemSourcedId,studentSourcedId,scoreStatus,score,scoreDate,comment",
        changed,
    )
    return len(changed)


def timed_import(conn: psycopg.Connection, path: Path) -> tuple[float, object]:
    checkpoint(conn)
    start = time.perf_counter()
    summary = import_oneroster(conn, path, Options(progress=False))
    return time.perf_counter() - start, summary


def run_oneroster(conn: psycopg.Connection, args) -> Section:
    with tempfile.TemporaryDirectory(prefix="weekly-trends-oneroster-") as tmp:
        log(f"oneroster: writing a district of {args.students:,} students as OneRoster CSV")
        start = time.perf_counter()
        n_results, results = write_district(Path(tmp) / "full", args.students, args.seed)
        n_delta = write_delta(Path(tmp) / "delta", results, 0.05, args.seed)
        written_seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (Path(tmp) / "full").iterdir())
        first, s1 = timed_import(conn, Path(tmp) / "full")
        spent = sorted(s1.timings, reverse=True)
        log(f"oneroster: first import {first:.2f} s ({n_results / first:,.0f} result rows/s)")
        again, s2 = timed_import(conn, Path(tmp) / "full")
        log(f"oneroster: reimport {again:.2f} s, {s2.written} rows written")
        delta, s3 = timed_import(conn, Path(tmp) / "delta")
        log(f"oneroster: delta of {n_delta:,} results {delta:.2f} s")
    drifted = conn.execute("select count(*) from check_weekly_performance()").fetchone()[0]
    scores = conn.execute(
        "select (select count(*) from quiz_attempt) + (select count(*) from assignment_submission)"
    ).fetchone()[0]
    section = Section(
        "oneroster",
        "OneRoster import",
        [
            f"A district of {args.students:,} students (each with one parent, in 6 classes of {CLASS_SIZE}), "
            f"{ITEMS_PER_CLASS} line items a class, as OneRoster 1.1 CSV",
            f"({size / 1e6:,.1f} MB, written in {written_seconds:.1f} s, not timed), imported by"
            " `import_oneroster()` as `weekly-trends import oneroster` runs it, in a database of its own, our triggers",
            "on: reading the files, COPY into staging tables, validation in SQL, the writes and the commit, end to end.",
            "Then the same files again, and a delta results.csv changing 5% of the results (a fifth of them deleted).",
        ],
        ["import", "result rows", "seconds", "result rows per second", "rows written"],
    )
    section.rows.append(
        ["first (empty database)", f"{n_results:,}", f"{first:.2f}", f"{n_results / first:,.0f}/s", f"{s1.written:,}"]
    )
    section.rows.append(
        ["the same files again", f"{n_results:,}", f"{again:.2f}", f"{n_results / again:,.0f}/s", f"{s2.written:,}"]
    )
    section.rows.append(
        ["delta (5% of the results)", f"{n_delta:,}", f"{delta:.2f}", f"{n_delta / delta:,.0f}/s", f"{s3.written:,}"]
    )
    section.notes.append(
        f"After the three imports: {scores:,} quiz and assignment rows; check_weekly_performance()"
        f" found {drifted} drifted weeks. A reimport must write 0 rows: it wrote {s2.written}."
    )
    top = "; ".join(f"{seconds:.2f} s {what.split(' (')[0][:60]}" for seconds, what in spent[:6])
    section.notes.append(
        f"Where the first import spent its time (statements, longest first): {top}; the rest"
        f" {sum(t for t, _ in spent[6:]):.2f} s."
    )
    inserts = sum(
        t for t, what in spent if what.startswith(("insert into quiz_attempt", "insert into assignment_submission"))
    )
    section.checks.append(
        Check(
            "oneroster",
            "first import, result rows per second (end to end, triggers on)",
            n_results / first,
            TARGET_ROWS_PER_SECOND,
            unit="rows/s",
            at_least=True,
            why=f"the two INSERTs into the score tables (foreign keys and the weekly triggers) took {inserts:.2f} s of"
            f" {first:.2f} s, capping the import at {n_results / inserts:,.0f} rows/s (docs/oneroster.md)",
        )
    )
    return section
