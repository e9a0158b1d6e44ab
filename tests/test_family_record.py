"""Issue 25 items 4 and 5: the record of access a family sees, and the export of everything about a child."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from psycopg import errors

from web.ops.cli import main

from factories import add_course, add_guardian, add_quiz, add_student
from reference import WEEK_COLUMNS, Score, figures, iso_week_start, label

AT = datetime(2024, 2, 1, 12, tzinfo=UTC)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def staff_member(conn, name: str = "Ms Teacher") -> tuple[int, str]:
    member = conn.execute(
        "insert into staff_member (email, display_name) values ('t@school.example', %s) returning id", (name,)
    ).fetchone()[0]
    return member, conn.execute("select issue_staff_token(%s)", (member,)).fetchone()[0]


@pytest.fixture
def two_guardians(family):
    """Child a with guardian A (family's token) and a second guardian C (token of their own)."""
    conn = family["conn"]
    gc = add_guardian(conn, "c@example.org", family["a"])
    family["guardian_c"] = gc
    family["token_c"] = conn.execute("select issue_guardian_token(%s)", (gc,)).fetchone()[0]
    return family


def test_the_record_shows_staff_reads_with_name_and_role_newest_first(client, two_guardians):
    fam = two_guardians
    _, staff_token = staff_member(fam["conn"])
    assert client.get(f"/staff/students/{fam['a']}", headers=bearer(staff_token)).status_code == 200
    r = client.get(f"/api/v1/students/{fam['a']}/access-record", headers=bearer(fam["token"]))
    assert r.status_code == 200
    entries = r.get_json()["entries"]
    assert entries[0]["who"] == "Ms Teacher" and entries[0]["role"] == "staff"
    assert set(entries[0]) >= {"at", "who", "role", "what"}
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)


def test_never_another_guardians_own_activity_and_reads_are_recorded(client, two_guardians):
    fam = two_guardians
    conn = fam["conn"]
    # C signs in and downloads the export: C's own activity.
    assert client.get(f"/login?token={fam['token_c']}").status_code == 303
    assert client.get(f"/api/v1/students/{fam['a']}/export", headers=bearer(fam["token_c"])).status_code == 200
    mine_c = client.get(f"/api/v1/students/{fam['a']}/access-record", headers=bearer(fam["token_c"])).get_json()
    assert {e["kind"] for e in mine_c["entries"]} >= {"sign_in", "export"}
    seen_by_a = client.get(f"/api/v1/students/{fam['a']}/access-record", headers=bearer(fam["token"])).get_json()
    assert not [e for e in seen_by_a["entries"] if e["kind"] in ("sign_in", "export")]
    # Each read of the record is in the access log, as the reader's.
    logged = conn.execute(
        "select guardian_id from access_log where endpoint = 'GET /api/v1/students/<student_id>/access-record'"
        " order by id"
    ).fetchall()
    assert logged == [(fam["guardian_c"],), (fam["guardian"],)]


def test_the_record_is_refused_to_strangers_like_an_unknown_id(client, family):
    r = client.get(f"/api/v1/students/{family['b']}/access-record", headers=bearer(family["token"]))
    assert r.status_code == 404
    assert client.get(f"/api/v1/students/{family['a']}/access-record").status_code == 401
    assert client.get(f"/api/v1/students/{family['b']}/export", headers=bearer(family["token"])).status_code == 404
    assert client.get("/api/v1/students/x/access-record", headers=bearer(family["token"])).status_code in (400, 404)


def test_the_page_lists_the_entries(client, family):
    _, staff_token = staff_member(family["conn"], "Mr Counsellor")
    client.get(f"/staff/students/{family['a']}", headers=bearer(staff_token))
    r = client.get(f"/students/{family['a']}/access", headers=bearer(family["token"]))
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "Mr Counsellor" in page and 'name="viewport"' in page


def test_digests_and_imports_and_restrictions_appear(client, family):
    conn = family["conn"]
    conn.execute(
        "insert into digest_delivery (guardian_id, iso_year, iso_week, outcome, message_id, sent_at)"
        " values (%s, 2024, 5, 'sent', '<m@x>', %s)",
        (family["guardian"], AT),
    )
    # The insert point other features call (restrictions: 25a; imports: the OneRoster importer).
    conn.execute(
        "select append_access_record(%s, 'restriction_set', 'Office', 'staff', 'A restriction was set on one link')",
        (family["a"],),
    )
    kinds = {
        e["kind"]
        for e in client.get(
            f"/api/v1/students/{family['a']}/access-record", headers=bearer(family["token"])
        ).get_json()["entries"]
    }
    assert {"digest", "restriction_set"} <= kinds


@pytest.mark.parametrize("statement", ["update access_record set who = 'x'", "delete from access_record"])
def test_the_record_is_append_only_for_the_owner_too(family, statement):
    conn = family["conn"]
    conn.execute("select append_access_record(%s, 'export', 'Office', 'staff', 'Exported')", (family["a"],))
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute("truncate access_record")


def test_the_app_roles_cannot_write_the_record_directly(family):
    conn = family["conn"]
    for role in ("weekly_trends_reader", "weekly_trends_staff"):
        with conn.transaction():
            conn.execute(f"set local role {role}")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(
                    "insert into access_record (student_profile_id, kind, who, role, what) values (1, 'x', 'x', 'x', 'x')"
                )
            raise_rollback(conn)


def raise_rollback(conn):
    from psycopg import Rollback

    raise Rollback()


# ---- export ----


def scores_from_export(doc: dict) -> list[Score]:
    """The oracle's counted scores, read from the export alone (its rules: tests/reference.py)."""
    zone = doc["student"]["time_zone"]
    sid = doc["student"]["id"]
    scores = []
    for q in doc["quiz_attempts"]:
        final = q["teacher_score"] if q["teacher_score"] is not None else q["score"]
        if q["completed_at"] is not None and final is not None:
            at = datetime.fromisoformat(q["completed_at"])
            scores.append(Score(sid, q["course_id"], iso_week_start(at, zone), True, Decimal(str(final))))
    for a in doc["assignment_submissions"]:
        at = a["graded_at"] or a["submitted_at"]
        if a["is_graded"] and a["percentage"] is not None and at is not None:
            week = iso_week_start(datetime.fromisoformat(at), zone)
            scores.append(Score(sid, a["course_id"], week, False, Decimal(str(a["percentage"]))))
    return scores


def test_the_export_alone_gives_the_stored_weekly_figures(client, family):
    conn = family["conn"]
    course = add_course(conn, "Maths")
    add_quiz(conn, family["a"], 71, datetime(2024, 1, 22, 9, tzinfo=UTC), course_id=course, teacher_score=75)
    r = client.get(f"/api/v1/students/{family['a']}/export", headers=bearer(family["token"]))
    assert r.status_code == 200
    doc = r.get_json()
    groups = defaultdict(list)
    for s in scores_from_export(doc):
        groups[s.week].append(s)
    expected = {week: tuple((label(week) | figures(g))[c] for c in WEEK_COLUMNS) for week, g in groups.items()}
    stored = {
        date.fromisoformat(w["week_start_date"]): tuple(
            Decimal(str(w[c])) if isinstance(w[c], float) else w[c] for c in WEEK_COLUMNS
        )
        for w in doc["weekly_rows"]
    }
    assert expected and stored == expected
    assert [c["name"] for c in doc["courses"]] == ["Maths"]
    assert "token" not in json.dumps(doc).lower().replace("weekly-trends", "")
    # The guardian's download is in their own record.
    assert conn.execute("select kind, guardian_id from access_record").fetchall() == [("export", family["guardian"])]


def test_the_export_command_writes_the_same_document(conn, db_url, family, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    out = tmp_path / "a.json"
    assert main(["export", "--student-id", str(family["a"]), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["student"]["display_name"] == "Ann"
    assert doc["guardians"][0]["email"] == "a@example.org"
    assert len(doc["quiz_attempts"]) == 4 and len(doc["assignment_submissions"]) == 2
    assert main(["export", "--student-id", str(family["a"])]) == 0
    assert json.loads(capsys.readouterr().out)["student"]["id"] == family["a"]
    assert main(["export", "--student-id", "987654"]) == 1
    assert "No student" in capsys.readouterr().err
    assert (
        conn.execute("select count(*) from access_record where kind = 'export' and guardian_id is null").fetchone()[0]
        == 2
    )


def test_a_guardians_export_leaves_out_the_other_guardians_email(client, two_guardians):
    doc = client.get(f"/api/v1/students/{two_guardians['a']}/export", headers=bearer(two_guardians["token"])).get_json()
    emails = {g["guardian_id"]: g["email"] for g in doc["guardians"]}
    assert emails == {two_guardians["guardian"]: "a@example.org", two_guardians["guardian_c"]: None}
    assert "c@example.org" not in json.dumps(doc)


def test_a_student_without_scores_exports(client, conn):
    s = add_student(conn, "Nobody")
    g = add_guardian(conn, "n@example.org", s)
    token = conn.execute("select issue_guardian_token(%s)", (g,)).fetchone()[0]
    doc = client.get(f"/api/v1/students/{s}/export", headers=bearer(token)).get_json()
    assert doc["quiz_attempts"] == [] and doc["weekly_rows"] == [] and doc["alerts"] == []


def test_an_import_that_changes_scores_is_in_the_childs_record(conn, db_url, monkeypatch, tmp_path):
    from oneroster_gen import generate

    monkeypatch.setenv("DATABASE_URL", db_url)
    s = generate(seed=5, students=4, classes=1, items_per_class=3)
    folder = s.write(tmp_path / "set")
    assert main(["import", "oneroster", str(folder), "--quiet"]) == 0
    by_student = dict(
        conn.execute(
            "select student_profile_id, count(*) from quiz_attempt group by 1"
            " union all select student_profile_id, count(*) from assignment_submission group by 1"
        ).fetchall()
    )
    entries = conn.execute(
        "select student_profile_id, who, role, detail from access_record where kind = 'import'"
    ).fetchall()
    assert entries and {e[0] for e in entries} == set(by_student)
    assert all(e[1] == "gen-sis" and e[2] == "import" and e[3]["rows"] >= 1 for e in entries)
    # Importing the same files again changes nothing, and records nothing.
    assert main(["import", "oneroster", str(folder), "--quiet"]) == 0
    assert conn.execute("select count(*) from access_record where kind = 'import'").fetchone()[0] == len(entries)


def test_the_page_speaks_the_guardians_language_and_the_dashboard_links_it(client, family):
    conn = family["conn"]
    _, staff_token = staff_member(conn)
    client.get(f"/staff/students/{family['a']}", headers=bearer(staff_token))
    conn.execute("update guardian set preferred_language = 'es' where id = %s", (family["guardian"],))
    page = client.get(f"/students/{family['a']}/access", headers=bearer(family["token"])).get_data(as_text=True)
    assert "Abrió las cifras" in page and "personal del centro" in page
    dashboard = client.get(f"/students/{family['a']}", headers=bearer(family["token"])).get_data(as_text=True)
    assert f'href="/students/{family["a"]}/access"' in dashboard


def test_restrictions_set_and_lifted_reach_the_record_without_the_guardians_name(client, two_guardians):
    fam = two_guardians
    conn = fam["conn"]
    conn.execute("select restrict_guardian_link(%s, %s, 'court order 12')", (fam["guardian_c"], fam["a"]))
    conn.execute("select lift_guardian_link_restriction(%s, %s)", (fam["guardian_c"], fam["a"]))
    entries = client.get(f"/api/v1/students/{fam['a']}/access-record", headers=bearer(fam["token"])).get_json()[
        "entries"
    ]
    kinds = [e["kind"] for e in entries if e["kind"].startswith("restriction")]
    assert kinds == ["restriction_lifted", "restriction_set"]
    assert "c@example.org" not in json.dumps(entries) and "court order" not in json.dumps(entries)


def test_a_restricted_guardian_gets_the_unknown_ids_404_on_the_record_and_export(client, two_guardians):
    fam = two_guardians
    fam["conn"].execute("select restrict_guardian_link(%s, %s, 'court order')", (fam["guardian_c"], fam["a"]))
    for path in ("access-record", "export"):
        r = client.get(f"/api/v1/students/{fam['a']}/{path}", headers=bearer(fam["token_c"]))
        assert r.status_code == 404, path
    # The other guardian: nothing changes.
    assert client.get(f"/api/v1/students/{fam['a']}/export", headers=bearer(fam["token"])).status_code == 200


def test_a_student_reads_and_exports_their_own_record_and_no_one_elses(client, family):
    conn = family["conn"]
    conn.execute("update student_profile set birth_date = '2000-01-01' where id = %s", (family["a"],))
    token = conn.execute("select issue_student_token(%s)", (family["a"],)).fetchone()[0]
    r = client.get(f"/api/v1/students/{family['a']}/access-record", headers=bearer(token))
    assert r.status_code == 200 and "entries" in r.get_json()
    r = client.get(f"/api/v1/students/{family['a']}/export", headers=bearer(token))
    assert r.status_code == 200
    for path in ("export", "access-record"):  # another family's child: the unknown id's 404
        assert client.get(f"/api/v1/students/{family['b']}/{path}", headers=bearer(token)).status_code == 404
    entries = client.get(f"/api/v1/students/{family['a']}/access-record", headers=bearer(token)).get_json()["entries"]
    assert any(e["kind"] == "export" and e["role"] == "student" for e in entries)


def test_every_table_is_in_the_privacy_inventory():
    """docs/privacy.md's data inventory names every table of the schema: a table added without saying what
    it holds, why and how long fails here."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    tables = set(
        re.findall(r"^CREATE (?:TABLE|MATERIALIZED VIEW) public\.(\w+)", (root / "db/schema.sql").read_text(), re.M)
    )
    privacy = (root / "docs/privacy.md").read_text()
    inventory = privacy[privacy.index("| table |") :]
    named = set(re.findall(r"`(\w+)`", inventory.split("\n\n")[0]))
    assert tables - named == set(), "add these tables to docs/privacy.md's inventory"


def test_the_export_holds_missing_work_and_the_schools_copy_the_staff_notes(
    client, conn, db_url, family, monkeypatch, tmp_path
):
    a = family["a"]
    course = add_course(conn, "Maths")
    conn.execute("insert into enrollment (student_profile_id, course_id) values (%s, %s)", (a, course))
    work = conn.execute(
        "insert into course_work (course_id, title, kind, due_at) values (%s, 'Fractions sheet', 'assignment',"
        " now() - interval '2 days') returning id",
        (course,),
    ).fetchone()[0]
    staff = conn.execute(
        "insert into staff_member (email, display_name) values ('n@school.example', 'Ms Note') returning id"
    ).fetchone()[0]
    conn.execute(
        "insert into follow_up_note (student_profile_id, staff_member_id, kind, noted_on, note)"
        " values (%s, %s, 'family_contacted', current_date, 'Called home about fractions')",
        (a, staff),
    )
    family_copy = client.get(f"/api/v1/students/{a}/export", headers=bearer(family["token"])).get_json()
    assert [m["course_work_id"] for m in family_copy["missing_work"]] == [work]
    assert family_copy["enrollments"][0]["course_id"] == course
    assert family_copy["alert_settings"][0]["missing_work"] is True
    assert family_copy["follow_up_notes"] is None and "Called home" not in json.dumps(family_copy)
    monkeypatch.setenv("DATABASE_URL", db_url)
    out = tmp_path / "school.json"
    assert main(["export", "--student-id", str(a), "--out", str(out)]) == 0
    school_copy = json.loads(out.read_text())
    assert [(n["kind"], n["author"]) for n in school_copy["follow_up_notes"]] == [("family_contacted", "Ms Note")]


def validate_export(doc: dict) -> None:
    """The document matches the OpenAPI document's StudentExport schema."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    from web.operators import OPENAPI_PATH

    document = json.loads(OPENAPI_PATH.read_text())
    registry = Registry().with_resource("urn:weekly-trends", Resource.from_contents(document, DRAFT202012))
    schema = {"$ref": "urn:weekly-trends#/components/schemas/StudentExport"}
    Draft202012Validator(schema, registry=registry).validate(doc)


def add_alert(conn, guardian: int, student: int, subject: str, outcome: str, token_hash: bytes, error=None) -> int:
    message = conn.execute(
        "insert into alert_message (guardian_id, outcome, attempts, message_id, last_error, unsubscribe_token_hash,"
        " sent_at) values (%s, %s, 1, %s, %s, %s, case when %s = 'sent' then now() end) returning id",
        (guardian, outcome, f"<alerts.{guardian}.{subject}@x>", error, token_hash, outcome),
    ).fetchone()[0]
    conn.execute(
        "insert into alert_delivery (guardian_id, student_profile_id, kind, subject, message, detail)"
        " values (%s, %s, 'missing_work', %s, %s, '{\"title\": \"Fractions sheet\"}')",
        (guardian, student, subject, message),
    )
    return message


def test_the_export_holds_the_alerts_sent_and_the_history_of_restrictions(
    client, two_guardians, db_url, monkeypatch, tmp_path
):
    """The alerts mailed about the child (to which guardian, what, when) with their emails' outcomes, and
    the history of restrictions on the child's links: a guardian's copy holds their own alerts and the
    restrictions without naming the other guardian, why or who; the school's copy holds everything. No
    unsubscribe token hash in either."""
    fam = two_guardians
    conn, a, ga, gc = fam["conn"], fam["a"], fam["guardian"], fam["guardian_c"]
    hash_a, hash_c = bytes.fromhex("aa" * 32), bytes.fromhex("cc" * 32)
    mine = add_alert(conn, ga, a, "101", "sent", hash_a)
    theirs = add_alert(conn, gc, a, "102", "failed", hash_c, error="550 mailbox c@example.org unknown")
    # An alert about the other family's child, in a message of theirs: in no export of child a.
    other_guardian = conn.execute("select guardian_id from guardian_student where student_profile_id = %s", (fam["b"],))
    add_alert(conn, other_guardian.fetchone()[0], fam["b"], "103", "sent", bytes.fromhex("bb" * 32))
    member, _ = staff_member(conn, "Mr Registrar")
    with conn.transaction():
        conn.execute("select set_config('app.staff_member_id', %s, true)", (str(member),))
        conn.execute("select restrict_guardian_link(%s, %s, 'court order 12', %s)", (gc, a, date(2099, 1, 1)))
        conn.execute("select lift_guardian_link_restriction(%s, %s)", (gc, a))

    family_copy = client.get(f"/api/v1/students/{a}/export", headers=bearer(fam["token"])).get_json()
    validate_export(family_copy)
    assert [
        (d["guardian_id"], d["kind"], d["subject"], d["alert_message"]) for d in family_copy["alert_deliveries"]
    ] == [(ga, "missing_work", "101", mine)]
    assert family_copy["alert_deliveries"][0]["detail"] == {"title": "Fractions sheet"}
    assert [(m["id"], m["guardian_id"], m["outcome"]) for m in family_copy["alert_messages"]] == [(mine, ga, "sent")]
    assert family_copy["alert_messages"][0]["sent_at"] is not None
    restrictions = family_copy["link_restrictions"]
    assert [r["action"] for r in restrictions] == ["restricted", "lifted"]
    # Another guardian's restriction: when, and that it was set or lifted; not whose, why or by whom.
    assert all(r["guardian_id"] is None and r["reason"] is None and r["by"] is None for r in restrictions)
    text = json.dumps(family_copy)
    for secret in ("court order", "Mr Registrar", "c@example.org", "aa" * 32, "cc" * 32, "unsubscribe"):
        assert secret not in text, secret
    # The guardian whose link it was (lifted now): whose and until when, still not why or by whom; their
    # own alert and its outcome, without the server's error.
    their_copy = client.get(f"/api/v1/students/{a}/export", headers=bearer(fam["token_c"])).get_json()
    assert [(r["guardian_id"], r["until"], r["reason"], r["by"]) for r in their_copy["link_restrictions"]] == [
        (gc, "2099-01-01", None, None),
        (gc, None, None, None),
    ]
    assert [(m["id"], m["outcome"], m["last_error"]) for m in their_copy["alert_messages"]] == [
        (theirs, "failed", None)
    ]

    monkeypatch.setenv("DATABASE_URL", db_url)
    out = tmp_path / "school.json"
    assert main(["export", "--student-id", str(a), "--out", str(out)]) == 0
    school_copy = json.loads(out.read_text())
    validate_export(school_copy)
    assert [(d["guardian_id"], d["subject"], d["alert_message"]) for d in school_copy["alert_deliveries"]] == [
        (ga, "101", mine),
        (gc, "102", theirs),
    ]
    outcomes = {m["id"]: (m["outcome"], m["last_error"]) for m in school_copy["alert_messages"]}
    assert outcomes == {mine: ("sent", None), theirs: ("failed", "550 mailbox c@example.org unknown")}
    assert [
        (r["action"], r["guardian_id"], r["reason"], r["until"], r["by"]) for r in school_copy["link_restrictions"]
    ] == [
        ("restricted", gc, "court order 12", "2099-01-01", "Mr Registrar"),
        ("lifted", gc, None, None, "Mr Registrar"),
    ]
    text = json.dumps(school_copy)
    assert "aa" * 32 not in text and "cc" * 32 not in text and "unsubscribe" not in text
