"""Issue 25 item 7: a student who leaves the OneRoster source is marked left (student_profile.left_at), kept as
they were (links, scores, weeks) and erased by `weekly-trends purge` through erase_student() once
WEEKLY_TRENDS_LEFT_GRACE has passed; listed again, they are no longer left."""

from __future__ import annotations

import copy
from datetime import timedelta

from test_oneroster import snapshot

from web.oneroster import Options, import_oneroster
from web.ops.cli import main

from factories import add_student, drift
from oneroster_gen import generate
from reference import expected_weeks, stored_weeks


def run(conn, path, **options):
    return import_oneroster(conn, path, Options(progress=False, **options))


def school():
    """A small school and the student who will leave: one with a guardian and counted scores."""
    s = generate(seed=5, students=10, classes=2, items_per_class=3)
    with_guardian = {u["sourcedId"] for u in s.users if u["role"] == "student" and u.get("agentSourcedIds")}
    scored = {r["studentSourcedId"] for r in s.results if r["scoreStatus"] == "fully graded"}
    return s, sorted(with_guardian & scored)[0]


def student_id(conn, sourced_id) -> int:
    return conn.execute(
        "select student_profile_id from oneroster_student where sourced_id = %s", (sourced_id,)
    ).fetchone()[0]


def held(conn, sid) -> dict:
    """What the family sees of the student: links, scores and weekly rows."""
    return {
        "links": conn.execute(
            "select guardian_id from guardian_student where student_profile_id = %s order by 1", (sid,)
        ).fetchall(),
        "quizzes": conn.execute(
            "select id, score, completed_at from quiz_attempt where student_profile_id = %s order by 1", (sid,)
        ).fetchall(),
        "assignments": conn.execute(
            "select id, percentage from assignment_submission where student_profile_id = %s order by 1", (sid,)
        ).fetchall(),
        "weeks": conn.execute(
            "select week_start_date, overall_average from student_weekly_performance"
            " where student_profile_id = %s order by 1",
            (sid,),
        ).fetchall(),
    }


def without(s, gone):
    """The set as a bulk export sends it once the student left: their row, their results and their
    guardians (who have no other child) gone."""
    left = copy.deepcopy(s)
    left.users = [u for u in s.users if u["sourcedId"] != gone and gone not in u.get("agentSourcedIds", "")]
    left.results = [r for r in s.results if r["studentSourcedId"] != gone]
    return left


def left_at(conn, sid):
    return conn.execute("select left_at from student_profile where id = %s", (sid,)).fetchone()[0]


def test_a_student_who_leaves_a_bulk_file_is_marked_left_and_kept_as_they_were(
    conn, db_url, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("DATABASE_URL", db_url)
    s, gone = school()
    run(conn, s.write(tmp_path / "one"))
    sid = student_id(conn, gone)
    before = held(conn, sid)
    assert before["links"] and before["weeks"]
    assert left_at(conn, sid) is None
    path = without(s, gone).write(tmp_path / "two")
    summary = run(conn, path)
    assert summary.changes["students"]["deleted"] == 0
    assert summary.changes["students"]["updated"] == 1 and summary.left_students == 1
    assert summary.changes.get("guardians", {}).get("deleted", 0) == 0
    assert left_at(conn, sid) is not None
    assert held(conn, sid) == before  # the family sees no change until the purge
    assert conn.execute("select count(*) from student_profile").fetchone()[0] == 10
    assert stored_weeks(conn) == expected_weeks(conn) and drift(conn) == []
    # The same files again write nothing (the mark is not rewritten).
    again = snapshot(conn)
    assert main(["import", "oneroster", str(path), "--quiet"]) == 0
    assert "0 rows written. Nothing changed." in capsys.readouterr().out
    assert snapshot(conn) == again


def test_tobedeleted_marks_left_and_a_later_listing_clears_it(conn, tmp_path):
    s, gone = school()
    run(conn, s.write(tmp_path / "one"))
    sid = student_id(conn, gone)
    before = held(conn, sid)
    delta = copy.deepcopy(s)
    delta.users = [dict(u, status="tobedeleted") for u in s.users if u["sourcedId"] == gone]
    delta.modes = {"users": "delta"}
    run(conn, delta.write(tmp_path / "delta", only=("users",)))
    assert left_at(conn, sid) is not None
    assert held(conn, sid) == before
    delta.users = [dict(u, status="active", givenName="Back") for u in s.users if u["sourcedId"] == gone]
    summary = run(conn, delta.write(tmp_path / "back", only=("users",)))
    assert left_at(conn, sid) is None
    assert summary.changes["students"]["updated"] == 1 and summary.left_students == 0
    assert (
        conn.execute("select display_name from student_profile where id = %s", (sid,)).fetchone()[0].startswith("Back")
    )
    assert held(conn, sid) == before


def test_a_student_left_out_of_a_bulk_file_then_listed_again_is_no_longer_left(conn, tmp_path):
    s, gone = school()
    run(conn, s.write(tmp_path / "one"))
    sid = student_id(conn, gone)
    before = held(conn, sid)
    run(conn, without(s, gone).write(tmp_path / "two"))
    assert left_at(conn, sid) is not None
    run(conn, s.write(tmp_path / "three"))
    assert left_at(conn, sid) is None
    assert held(conn, sid) == before
    assert conn.execute("select count(*) from erasure_certificate").fetchone()[0] == 0


def purge(conn, now, dry_run=False) -> dict:
    return dict(
        conn.execute("select what, rows from purge_family_record(null, '90 days', %s, %s)", (now, dry_run)).fetchall()
    )


def test_the_purge_keeps_a_left_student_within_the_grace_and_erases_them_after_it(
    conn, db_url, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("DATABASE_URL", db_url)
    s, gone = school()
    run(conn, s.write(tmp_path / "one"))
    sid = student_id(conn, gone)
    guardians = [g for (g,) in held(conn, sid)["links"]]
    run(conn, without(s, gone).write(tmp_path / "two"))
    left = left_at(conn, sid)
    # Within the grace: nothing about the student goes.
    assert purge(conn, left + timedelta(days=89)) == {"students erased": 0}
    assert left_at(conn, sid) == left
    # Past it: the dry run counts what the purge then does, and erases nothing itself.
    after = left + timedelta(days=91)
    dry = purge(conn, after, dry_run=True)
    assert left_at(conn, sid) == left
    assert conn.execute("select count(*) from erasure_certificate").fetchone()[0] == 0
    done = purge(conn, after)
    assert done == dry
    # (students the set gave no score, created 91 days before, go too: the rule for no scores left)
    certificates = conn.execute("select kind, reason, rows_deleted from erasure_certificate").fetchall()
    assert done["students erased"] == done["student_profile"] == len(certificates) >= 1
    assert {kind for kind, _, _ in certificates} == {"retention"}
    [(_, reason, rows)] = [c for c in certificates if "left the school" in c[1]]
    assert rows["student_profile"] == 1 and rows["quiz_attempt"] + rows["assignment_submission"] > 0
    assert conn.execute("select count(*) from student_profile where id = %s", (sid,)).fetchone()[0] == 0
    # Their guardians, who had no other child, go with them.
    assert conn.execute("select count(*) from guardian where id = any(%s)", (guardians,)).fetchone()[0] == 0
    assert stored_weeks(conn) == expected_weeks(conn) and drift(conn) == []
    assert conn.execute("select count(*) from check_weekly_performance()").fetchone()[0] == 0
    assert purge(conn, after) == {"students erased": 0}  # idempotent
    # The tombstone: listed again by the source, the student is reported as erased, not brought back.
    capsys.readouterr()
    assert main(["import", "oneroster", str(s.write(tmp_path / "three")), "--quiet"]) == 0
    assert f"{len(certificates)} erased student(s) not imported" in capsys.readouterr().out
    assert conn.execute("select count(*) from oneroster_student where sourced_id = %s", (gone,)).fetchone()[0] == 0


def test_a_writer_may_set_left_at_and_the_purge_honours_it(conn):
    sid = add_student(conn, "Written Leaver")
    conn.execute("insert into quiz_attempt (student_profile_id, score, completed_at) values (%s, 50, now())", (sid,))
    conn.execute("update student_profile set left_at = now() - interval '100 days' where id = %s", (sid,))
    now = conn.execute("select now()").fetchone()[0]
    assert purge(conn, now, dry_run=True)["students erased"] == 1
    assert purge(conn, now)["students erased"] == 1
    assert conn.execute("select count(*) from student_profile where id = %s", (sid,)).fetchone()[0] == 0


def test_a_left_students_result_marked_tobedeleted_still_goes(conn, tmp_path):
    s, gone = school()
    run(conn, s.write(tmp_path / "one"))
    sid = student_id(conn, gone)
    run(conn, without(s, gone).write(tmp_path / "two"))
    before = held(conn, sid)
    result = next(r for r in s.results if r["studentSourcedId"] == gone and r["scoreStatus"] == "fully graded")
    delta = copy.deepcopy(s)
    delta.results = [dict(result, status="tobedeleted")]
    delta.modes = {"results": "delta"}
    summary = run(conn, delta.write(tmp_path / "delta", only=("results",)))
    assert summary.changes["result mappings"]["deleted"] == 1
    after = held(conn, sid)
    assert len(after["quizzes"]) + len(after["assignments"]) == len(before["quizzes"]) + len(before["assignments"]) - 1
    assert left_at(conn, sid) is not None and after["links"] == before["links"]
    assert stored_weeks(conn) == expected_weeks(conn) and drift(conn) == []
