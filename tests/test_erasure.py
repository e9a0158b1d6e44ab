"""Issue 25 items 6 and 7: erasure (every row about a student, a certificate, a tombstone) and retention
(`weekly-trends purge`)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg import errors, sql

from web.ops.cli import main

from factories import add_assignment, add_course, add_guardian, add_quiz, add_student, assert_exact, drift

NAME = "Quillon Erasable"
SOLE_EMAIL = "sole.guardian@example.org"
SHARED_EMAIL = "shared.guardian@example.org"


@pytest.fixture
def school(conn, db_url, monkeypatch):
    """The student to erase (NAME) with a sole-child guardian and a guardian who has another child; a
    classmate in the same course; staff reads, a digest, record entries, an import mapping."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    course = add_course(conn, "Chemistry")
    s = add_student(conn, NAME, "Europe/Paris")
    other = add_student(conn, "Olga Keeper")
    sole = add_guardian(conn, SOLE_EMAIL, s)
    shared = add_guardian(conn, SHARED_EMAIL, s, other)
    for sid, score in ((s, 40), (other, 80)):
        add_quiz(conn, sid, score, datetime(2024, 3, 5, 10, tzinfo=UTC), course_id=course)
        add_assignment(conn, sid, score, graded_at=datetime(2024, 3, 6, 10, tzinfo=UTC), course_id=course)
    conn.execute("select refresh_course_weekly_performance()")
    for g in (sole, shared):
        conn.execute("select issue_guardian_token(%s)", (g,))
        conn.execute("insert into guardian_mail_preference (guardian_id, weekly_digest) values (%s, false)", (g,))
        conn.execute(
            "insert into digest_delivery (guardian_id, iso_year, iso_week, outcome, message_id, sent_at)"
            " values (%s, 2024, 10, 'sent', '<m@x>', now())",
            (g,),
        )
    member = conn.execute("insert into staff_member (email, display_name) values ('t@s.example', 'T') returning id")
    member = member.fetchone()[0]
    with conn.transaction():
        conn.execute("select set_config('app.staff_member_id', %s, true)", (str(member),))
        conn.execute("select log_access(%s, 'GET /staff/students/<student_id>')", (s,))
    conn.execute("select append_access_record(%s, 'export', 'Office', 'school', 'Exported')", (s,))
    conn.execute(
        "insert into oneroster_student (source, sourced_id, student_profile_id) values ('sis', 'stu-1', %s)", (s,)
    )
    return {"conn": conn, "student": s, "other": other, "sole": sole, "shared": shared, "course": course}


def class_average(conn, course) -> float:
    return conn.execute(
        "select class_average from course_weekly_performance where course_id = %s", (course,)
    ).fetchone()[0]


def student_columns(conn) -> list[tuple[str, str]]:
    """Every column of every table that refers to students: a foreign key to student_profile, or the name."""
    return conn.execute("""
        select c.relname, a.attname
          from pg_attribute a join pg_class c on c.oid = a.attrelid
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'm')
           and a.attnum > 0 and not a.attisdropped
           and (a.attname in ('student_profile_id', 'student_id')
                or exists (select from pg_constraint k where k.conrelid = a.attrelid and k.contype = 'f'
                           and k.confrelid = 'student_profile'::regclass and a.attnum = any(k.conkey))
                or (c.relname = 'student_profile' and a.attname = 'id'))
    """).fetchall()


def text_hits(conn, needle: str) -> list[str]:
    """Tables whose any row, as text, holds needle (every table and column of the catalogue)."""
    hits = []
    tables = conn.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p', 'm')"
        " and (relkind <> 'm' or relispopulated)"
    ).fetchall()
    for (table,) in tables:
        found = conn.execute(
            sql.SQL("select exists (select from {} t where t::text ilike %s)").format(sql.Identifier(table)),
            (f"%{needle}%",),
        ).fetchone()[0]
        if found:
            hits.append(table)
    return hits


def test_erase_deletes_every_row_about_the_student(school, capsys):
    conn, s = school["conn"], school["student"]
    before = class_average(conn, school["course"])
    assert main(["erase", "--student-id", str(s), "--reason", "request 2024-17", "--yes"]) == 0
    certificate = json.loads(capsys.readouterr().out)
    for table, column in student_columns(conn):
        found = conn.execute(
            sql.SQL("select count(*) from {} where {} = %s").format(sql.Identifier(table), sql.Identifier(column)),
            (s,),
        ).fetchone()[0]
        assert found == 0, (table, column)
    assert text_hits(conn, NAME) == []
    assert text_hits(conn, SOLE_EMAIL) == []
    assert text_hits(conn, "stu-1") == []
    # The guardian with another child stays, their other child untouched.
    assert conn.execute("select count(*) from guardian where email = %s", (SHARED_EMAIL,)).fetchone()[0] == 1
    assert (
        conn.execute("select count(*) from guardian_token where guardian_id = %s", (school["shared"],)).fetchone()[0]
        == 1
    )
    # The class view recomputed in the same command: the classmate alone now.
    assert class_average(conn, school["course"]) != before
    assert float(class_average(conn, school["course"])) == 80.0
    assert drift(conn) == []
    # The certificate: rows per table, no personal data; kept in the database.
    rows = certificate["rows_deleted"]
    assert rows["student_profile"] == 1 and rows["quiz_attempt"] == 1 and rows["guardian"] == 1
    assert rows["access_log"] == 1 and rows["access_record"] == 1 and rows["oneroster_student"] == 1
    assert certificate["reason"] == "request 2024-17"
    kept = conn.execute("select rows_deleted, reason from erasure_certificate").fetchall()
    assert kept == [(rows, "request 2024-17")]
    text = json.dumps(certificate)
    assert NAME not in text and SOLE_EMAIL not in text and f'"{s}"' not in text
    assert conn.execute("select count(*) from erased_source_record").fetchone()[0] == 1


def test_pg_dump_after_erasure_holds_none_of_it(school, db_url):
    from db.schema_dump import pg_dump_binary

    assert main(["erase", "--student-id", str(school["student"]), "--reason", "request", "--yes"]) == 0
    major = school["conn"].info.server_version // 10000
    done = subprocess.run(
        [pg_dump_binary(major), "--data-only", db_url], capture_output=True, text=True, timeout=120, check=True
    )
    assert NAME not in done.stdout and SOLE_EMAIL not in done.stdout and "stu-1" not in done.stdout
    assert "Olga Keeper" in done.stdout  # the dump is real


def test_erase_asks_for_confirmation_without_yes(school, monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    assert main(["erase", "--student-id", str(school["student"]), "--reason", "r"]) == 1
    assert school["conn"].execute("select count(*) from student_profile").fetchone()[0] == 2
    monkeypatch.setattr("builtins.input", lambda prompt="": "erase")
    assert main(["erase", "--student-id", str(school["student"]), "--reason", "r"]) == 0


def test_erase_refuses_unknown_students_and_empty_reasons(school, capsys):
    assert main(["erase", "--student-id", "987654", "--reason", "r", "--yes"]) == 1
    assert "No student" in capsys.readouterr().err
    assert main(["erase", "--student-id", str(school["student"]), "--reason", " ", "--yes"]) == 2
    assert school["conn"].execute("select count(*) from student_profile").fetchone()[0] == 2


def test_erasure_covers_a_table_added_later_through_its_foreign_key(school):
    conn = school["conn"]
    conn.execute(
        "create table staff_note (id bigint generated always as identity primary key,"
        " student_profile_id bigint references student_profile (id) on delete set null, body text)"
    )
    conn.execute("create table later_log (student_profile_id bigint, what text)")
    conn.execute("insert into staff_note (student_profile_id, body) values (%s, 'about Q')", (school["student"],))
    conn.execute("insert into later_log values (%s, 'x')", (school["student"],))
    certificate = conn.execute("select erase_student(%s, 'request', 'operator')", (school["student"],)).fetchone()[0]
    assert certificate["rows_deleted"]["staff_note"] == 1 and certificate["rows_deleted"]["later_log"] == 1
    assert conn.execute("select count(*) from staff_note").fetchone()[0] == 0


# ---- the import's tombstone ----


def oneroster_set(tmp_path: Path) -> Path:
    from oneroster_gen import OneRosterSet

    users = [
        {"sourcedId": "stu-1", "role": "student", "givenName": "Quillon", "familyName": "Erasable"},
        {"sourcedId": "stu-2", "role": "student", "givenName": "Rita", "familyName": "Stays"},
    ]
    return OneRosterSet(system_code="sis", users=users).write(tmp_path / "set", only=("users",))


def test_a_later_import_reports_the_erased_student_and_does_not_bring_them_back(school, tmp_path, capsys):
    conn = school["conn"]
    assert main(["erase", "--student-id", str(school["student"]), "--reason", "request", "--yes"]) == 0
    capsys.readouterr()
    folder = oneroster_set(tmp_path)
    assert main(["import", "oneroster", str(folder), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 erased student(s) not imported" in out
    assert conn.execute("select count(*) from student_profile where display_name = %s", (NAME,)).fetchone()[0] == 0
    assert conn.execute("select count(*) from student_profile where display_name = 'Rita Stays'").fetchone()[0] == 1
    assert main(["import", "oneroster", str(folder), "--quiet", "--allow-erased"]) == 0
    assert conn.execute("select count(*) from student_profile where display_name = %s", (NAME,)).fetchone()[0] == 1
    assert conn.execute("select count(*) from erased_source_record").fetchone()[0] == 0


# ---- retention ----

NOW = datetime(2027, 6, 2, 12, tzinfo=UTC)


@pytest.fixture
def aged(conn, db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    old, recent, empty = (
        add_student(conn, "Old Scores"),
        add_student(conn, "Recent Scores"),
        add_student(conn, "No Scores"),
    )
    g = add_guardian(conn, "g@example.org", old, recent)
    add_quiz(conn, old, 50, NOW - timedelta(days=4 * 365))
    add_quiz(conn, old, 70, NOW - timedelta(days=10))
    add_quiz(conn, recent, 60, NOW - timedelta(days=3))
    conn.execute("update student_profile set created_at = %s", (NOW - timedelta(days=5 * 365),))
    conn.execute(
        "insert into guardian_token (guardian_id, token_hash, created_at, expires_at) values (%s, '\\x00', %s, %s)",
        (g, NOW - timedelta(days=200), NOW - timedelta(days=100)),
    )
    conn.execute(
        "insert into digest_delivery (guardian_id, iso_year, iso_week, outcome) values (%s, 2022, 3, 'skipped')", (g,)
    )
    return {"conn": conn, "old": old, "recent": recent, "empty": empty}


def purge(conn, dry_run=False) -> dict:
    return dict(
        conn.execute(
            "select what, rows from purge_family_record('3 years', '90 days', %s, %s)", (NOW, dry_run)
        ).fetchall()
    )


def test_purge_deletes_what_is_past_retention_and_is_idempotent(aged):
    conn = aged["conn"]
    dry = purge(conn, dry_run=True)
    assert dry["quiz_attempt"] == 1 and dry["students erased"] == 1
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 3  # the dry run wrote nothing
    done = purge(conn)
    assert done == dry
    assert done["guardian_token"] == 1 and done["digest_delivery"] == 1
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 2
    assert conn.execute("select display_name from student_profile order by id").fetchall() == [
        ("Old Scores",),
        ("Recent Scores",),
    ]
    assert conn.execute("select kind from erasure_certificate").fetchall() == [("retention",)]
    assert_exact(conn)
    assert conn.execute("select count(*) from check_weekly_performance()").fetchone()[0] == 0
    assert purge(conn) == {"students erased": 0}


def test_purge_takes_the_kept_walk_states_of_the_students_whose_weeks_it_removes(aged):
    # A kept state (the teacher's list's, alert_walk_checkpoint) holds the last six weekly averages: once
    # the old weeks go, their averages must not stay in it. The next list walks the weeks left again.
    conn, old, recent = aged["conn"], aged["old"], aged["recent"]
    conn.execute(
        "insert into alert_walk_checkpoint (student_profile_id, state, computed_in)"
        " select s, row(date '2027-05-10', 10, 2, 6, 'normal', null, null, false, 0,"
        "               array[50, 0, 0, 0, 0, 0]::numeric[], 1, 50)::alert_walk_state, pg_current_snapshot()"
        "   from unnest(%s::bigint[]) s",
        ([old, recent],),
    )
    assert purge(conn, dry_run=True)["alert_walk_checkpoint"] == 1
    assert conn.execute("select count(*) from alert_walk_checkpoint").fetchone()[0] == 2  # a dry run
    assert purge(conn)["alert_walk_checkpoint"] == 1
    assert conn.execute("select student_profile_id from alert_walk_checkpoint").fetchall() == [(recent,)]


def test_the_purge_command_prints_and_honours_the_settings(aged, monkeypatch, capsys):
    conn = aged["conn"]
    monkeypatch.delenv("WEEKLY_TRENDS_RETENTION", raising=False)
    assert main(["purge", "--dry-run"], clock=lambda: NOW) == 0
    out = capsys.readouterr().out
    assert "Dry run" in out and "quiz_attempt" not in out  # retention unset: scores are kept
    monkeypatch.setenv("WEEKLY_TRENDS_RETENTION", "3 years")
    assert main(["purge"], clock=lambda: NOW) == 0
    assert "quiz_attempt: 1" in capsys.readouterr().out
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == 2
    monkeypatch.setenv("WEEKLY_TRENDS_RETENTION", "forever")
    assert main(["purge"], clock=lambda: NOW) == 2
    assert "WEEKLY_TRENDS_RETENTION" in capsys.readouterr().err


def test_erase_is_refused_to_the_app_roles(school):
    conn = school["conn"]
    with conn.transaction():
        conn.execute("set local role weekly_trends_staff")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select erase_student(%s, 'r', 'x')", (school["student"],))
        from psycopg import Rollback

        raise Rollback()


def test_the_staff_page_erases_with_confirmation(client, school):
    conn, s = school["conn"], school["student"]
    member = conn.execute(
        "insert into staff_member (email, display_name) values ('o@s.example', 'Office') returning id"
    )
    token = conn.execute("select issue_staff_token(%s)", (member.fetchone()[0],)).fetchone()[0]
    auth = {"Authorization": f"Bearer {token}"}
    page = client.get(f"/staff/students/{s}", headers=auth).get_data(as_text=True)
    assert f'action="/staff/students/{s}/erase"' in page
    # No confirmation, a wrong one, no reason: refused, nothing erased.
    for form in ({"reason": "request 9"}, {"reason": "request 9", "confirm": "999"}, {"confirm": str(s)}):
        assert client.post(f"/staff/students/{s}/erase", data=form, headers=auth).status_code == 400
    assert conn.execute("select count(*) from student_profile where id = %s", (s,)).fetchone()[0] == 1
    r = client.post(f"/staff/students/{s}/erase", data={"reason": "request 9", "confirm": str(s)}, headers=auth)
    assert r.status_code == 303
    assert conn.execute("select count(*) from student_profile where id = %s", (s,)).fetchone()[0] == 0
    assert conn.execute("select erased_by, reason from erasure_certificate").fetchall() == [
        (f"staff member {member_id(conn)} (Office)", "request 9")
    ]
    assert (
        client.post(f"/staff/students/{s}/erase", data={"reason": "r", "confirm": str(s)}, headers=auth).status_code
        == 404
    )


def member_id(conn) -> int:
    return conn.execute("select id from staff_member where email = 'o@s.example'").fetchone()[0]


def test_purge_beside_a_writer_waits_for_it_and_leaves_every_week_exact(aged, db_url):
    import threading

    import psycopg

    conn, old = aged["conn"], aged["old"]
    with psycopg.connect(db_url) as writer:  # a transaction left open, as a slow import's
        writer.execute(
            "insert into quiz_attempt (student_profile_id, score, completed_at) values (%s, 90, %s)",
            (old, NOW - timedelta(days=4 * 365)),
        )
        result = {}

        def run() -> None:
            with psycopg.connect(db_url, autocommit=True) as other:
                result["done"] = purge(other)

        purger = threading.Thread(target=run)
        purger.start()
        purger.join(timeout=2)
        writer.commit()
    purger.join(timeout=60)
    assert not purger.is_alive()
    # The writer's old score committed first or after: either way the weeks left are exact.
    assert_exact(conn)
    again = purge(conn)
    assert again.get("quiz_attempt", 0) <= 1
    assert purge(conn) == {"students erased": 0}
    assert_exact(conn)


def test_purge_removes_the_entries_of_students_deleted_outside_the_erasure(aged):
    conn, recent = aged["conn"], aged["recent"]
    conn.execute("select append_access_record(%s, 'export', 'Office', 'school', 'Exported')", (recent,))
    conn.execute("delete from student_profile where id = %s", (recent,))  # as the import removes a student
    done = purge(conn)
    assert done["access_record"] == 1
    assert (
        conn.execute("select count(*) from access_record where student_profile_id = %s", (recent,)).fetchone()[0] == 0
    )


def add_alert(conn, guardian: int, student: int, subject: str, at: datetime) -> int:
    message = conn.execute(
        "insert into alert_message (guardian_id, outcome, attempts, message_id, created_at, updated_at, sent_at)"
        " values (%s, 'sent', 1, %s, %s, %s, %s) returning id",
        (guardian, f"<a.{subject}@x>", at, at, at),
    ).fetchone()[0]
    conn.execute(
        "insert into alert_delivery (guardian_id, student_profile_id, kind, subject, message, created_at)"
        " values (%s, %s, 'missing_work', %s, %s, %s)",
        (guardian, student, subject, message, at),
    )
    return message


def test_purge_ages_out_alerts_student_tokens_and_the_notes_of_students_who_left(aged):
    """Alert emails and the alerts they carried go after the retention, as digest deliveries do; student
    tokens 30 days after they expired or were revoked, as other tokens; a student who left goes with their
    staff notes after the grace. A second run deletes nothing."""
    conn, recent = aged["conn"], aged["recent"]
    g = conn.execute("select guardian_id from guardian_student where student_profile_id = %s", (recent,)).fetchone()[0]
    old_message = add_alert(conn, g, recent, "201", NOW - timedelta(days=4 * 365))
    new_message = add_alert(conn, g, recent, "202", NOW - timedelta(days=10))
    for name, expires, revoked in (
        ("expired", NOW - timedelta(days=100), None),
        ("revoked", NOW + timedelta(days=5), NOW - timedelta(days=40)),
        ("live", NOW + timedelta(days=5), None),
        ("just expired", NOW - timedelta(days=10), None),
    ):
        conn.execute(
            "insert into student_token (student_profile_id, token_hash, created_at, expires_at, revoked_at)"
            " values (%s, sha256(%s::bytea), %s, %s, %s)",
            (recent, name.encode(), NOW - timedelta(days=200), expires, revoked),
        )
    left = add_student(conn, "Gone Away")
    add_quiz(conn, left, 75, NOW - timedelta(days=200))
    member = conn.execute("insert into staff_member (email, display_name) values ('n@s.example', 'N') returning id")
    member = member.fetchone()[0]
    conn.execute(
        "insert into follow_up_note (student_profile_id, staff_member_id, kind, noted_on, note)"
        " values (%s, %s, 'met_student', '2027-01-10', 'Talked about leaving')",
        (left, member),
    )
    conn.execute("update student_profile set left_at = %s where id = %s", (NOW - timedelta(days=91), left))

    dry = purge(conn, dry_run=True)
    done = purge(conn)
    assert done == dry
    assert done["alert_delivery"] == 1 and done["alert_message"] == 1
    assert done["student_token"] == 2
    assert done["follow_up_note"] == 1
    assert conn.execute("select id from alert_message where id in (%s, %s)", (old_message, new_message)).fetchall() == [
        (new_message,)
    ]
    assert conn.execute("select subject from alert_delivery").fetchall() == [("202",)]
    assert sorted(r[0] for r in conn.execute("select expires_at > %s from student_token", (NOW,))) == [False, True]
    assert conn.execute("select count(*) from follow_up_note").fetchone()[0] == 0
    assert purge(conn) == {"students erased": 0}
    # However short the retention, the last five weeks' alerts stay: each alert is mailed once ever.
    short = conn.execute("select what from purge_family_record('1 day', '100 years', %s, true)", (NOW,))
    assert {"alert_delivery", "alert_message"}.isdisjoint(r[0] for r in short)
