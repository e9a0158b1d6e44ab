"""`weekly-trends import oneroster`: OneRoster 1.1 / 1.2 CSV sets, against a real PostgreSQL and the reference."""

from __future__ import annotations

import copy
import csv
import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from web.oneroster import BadRowsRefused, InputError, Options, import_oneroster
from web.ops.cli import main

from factories import add_guardian, add_student, drift
from oneroster_gen import expected_by_id, generate
from reference import expected_weeks, stored_weeks

SPEC_SET = Path(__file__).parent / "data" / "oneroster" / "spec-1.1"
TABLES = (
    "student_profile",
    "guardian",
    "guardian_student",
    "course",
    "quiz_attempt",
    "assignment_submission",
    "student_weekly_performance",
    "oneroster_student",
    "oneroster_guardian",
    "oneroster_class",
    "oneroster_category",
    "oneroster_line_item",
    "oneroster_result",
    "course_work",
    "enrollment",
    "course_work_excusal",
    "oneroster_course_work",
    "oneroster_enrollment",
    "oneroster_student_enrollment",
)


def run(conn, path, **options):
    return import_oneroster(conn, path, Options(progress=False, **options))


def snapshot(conn) -> dict[str, list]:
    """Every row of every table the import touches (updated_at included: a rewritten row shows)."""
    return {t: conn.execute(f"select * from {t} order by 1, 2").fetchall() for t in TABLES}


def assert_exact(conn, oneroster_set, source="gen-sis"):
    stored = stored_weeks(conn)
    assert stored == expected_weeks(conn)
    # expected_by_id() knows the counts and averages; the reference adds year and week_number in front
    assert {key: row[2:] for key, row in stored.items()} == expected_by_id(conn, oneroster_set, source)
    assert drift(conn) == []


# -- the specification's example ------------------------------------------------------------------------------


def test_the_hand_written_set_imports_as_the_rules_say(conn):
    summary = run(conn, SPEC_SET, time_zone="America/New_York")
    assert summary.source == "example-sis" and summary.version == "1.1" and summary.bad_rows == []
    students = dict(conn.execute("select display_name, time_zone from student_profile").fetchall())
    assert students == {"Jane Doe": "America/New_York", "Adam Smith": "America/New_York"}  # the teacher is not one
    links = conn.execute(
        "select g.email, s.display_name from guardian_student gs join guardian g on g.id = gs.guardian_id"
        " join student_profile s on s.id = gs.student_profile_id order by 1"
    ).fetchall()
    assert links == [
        ("mary.doe@example.org", "Jane Doe"),
        ("pat.smith@example.org", "Adam Smith"),
        ("robert.doe@example.org", "Jane Doe"),
    ]
    assert sorted(r[0] for r in conn.execute("select name from course")) == [
        "Algebra I - Period 1",
        "Biology - Period 3",
    ]
    weeks = conn.execute(
        "select s.display_name, w.week_start_date, w.quiz_count, w.quiz_average, w.assignment_count,"
        " w.assignment_average from student_weekly_performance w join student_profile s on s.id = w.student_profile_id"
        " order by 1, 2"
    ).fetchall()
    assert weeks == [
        ("Adam Smith", date(2024, 1, 15), 1, Decimal("62.50"), 0, None),  # 12.5 / 20; 30/50 partially graded: not yet
        ("Jane Doe", date(2024, 1, 15), 1, Decimal("85.00"), 1, Decimal("90.00")),  # 17/20 quiz, 9/10 homework
        ("Jane Doe", date(2024, 1, 22), 1, Decimal("88.00"), 0, None),  # 44/50 "Unit Tests" is a quiz
    ]
    # not submitted and exempt: no row at all (never a zero); submitted and partially graded: a row that does not count
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 4
    assert conn.execute("select count(*) from quiz_attempt where completed_at is null").fetchone()[0] == 1
    assert conn.execute(
        "select count(*), count(*) filter (where not is_graded) from assignment_submission"
    ).fetchone() == (2, 1)
    assert stored_weeks(conn) == expected_weeks(conn)
    assert drift(conn) == []


def test_a_date_alone_is_noon_in_the_students_time_zone(conn):
    run(conn, SPEC_SET, time_zone="Asia/Tokyo")
    completed = conn.execute("select min(completed_at) from quiz_attempt").fetchone()[0]
    assert completed.isoformat() == "2024-01-16T03:00:00+00:00"  # 2024-01-16 12:00 in Tokyo


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2024-01-16", "2024-01-16 17:00:00+00"),  # noon in New York
        ("2024-01-16T08:30", "2024-01-16 13:30:00+00"),  # local time there
        ("2024-01-16 08:30:15", "2024-01-16 13:30:15+00"),  # a space for the T
        ("2024-01-16T08:30:00.250Z", "2024-01-16 08:30:00.25+00"),
        ("2024-01-16T08:30:00+0100", "2024-01-16 07:30:00+00"),
        ("2024-07-16", "2024-07-16 16:00:00+00"),  # daylight saving time
    ],
)
def test_score_dates_are_read_as_documented(conn, text, instant):
    assert conn.execute(
        "select oneroster_is_datetime(%s), oneroster_instant(%s, 'America/New_York') = %s::timestamptz",
        (text, text, instant),
    ).fetchone() == (True, True)


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30",
        "2023-02-29",
        "2024-13-01",
        "2024-1-5",
        "16/01/2024",
        "2024-01-16T25:00",
        "2024-01-16T10:00+25:00",
        "yesterday",
        "",
        "0000-01-01",
    ],
)
def test_bad_dates_are_recognised_without_an_error(conn, text):
    assert conn.execute("select oneroster_is_datetime(%s)", (text,)).fetchone()[0] is False


# -- generated sets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize("packed", ["folder", "zip"])
def test_a_generated_set_gives_the_independently_computed_weeks(conn, tmp_path, version, packed):
    s = generate(seed=7, version=version, time_zone="Europe/London")
    path = s.write(tmp_path / "set", zip_name="set.zip" if packed == "zip" else None)
    summary = run(conn, path, time_zone="Europe/London")
    assert summary.bad_rows == [] and summary.rows_read["results"] == len(s.results)
    assert_exact(conn, s)
    zones = dict(
        conn.execute(
            "select m.sourced_id, p.time_zone from oneroster_student m"
            " join student_profile p on p.id = m.student_profile_id"
        ).fetchall()
    )
    assert zones == s.student_zones
    n_links = sum(len([a for a in u["agentSourcedIds"].split(",") if a]) for u in s.users if u["role"] == "student")
    assert conn.execute("select count(*) from guardian_student").fetchone()[0] == n_links


def test_reimporting_the_same_files_writes_nothing(conn, tmp_path, capsys, db_url, monkeypatch):
    s = generate(seed=3, version="1.2")
    path = s.write(tmp_path / "set")
    first = run(conn, path)
    assert first.written > len(s.results)
    before = snapshot(conn)
    again = run(conn, path)
    assert again.written == 0
    assert snapshot(conn) == before
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["import", "oneroster", str(path), "--quiet"]) == 0
    assert "0 rows written. Nothing changed." in capsys.readouterr().out
    assert snapshot(conn) == before


def test_a_delta_that_changes_moves_and_deletes_results_is_exact(conn, tmp_path):
    s = generate(seed=11)
    run(conn, s.write(tmp_path / "bulk"))
    graded = [r for r in s.results if r["scoreStatus"] == "fully graded" and r["score"] != "0.0"]
    pending = [r for r in s.results if r["scoreStatus"] == "submitted" and r["score"]]
    changed, moved, deleted, ungraded = graded[0], graded[1], graded[2], graded[3]
    delta = copy.deepcopy(s)
    delta.results = []
    for r in (changed, moved, deleted, ungraded, pending[0]):
        delta.results.append(dict(r))
    delta.results[0]["score"] = "0"  # a changed score: the same week, a lower average
    delta.results[1]["scoreDate"] = "2025-03-03"  # moved to another week (and ISO year)
    delta.results[2]["status"] = "tobedeleted"  # removed
    delta.results[3].update(scoreStatus="not submitted", score="", scoreDate="")  # no longer counts, no zero
    delta.results[4].update(scoreStatus="fully graded", scoreDate="2024-11-05")  # now graded: counts
    new = dict(changed, sourcedId="res-new-1", scoreDate="2024-12-31T23:30:00Z", score="1")
    delta.results.append(new)
    delta.modes = {"results": "delta"}
    owned = "select sourced_id, kind, target_id from oneroster_result where sourced_id in (%s, %s)"
    keys = (changed["sourcedId"], moved["sourcedId"])
    before = conn.execute(owned, keys).fetchall()
    summary = run(conn, delta.write(tmp_path / "delta", only=("results",)))
    # The changed and moved results keep their rows (an UPDATE: the triggers move the score between weeks).
    assert conn.execute(owned, keys).fetchall() == before
    for _, kind, target in before:
        table = "quiz_attempt" if kind == "quiz" else "assignment_submission"
        assert conn.execute(f"select count(*) from {table} where id = %s", (target,)).fetchone()[0] == 1
    assert summary.bad_rows == []
    assert summary.changes["result mappings"] == {"inserted": 1, "updated": 4, "deleted": 1}
    # The model after the delta, for the independent expectation.
    by_id = {r["sourcedId"]: r for r in s.results}
    for r in delta.results:
        by_id[r["sourcedId"]] = r
    s.results = [r for r in by_id.values() if r.get("status") != "tobedeleted"]
    assert_exact(conn, s)
    # results.csv as a bulk file: what it no longer lists goes.
    s.results = s.results[: len(s.results) // 2]
    summary = run(conn, s.write(tmp_path / "bulk2", only=("results",)))
    assert summary.changes["result mappings"]["deleted"] > 0
    assert_exact(conn, s)
    assert conn.execute("select count(*) from oneroster_result").fetchone()[0] == len(s.results)


def test_users_and_classes_in_a_later_bulk_file_remove_what_they_no_longer_list(conn, tmp_path):
    s = generate(seed=5, students=10, classes=2, items_per_class=3)
    run(conn, s.write(tmp_path / "one"))
    gone = "stu-5-1"
    before = copy.deepcopy(s)
    s.users = [u for u in s.users if u["sourcedId"] != gone and gone not in u.get("agentSourcedIds", "")]
    s.results = [r for r in s.results if r["studentSourcedId"] != gone]
    summary = run(conn, s.write(tmp_path / "two"))
    # A student who left is marked left, not deleted: their scores stay (the model before they left holds)
    # until weekly-trends purge erases them after WEEKLY_TRENDS_LEFT_GRACE (tests/test_oneroster_left.py).
    assert summary.changes["students"]["deleted"] == 0 and summary.left_students == 1
    assert conn.execute("select count(*) from student_profile").fetchone()[0] == 10
    assert conn.execute("select count(*) from student_profile where left_at is not null").fetchone()[0] == 1
    assert_exact(conn, before)


def test_the_category_mapping_file_decides_quiz_or_assignment_and_moves_rows(conn, tmp_path):
    s = generate(seed=9, students=12, classes=2, items_per_class=6)
    path = s.write(tmp_path / "set")
    run(conn, path)
    assert_exact(conn, s)
    mapping = tmp_path / "categories.csv"
    mapping.write_text("category,kind\nHomework,quiz\ncat-test,assignment\n")
    summary = run(conn, path, category_map=mapping)
    assert summary.written > 0
    for c in s.categories:  # the model learns the same mapping
        c["title"] = {"Homework": "Homework quiz", "Unit tests": "Unit checks"}.get(c["title"], c["title"])
    assert_exact(conn, s)


def test_two_sources_never_collide(conn, tmp_path):
    s = generate(seed=2, students=6, classes=1, items_per_class=2)
    path = s.write(tmp_path / "set")
    run(conn, path, source="district-a")
    run(conn, path, source="district-b")
    assert conn.execute("select count(*) from student_profile").fetchone()[0] == 12
    assert conn.execute("select count(distinct source) from oneroster_result").fetchone()[0] == 2


def test_an_existing_guardian_is_adopted_by_email_and_never_deleted(conn, tmp_path):
    s = generate(seed=4, students=4, classes=1, items_per_class=1)
    guardian = next(u for u in s.users if u["role"] in ("parent", "guardian"))
    own_child = add_student(conn, "Elsewhere")
    existing = add_guardian(conn, guardian["email"], own_child)
    run(conn, s.write(tmp_path / "one"))
    assert (
        conn.execute(
            "select guardian_id from oneroster_guardian where sourced_id = %s", (guardian["sourcedId"],)
        ).fetchone()[0]
        == existing
    )
    guardian["status"] = "tobedeleted"
    s.modes = {"users": "delta"}
    run(conn, s.write(tmp_path / "two", only=("users",)))
    assert conn.execute("select count(*) from guardian_student where guardian_id = %s", (existing,)).fetchone()[0] == 1
    assert (
        conn.execute("select count(*) from oneroster_guardian where guardian_id = %s", (existing,)).fetchone()[0] == 0
    )


# -- bad input ---------------------------------------------------------------------------------------------------

BAD_RESULTS = [
    ({"studentSourcedId": "nobody"}, "unknown student 'nobody'"),
    ({"lineItemSourcedId": "li-x"}, "unknown line item 'li-x'"),
    ({"score": "12,5"}, "bad number in score '12,5'"),
    ({"score": "NaN"}, "bad number in score 'NaN'"),
    ({"scoreDate": "2024-02-30"}, "bad date in scoreDate '2024-02-30'"),
    ({"scoreDate": "16/01/2024"}, "bad date in scoreDate '16/01/2024'"),
    # a real day, but outside what the score tables hold (1900 to 2199)
    ({"scoreDate": "1850-01-16"}, "scoreDate out of range: '1850-01-16'"),
    ({"scoreDate": "2300-01-16T10:00:00Z"}, "scoreDate out of range: '2300-01-16T10:00:00Z'"),
    ({"status": "archived"}, "unknown status 'archived'"),
    ({"scoreStatus": "graded"}, "unknown scoreStatus 'graded'"),
    ({"score": "-1"}, "score out of range"),
    ({"score": "2000"}, "score out of range"),
    ({"score": ""}, "fully graded without a score"),
    ({"scoreDate": ""}, "fully graded without a scoreDate"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_RESULTS, ids=[r for _, r in BAD_RESULTS])
def test_a_bad_result_row_refuses_the_import_and_nothing_is_written(conn, tmp_path, change, reason):
    s = generate(seed=6, students=8, classes=1, items_per_class=3)
    run(conn, s.write(tmp_path / "first"))
    before = snapshot(conn)
    target = next(i for i, r in enumerate(s.results) if r["scoreStatus"] == "fully graded")
    s.results[target].update(change)
    other = next(r for r in s.results if r["scoreStatus"] == "fully graded" and r is not s.results[target])
    other["score"] = "1"  # a good change that must not be written either
    s.users[0]["givenName"] = "Renamed"
    with pytest.raises(BadRowsRefused) as refused:
        run(conn, s.write(tmp_path / "bad"))
    bad = refused.value.summary.bad_rows
    assert [(b.file, b.line, b.sourced_id) for b in bad] == [
        ("results.csv", target + 2, s.results[target]["sourcedId"])
    ]
    assert bad[0].reason.startswith(reason)
    assert snapshot(conn) == before


def test_bad_rows_in_other_files_name_file_line_and_sourced_id(conn, tmp_path):
    s = generate(seed=8, students=5, classes=1, items_per_class=2)
    s.users[1]["metadata.timeZone"] = "Mars/Olympus"
    s.line_items[0]["resultValueMax"] = "ten"
    s.line_items[1]["classSourcedId"] = "cls-none"
    s.classes.append(dict(s.classes[0]))  # a duplicate sourcedId
    with pytest.raises(BadRowsRefused) as refused:
        run(conn, s.write(tmp_path / "bad"))
    found = {(b.file, b.line, b.sourced_id): b.reason for b in refused.value.summary.bad_rows}
    assert found[("users.csv", 3, s.users[1]["sourcedId"])] == "unknown time zone 'Mars/Olympus'"
    assert found[("lineItems.csv", 2, s.line_items[0]["sourcedId"])] == "bad number in resultValueMax 'ten'"
    assert found[("lineItems.csv", 3, s.line_items[1]["sourcedId"])] == "unknown class 'cls-none'"
    assert found[("classes.csv", 3, s.classes[0]["sourcedId"])] == "duplicate sourcedId (first on line 2)"
    assert all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in TABLES)


def test_names_with_control_characters_are_bad_rows_not_imported(conn, tmp_path, db_url, monkeypatch, capsys):
    # A school's SIS must not be able to put CR/LF into a name (a guardian's reaches the To: header).
    s = generate(seed=9, students=4, classes=2, items_per_class=2, version="1.2")
    student, other = [i for i, u in enumerate(s.users) if u["role"] == "student"][:2]
    guardian = next(i for i, u in enumerate(s.users) if u["role"] in ("parent", "guardian"))
    s.users[student]["givenName"] = "Evil\r\nBcc: x@evil.example"
    s.users[guardian]["familyName"] = "Tab\tname"
    s.classes[1]["title"] = "Maths\x0bA"  # (leading and trailing whitespace is stripped when read)
    s.users[other]["preferredGivenName"] = "Line\u2028sep"
    with pytest.raises(BadRowsRefused) as refused:
        run(conn, s.write(tmp_path / "bad"))
    found = {(b.file, b.line, b.sourced_id): b.reason for b in refused.value.summary.bad_rows}
    # (and the rows that name them: "unknown student", "unknown class"); lines are the file's lines, and
    # the first student's record spans two (its CR/LF is inside a quoted field)
    assert (student, guardian, other) == (0, 1, 3)
    assert {k: v for k, v in found.items() if "control" in v} == {
        ("users.csv", 2, s.users[student]["sourcedId"]): "control character in givenName",
        ("users.csv", 4, s.users[guardian]["sourcedId"]): "control character in familyName",
        ("users.csv", 6, s.users[other]["sourcedId"]): "control character in preferredGivenName",
        ("classes.csv", 3, s.classes[1]["sourcedId"]): "control character in title",
    }
    assert all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in TABLES)
    # the CLI: exit 1 and the rows named, as every bad row
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert (
        main(["import", "oneroster", str(tmp_path / "bad"), "--quiet", "--report", str(tmp_path / "report.csv")]) == 1
    )
    assert "control character in givenName" in capsys.readouterr().err


def test_skip_bad_rows_imports_the_good_ones_and_writes_the_report(conn, tmp_path, db_url, monkeypatch, capsys):
    s = generate(seed=12, students=8, classes=1, items_per_class=3)
    bad = next(r for r in s.results if r["scoreStatus"] == "fully graded")
    bad["score"] = "lots"
    path = s.write(tmp_path / "set")
    monkeypatch.setenv("DATABASE_URL", db_url)
    report = tmp_path / "report.csv"
    assert main(["import", "oneroster", str(path), "--quiet", "--report", str(report)]) == 1
    assert "Nothing imported: 1 bad row(s)" in capsys.readouterr().err
    assert conn.execute("select count(*) from oneroster_result").fetchone()[0] == 0
    assert main(["import", "oneroster", str(path), "--quiet", "--skip-bad-rows", "--report", str(report)]) == 0
    rows = list(csv.DictReader(report.open()))
    assert rows == [
        {
            "file": "results.csv",
            "line": str(s.results.index(bad) + 2),
            "sourcedId": bad["sourcedId"],
            "reason": "bad number in score 'lots'",
        }
    ]
    s.results.remove(bad)
    assert_exact(conn, s)
    # A result already imported turns bad: skipped, its row stays as it was, the others still update.
    known = next(r for r in s.results if r["scoreStatus"] == "fully graded")
    known_before = dict(known)
    known.update(score="n/a", scoreDate="31/12/2024")
    other = next(r for r in s.results if r["scoreStatus"] == "fully graded" and r is not known)
    other["score"] = "0"
    assert (
        main(
            [
                "import",
                "oneroster",
                str(s.write(tmp_path / "again")),
                "--quiet",
                "--skip-bad-rows",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    assert [r["sourcedId"] for r in csv.DictReader(report.open())] == [known["sourcedId"]]
    known.update(known_before)
    assert_exact(conn, s)


def write_spec_copy(tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(SPEC_SET, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


MALFORMED = {
    "no manifest": lambda d: (d / "manifest.csv").unlink(),
    "wrong version": lambda d: edit(d / "manifest.csv", "oneroster.version,1.1", "oneroster.version,1.0"),
    "wrong manifest version": lambda d: edit(d / "manifest.csv", "manifest.version,1.0", "manifest.version,2.0"),
    "wrong manifest header": lambda d: edit(d / "manifest.csv", "propertyName,value", "name,value"),
    "unknown mode": lambda d: edit(d / "manifest.csv", "file.results,bulk", "file.results,full"),
    "listed file missing": lambda d: (d / "results.csv").unlink(),
    "missing column": lambda d: edit(d / "results.csv", ",scoreStatus,", ",status2,"),
    "not utf-8": lambda d: (d / "users.csv").write_bytes((d / "users.csv").read_bytes().replace(b"Jane", b"J\xe9ne")),
    "unterminated quote": lambda d: edit(d / "classes.csv", '"09,10"', '"09,10'),
    "1.2 users without roles": lambda d: (
        edit(d / "manifest.csv", "oneroster.version,1.1", "oneroster.version,1.2"),
        edit(d / "users.csv", ",role,", ",roleX,"),
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_input_exits_2_and_writes_nothing(conn, tmp_path, db_url, monkeypatch, capsys, case):
    path = write_spec_copy(tmp_path)
    MALFORMED[case](path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["import", "oneroster", str(path), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("Nothing imported: ")
    assert all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in TABLES)


def test_a_manifest_without_manifest_version_is_read_as_1_0(conn, tmp_path, db_url, monkeypatch):
    path = write_spec_copy(tmp_path)
    edit(path / "manifest.csv", "manifest.version,1.0\n", "")
    assert "manifest.version" not in (path / "manifest.csv").read_text()
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["import", "oneroster", str(path), "--quiet"]) == 0
    assert conn.execute("select count(*) from oneroster_result").fetchone()[0] > 0


def test_cli_exit_codes_for_paths_and_settings(conn, tmp_path, db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["import", "oneroster", str(tmp_path / "nowhere"), "--quiet"]) == 2
    (tmp_path / "not.zip").write_text("hello")
    assert main(["import", "oneroster", str(tmp_path / "not.zip"), "--quiet"]) == 2
    assert main(["import", "oneroster", str(SPEC_SET), "--quiet", "--time-zone", "Nowhere/City"]) == 2
    assert main(["import", "oneroster", str(SPEC_SET), "--quiet", "--timezone", "Nowhere/City"]) == 2
    bad_map = tmp_path / "map.csv"
    bad_map.write_text("category,kind\nHomework,essay\n")
    assert main(["import", "oneroster", str(SPEC_SET), "--quiet", "--category-map", str(bad_map)]) == 2
    assert all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in TABLES)
    assert main(["import", "oneroster", str(SPEC_SET), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "OneRoster 1.1 from source 'example-sis'" in out and "quiz_attempt: 4 inserted" in out


def test_a_zip_with_the_files_in_one_folder_is_read(conn, tmp_path):
    archive = tmp_path / "export.zip"
    import zipfile

    with zipfile.ZipFile(archive, "w") as z:
        for path in SPEC_SET.iterdir():
            z.write(path, f"export-2024-01-20/{path.name}")
    summary = run(conn, archive)
    assert summary.rows_read["results"] == 8 and summary.bad_rows == []
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 4


def test_with_invalid_input_in_python_the_error_is_input_error(conn, tmp_path):
    with pytest.raises(InputError, match="no manifest.csv"):
        run(conn, tmp_path)


def test_no_statement_of_a_bulk_reimport_rescans_a_staging_table_per_row(conn, tmp_path, monkeypatch):
    # At district scale (960,000 results) "is this sourcedId still listed?", one of an OR of subqueries, was
    # planned as a subquery run for every mapping row, each a sequential scan of the staging table: hours.
    # Each statement's plan, explained just before it runs, must not hold one.
    from web.oneroster import importer

    plans = {}
    run_statement = importer.Import.x

    def explain_then_run(self, query, params=None):
        if re.match(r"\s*(create temp table \w+ on commit drop as\s|delete|update|insert|select)", query, re.I):
            plan = self.cur.execute("explain " + query, self.params(params)).fetchall()
            plans[" ".join(query.split())[:120]] = "\n".join(r[0] for r in plan)
        return run_statement(self, query, params)

    s = generate(seed=13, students=60, classes=6, items_per_class=12)
    path = s.write(tmp_path / "set")
    run(conn, path)
    monkeypatch.setattr(importer.Import, "x", explain_then_run)
    assert run(conn, path).written == 0
    assert any("oneroster_result" in q for q in plans)
    rescans = {
        q: plan
        for q, plan in plans.items()
        if re.search(r"(?<!hashed )SubPlan \d+[^\n]*\n\s*->  Seq Scan on (stg|v)_", plan)
    }
    assert rescans == {}


# -- issue 22 ----------------------------------------------------------------------------------------------------


def test_an_empty_or_unknown_mode_of_a_file_not_read_is_a_warning(conn, tmp_path, db_url, monkeypatch, capsys):
    # Moodle's enrol_oneroster fixtures (v1p2_full_dataset.zip) leave these three empty in a 1.2 manifest.
    s = generate(seed=21, version="1.2", students=4, classes=1, items_per_class=2)
    path = s.write(tmp_path / "set")
    with open(path / "manifest.csv", "a", newline="", encoding="utf-8") as f:
        f.write("file.scoreScales,\nfile.userProfiles,\nfile.userResources,\nfile.courseResources,sometimes\n")
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["import", "oneroster", str(path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: manifest.csv: file.scoreScales is '' (not bulk, delta or absent); not read, taken as absent" in err
    assert "file.courseResources is 'sometimes'" in err
    assert_exact(conn, s)


@pytest.mark.parametrize("value", ["", "full"])
def test_an_empty_or_unknown_mode_of_a_file_the_import_reads_still_refuses(
    conn, tmp_path, db_url, monkeypatch, capsys, value
):
    path = write_spec_copy(tmp_path)
    edit(path / "manifest.csv", "file.results,bulk", f"file.results,{value}")
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["import", "oneroster", str(path), "--quiet"]) == 2
    assert f"file.results must be bulk, delta or absent, found '{value}'" in capsys.readouterr().err
    assert all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in TABLES)


def write_with_own_ids(conn, offset: int) -> dict[str, list[int]]:
    """A writer's rows with ids it chose (the writer contract allows it): just above what each table holds,
    and one far above; plus a student, guardian and course whose id the database chooses after them."""
    chosen: dict[str, list[int]] = {}
    for table in ("student_profile", "guardian", "course", "quiz_attempt", "assignment_submission"):
        top = conn.execute(f"select coalesce(max(id), 0) from {table}").fetchone()[0]
        chosen[table] = [top + 1, top + 2, top + offset]
    for sid in chosen["student_profile"]:
        conn.execute("insert into student_profile (id, display_name) values (%s, %s)", (sid, f"Own {sid}"))
    for gid in chosen["guardian"]:
        conn.execute("insert into guardian (id, email) values (%s, %s)", (gid, f"own-{gid}@example.org"))
    for cid in chosen["course"]:
        conn.execute("insert into course (id, name) values (%s, %s)", (cid, f"Own course {cid}"))
    sid = chosen["student_profile"][0]
    for qid in chosen["quiz_attempt"]:
        conn.execute(
            "insert into quiz_attempt (id, student_profile_id, score, completed_at)"
            " values (%s, %s, 80, '2024-01-16 10:00+00')",
            (qid, sid),
        )
    for aid in chosen["assignment_submission"]:
        conn.execute(
            "insert into assignment_submission (id, student_profile_id, percentage, is_graded, graded_at)"
            " values (%s, %s, 70, true, '2024-01-17 10:00+00')",
            (aid, sid),
        )
    # A writer that lets the database choose, after another chose: no collision either.
    chosen["student_profile"].append(add_student(conn, "Default id"))
    chosen["course"].append(add_course_row(conn))
    chosen["guardian"].append(add_guardian(conn, f"default-{offset}@example.org"))
    return chosen


def add_course_row(conn) -> int:
    return conn.execute("insert into course (name) values ('Default id') returning id").fetchone()[0]


def test_ids_writers_chose_never_collide_with_the_imports(conn, tmp_path):
    # Before any import, between imports and after them, writers insert rows with ids they chose.
    chosen = [write_with_own_ids(conn, 50)]
    s = generate(seed=22, students=6, classes=2, items_per_class=3)
    assert run(conn, s.write(tmp_path / "a"), source="district-a").bad_rows == []
    chosen.append(write_with_own_ids(conn, 1000))
    assert run(conn, s.write(tmp_path / "b"), source="district-b").bad_rows == []
    # A later import of a source with new students, classes and results (the same source: its own rows move on).
    more = generate(seed=23, students=8, classes=3, items_per_class=3)
    assert run(conn, more.write(tmp_path / "c"), source="district-a").written > 0
    chosen.append(write_with_own_ids(conn, 10))
    for batch in chosen:
        for table, ids in batch.items():
            assert conn.execute(f"select count(*) from {table} where id = any(%s)", (ids,)).fetchone()[0] == len(ids)
    # district-a's first six are no longer listed: marked left, kept until the purge erases them
    assert conn.execute("select count(*) from oneroster_student").fetchone()[0] == 6 + 6 + 8
    assert drift(conn) == []


def test_an_explicit_id_moves_the_sequence_forward_never_back(conn):
    conn.execute("insert into student_profile (id, display_name) values (100, 'Chosen')")
    assert add_student(conn) == 101
    conn.execute("insert into student_profile (id, display_name) values (5, 'Chosen low'), (7, 'Chosen low')")
    assert add_student(conn) == 102
    # One statement of several rows: past the highest of them.
    conn.execute("insert into course (id, name) values (40, 'a'), (30, 'b')")
    assert add_course_row(conn) == 41
    # The score tables have no trigger (their write path stays as it was): the import moves them on.
    conn.execute("select advance_id_sequence('quiz_attempt', 500)")
    assert conn.execute("select nextval(pg_get_serial_sequence('quiz_attempt', 'id'))").fetchone()[0] == 501
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("select advance_id_sequence('oneroster_result', 5)")


def bomb(tmp_path: Path, copies: int) -> Path:
    """A small zip whose results.csv repeats one row `copies` times: every copy after the first a bad row."""
    import zipfile

    s = generate(seed=24, students=2, classes=1, items_per_class=1)
    folder = s.write(tmp_path / "bomb")
    lines = (folder / "results.csv").read_text().splitlines(keepends=True)
    with open(folder / "results.csv", "a", encoding="utf-8") as f:
        f.write(lines[1] * copies)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for path in sorted(folder.iterdir()):
            z.write(path, path.name)
    return archive


def test_a_hostile_import_keeps_memory_bounded_and_reports_the_count(conn, tmp_path, db_url, monkeypatch, capsys):
    import tracemalloc

    archive = bomb(tmp_path, 150_000)
    assert archive.stat().st_size < 200_000
    monkeypatch.setenv("DATABASE_URL", db_url)
    report = tmp_path / "report.csv"
    tracemalloc.start()
    try:
        status = main(["import", "oneroster", str(archive), "--quiet", "--report", str(report)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 1
    err = capsys.readouterr().err
    assert "Nothing imported: 150,000 bad row(s)" in err
    assert "the first 1,000 of them" in err
    rows = list(csv.DictReader(report.open()))
    assert len(rows) == 1000 and rows[0]["reason"].startswith("duplicate sourcedId (first on line 2)")
    # Every bad row held in Python took hundreds of bytes each (2.8 GB at 209 MB of rows); the first 1,000 do not.
    assert peak < 20_000_000, f"{peak:,} bytes at the peak"


def test_an_import_over_the_size_limit_exits_2_before_writing(conn, tmp_path, db_url, monkeypatch, capsys):
    archive = bomb(tmp_path, 100_000)  # about 5 MB of results.csv in a zip of a few kB
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["import", "oneroster", str(archive), "--quiet", "--max-size", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Nothing imported: ") and "over the limit of 2 MB" in err and "--max-size" in err
    assert all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in TABLES)
    # The environment sets the default; a bad value is refused with its name.
    monkeypatch.setenv("WEEKLY_TRENDS_IMPORT_MAX_MB", "2")
    assert main(["import", "oneroster", str(archive), "--quiet"]) == 2
    assert "over the limit of 2 MB" in capsys.readouterr().err
    monkeypatch.setenv("WEEKLY_TRENDS_IMPORT_MAX_MB", "lots")
    assert main(["import", "oneroster", str(archive), "--quiet"]) == 2
    assert "WEEKLY_TRENDS_IMPORT_MAX_MB must be an integer from 1 to 1048576" in capsys.readouterr().err
    monkeypatch.delenv("WEEKLY_TRENDS_IMPORT_MAX_MB")
    # Under the default: read, and the rows refused.
    assert main(["import", "oneroster", str(archive), "--quiet", "--report", str(tmp_path / "r.csv")]) == 1


def test_the_size_limit_holds_when_the_sizes_given_are_wrong(conn, tmp_path, monkeypatch):
    # The sizes a zip's directory states are not trusted alone: the bytes are counted as they are read.
    from web.oneroster.reader import CsvSet

    archive = bomb(tmp_path, 100_000)
    monkeypatch.setattr(CsvSet, "size", lambda self, name: 1)
    with pytest.raises(InputError, match="over the limit of 2 MB"):
        run(conn, archive, max_megabytes=2)
    assert all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in TABLES)


def test_a_nul_character_in_a_field_is_a_bad_row_that_can_be_skipped(conn, tmp_path, db_url, monkeypatch, capsys):
    s = generate(seed=25, students=8, classes=1, items_per_class=3)
    graded = [r for r in s.results if r["scoreStatus"] == "fully graded"]
    graded[0]["score"] = "8\x000"
    graded[1]["sourcedId"] = graded[1]["sourcedId"] + "\x00"
    path = s.write(tmp_path / "set")
    monkeypatch.setenv("DATABASE_URL", db_url)
    report = tmp_path / "report.csv"
    assert main(["import", "oneroster", str(path), "--quiet", "--report", str(report)]) == 1
    assert "Nothing imported: 2 bad row(s)" in capsys.readouterr().err
    assert all(conn.execute(f"select count(*) from {t}").fetchone()[0] == 0 for t in TABLES)
    assert main(["import", "oneroster", str(path), "--quiet", "--skip-bad-rows", "--report", str(report)]) == 0
    rows = list(csv.DictReader(report.open()))
    assert [(r["line"], r["reason"]) for r in rows] == [
        (str(s.results.index(r) + 2), "a NUL character (0x00) in a field") for r in graded[:2]
    ]
    assert "\x00" not in report.read_text()
    s.results.remove(graded[0])
    s.results.remove(graded[1])
    assert_exact(conn, s)
    # In the operator's category mapping a NUL is bad input (exit 2), not a failed COPY.
    mapping = tmp_path / "map.csv"
    mapping.write_text("category,kind\nHome\x00work,quiz\n")
    assert main(["import", "oneroster", str(path), "--quiet", "--category-map", str(mapping)]) == 2
    assert "map.csv line 2" in capsys.readouterr().err
