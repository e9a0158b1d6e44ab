"""The benchmark's generator, its seed baseline and its report: small and real, never timed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timezone

import pytest

from bench import district
from bench.common import OURS, PLAIN, SEED_BASELINE, Check, Section, install_seed_baseline, use_variant
from bench.report import write_report

from factories import add_assignment, add_quiz, add_student
from reference import missing_work


def rows_of(shape: district.Shape, chunk_students: int) -> tuple[list[str], list[str]]:
    quizzes, assignments = [], []
    for chunk in district.chunks(shape, chunk_students):
        quizzes += chunk.quizzes
        assignments += chunk.assignments
    return quizzes, assignments


def test_generator_is_deterministic_whatever_the_chunk_size():
    assert rows_of(district.Shape(12), 5) == rows_of(district.Shape(12), 100)
    assert rows_of(district.Shape(12, seed=1), 5) != rows_of(district.Shape(12), 5)


def test_generator_has_the_district_shape():
    shape = district.Shape(100)
    quizzes, assignments = rows_of(shape, 50)
    weeks = len(shape.weeks)
    assert 100 <= weeks <= 112  # 3 school years of about 36 weeks
    assert 6.5 <= len(quizzes) / (100 * weeks) <= 8.5
    assert 2.2 <= len(assignments) / (100 * weeks) <= 3.2
    quiz_fields = [line.rstrip("\n").split("\t") for line in quizzes]
    ungraded = sum(f[3] == "\\N" for f in quiz_fields) / len(quiz_fields)
    overridden = sum(f[4] != "\\N" for f in quiz_fields) / len(quiz_fields)
    assert 0.08 <= ungraded <= 0.12
    assert 0.03 <= overridden <= 0.07
    not_graded = sum(line.split("\t")[4] == "f" for line in assignments) / len(assignments)
    assert 0.08 <= not_graded <= 0.12
    assert set(shape.time_zone(i) for i in range(100)) == set(district.TIME_ZONES)
    # Every class of a year has about 25 students.
    sizes = Counter(c for i in range(100) for c in shape.student_courses(i, 0))
    assert set(sizes.values()) == {district.CLASS_SIZE}
    assert not any(district.is_holiday(monday) for _, monday in shape.weeks)


def test_loading_the_district_keeps_the_weekly_rows_exact(conn):
    shape = district.Shape(20)
    stats = district.load(conn, shape, progress=False, chunk_students=7, writers=2)
    assert conn.execute("select count(*) from quiz_attempt").fetchone()[0] == stats.quiz_rows
    assert conn.execute("select count(*) from assignment_submission").fetchone()[0] == stats.assignment_rows
    assert stats.graded_later > 0
    assert conn.execute("select count(*) from student_weekly_performance").fetchone()[0] > 20 * 90
    assert conn.execute("select * from check_weekly_performance()").fetchall() == []
    conn.execute("select refresh_course_weekly_performance()")  # as bench/run.py does after the load
    assert conn.execute("select * from check_course_weekly_performance()").fetchall() == []
    # The sequences continue after the explicit ids.
    assert add_quiz(conn, 1, 50, datetime(2026, 6, 9, 10, tzinfo=UTC)) == stats.quiz_rows + 1
    # Course work: about 11 pieces set per student and school week, 3-5% of them missing, as the oracle
    # (tests/reference.py) and student_missing_work() both count them.
    set_ = conn.execute("select count(*) from enrollment e join course_work w on w.course_id = e.course_id").fetchone()[
        0
    ]
    assert 9.5 <= set_ / (20 * len(shape.weeks)) <= 12.5
    with conn.transaction():
        now = conn.execute("select now()").fetchone()[0]
        expected = missing_work(conn, now)
        shown = {
            s: {
                (r[0], r[1])
                for r in conn.execute("select course_work_id, week_start_date from student_missing_work(%s)", (s,))
            }
            for s in range(1, 21)
        }
    assert shown == {s: expected.get(s, set()) for s in range(1, 21)}
    missing = sum(len(v) for v in shown.values())
    assert missing == stats.missing
    assert 0.03 <= missing / set_ <= 0.05


def trigger_states(conn) -> dict[tuple[str, str], str]:
    return {
        (r[0], r[1]): r[2]
        for r in conn.execute(
            "select c.relname, t.tgname, t.tgenabled from pg_trigger t join pg_class c on c.oid = t.tgrelid"
            " where c.relname in ('quiz_attempt', 'assignment_submission')"
            "   and (t.tgname like '\\_500\\_maintain%' or t.tgname like '\\_600\\_seed%')"
        )
    }


@pytest.mark.parametrize("variant, ours, seed", [(OURS, "O", "D"), (PLAIN, "D", "D"), (SEED_BASELINE, "D", "O")])
def test_use_variant_swaps_only_the_maintaining_triggers(conn, variant, ours, seed):
    install_seed_baseline(conn)
    use_variant(conn, variant)
    states = trigger_states(conn)
    assert len(states) == 8
    assert {s for (_, name), s in states.items() if name.startswith("_500")} == {ours}
    assert {s for (_, name), s in states.items() if name.startswith("_600")} == {seed}
    # The TRUNCATE guard and the foreign keys are never touched.
    assert conn.execute(
        "select bool_and(tgenabled = 'O') from pg_trigger where tgname = '_100_refuse_truncate'"
    ).fetchone()[0]


def test_seed_baseline_recomputes_every_week_it_touches(conn):
    install_seed_baseline(conn)
    use_variant(conn, SEED_BASELINE)
    tokyo = add_student(conn, "T", "Asia/Tokyo")
    # Sunday 20:00 UTC is Monday in Tokyo: the seed baseline uses the student's week.
    q1 = add_quiz(conn, tokyo, 80, datetime(2024, 1, 14, 20, tzinfo=UTC))
    add_quiz(conn, tokyo, 70, datetime(2024, 1, 15, 3, tzinfo=UTC), teacher_score=90)
    a1 = add_assignment(conn, tokyo, 60, graded_at=datetime(2024, 1, 16, 3, tzinfo=UTC))
    conn.execute("update quiz_attempt set completed_at = completed_at + interval '7 days' where id = %s", (q1,))
    conn.execute("update assignment_submission set is_graded = false where id = %s", (a1,))
    conn.execute("delete from assignment_submission where id = %s", (a1,))
    rows = conn.execute(
        "select week_start_date::text, quiz_count, quiz_average, assignment_count from student_weekly_performance"
        " where student_profile_id = %s order by 1",
        (tokyo,),
    ).fetchall()
    assert [tuple(r) for r in rows] == [("2024-01-15", 1, 90, 0), ("2024-01-22", 1, 80, 0)]
    # Beyond the weeks left with zero counts (the seed keeps its rows), it agrees with the rules.
    drift = conn.execute(
        "select * from check_weekly_performance() where stored is null or stored ->> 'quiz_count' <> '0'"
        " or stored ->> 'assignment_count' <> '0'"
    ).fetchall()
    assert drift == []


def test_report_names_every_target_and_labels_a_small_run(tmp_path):
    section = Section(
        "write",
        "Write path",
        ["what"],
        ["measurement", "value"],
        [["x", "1"]],
        ["a note"],
        [Check("write", "single row", 1.1, 1.3), Check("write", "writers", 0.5, 0.75, at_least=True)],
    )
    loaded = {
        "students": 300,
        "courses": 216,
        "school_weeks": 108,
        "quiz_rows": 10,
        "assignment_rows": 5,
        "graded_later": 1,
        "seconds": 1.0,
        "rows_per_second": 15.0,
        "seed_index_seconds": 0.1,
        "weekly_rows": 3,
        "course_rows": 4,
        "first_week": "2023-09-04",
        "last_day": "2026-06-12",
    }

    class Args:
        students = 300

    path = tmp_path / "benchmarks.md"
    write_report(
        path,
        Args,
        [section, Section("http", "HTTP", [], [], skipped="wrk is not installed")],
        loaded,
        {"CPUs (nproc)": "2"},
        ".venv/bin/python -m bench.run --students 300",
        datetime(2026, 11, 27, tzinfo=UTC),
        60,
    )
    text = path.read_text()
    assert "--students 300, not the default" in text
    assert "| Write path | single row | 1.10× | ≤ 1.30× | yes |" in text
    assert "| Write path | writers | 0.50× | ≥ 0.75× | **NO**" in text
    assert "wrk is not installed" in text
    assert ".venv/bin/python -m bench.run --students 300" in text


def test_pieces_compares_head_with_the_functions_before_the_split():
    """The before/after section installs real, different texts: the three files as they were whole."""
    from bench.pieces import SPLIT_FILES, previous_texts
    from web.ops.embedded import PROJECT_ROOT

    texts = previous_texts()
    if texts is None:
        pytest.skip("not a git checkout")
    for name, text in zip(SPLIT_FILES, texts, strict=True):
        assert "create or replace function" in text
        assert text != (PROJECT_ROOT / "db" / "functions" / name).read_text(), name
    assert "alert_week_is_low" not in texts[2] and "v_average <= v_base - p_drop_points" in texts[2]


def test_a_run_without_the_pieces_section_keeps_the_last_one(tmp_path):
    from bench.report import PIECES_SECTION, replace_section, section_lines

    class Args:
        students = 300

    path = tmp_path / "benchmarks.md"
    pieces = Section("pieces", PIECES_SECTION[3:], ["what"], ["measure", "before", "after"], [["x", "1", "1"]])
    path.write_text("# Benchmarks\n\n## Machine\n\n- CPUs: 2\n")
    replace_section(path, PIECES_SECTION, section_lines(pieces, Args, "bench.run --only pieces"))
    assert "| x | 1 | 1 |" in path.read_text()
    write_report(
        path,
        Args,
        [Section("write", "Write path", ["what"], ["m", "v"], [["y", "2"]])],
        {
            "students": 300,
            "courses": 1,
            "school_weeks": 1,
            "quiz_rows": 1,
            "assignment_rows": 1,
            "graded_later": 0,
            "seconds": 1.0,
            "rows_per_second": 1.0,
            "seed_index_seconds": 0.1,
            "weekly_rows": 1,
            "course_rows": 1,
            "first_week": "2023-09-04",
            "last_day": "2026-06-12",
        },
        {"CPUs (nproc)": "2"},
        "bench.run --only write",
        datetime(2026, 12, 6, tzinfo=UTC),
        60,
    )
    text = path.read_text()
    assert "| y | 2 |" in text and "| x | 1 | 1 |" in text and "--only pieces" in text


def test_a_run_of_some_sections_replaces_only_theirs_and_their_targets(tmp_path):
    from bench.report import replace_sections

    class Args:
        students = 300

    path = tmp_path / "benchmarks.md"
    path.write_text(
        "# Benchmarks\n\n## Targets\n\n| section | target | measured | bound | met? |\n|---|---:|---:|---:|---:|\n"
        "| Read path | old read target | 1.00× | ≤ 2.00× | yes |\n"
        "| Write path | old write target | 9.00× | ≤ 1.25× | **NO** |\n"
        "| Hand-written | kept | 1.00× | ≤ 1.00× | yes |\n\n"
        "## Read path\n\nold read text\n\n## Write path\n\nold write text\n\n## Hand-written\n\nkept text\n\n"
        "## Machine\n\n- CPUs: 2\n"
    )
    write = Section(
        "write", "Write path", ["what"], ["m", "v"], [["new write row", "2"]], [], [Check("write", "w", 1.1, 1.25)]
    )
    release = Section(
        "release", "Release", ["why"], ["m", "v"], [["new release row", "3"]], [], [Check("release", "r", 2, 1.2)]
    )
    replace_sections(path, [write, release], Args, "bench.run --only write,release")
    text = path.read_text()
    assert "old write text" not in text and "| new write row | 2 |" in text and "| new release row | 3 |" in text
    assert "old read text" in text and "kept text" in text and "- CPUs: 2" in text
    targets = text.split("## Targets")[1].split("## Read path")[0]
    assert [line.split(" | ")[1] for line in targets.splitlines() if line.startswith("| ") and "---" not in line] == [
        "target",
        "old read target",
        "w",
        "kept",
        "r",
    ]
    assert "| Release | r | 2.00× | ≤ 1.20× | **NO**" in targets
    # The new section goes before the machine, once; a second run replaces it in place.
    assert text.index("## Release") < text.index("## Machine")
    replace_sections(path, [release], Args, "bench.run --only release")
    again = path.read_text()
    assert again.count("## Release") == 1 and again.count("| Release | r |") == 1


def test_release_section_downgrades_a_copy_and_compares_it_with_head(server_url, db_url):
    """The release section end to end on a small district: a copy downgraded to revision 0014 for real,
    the other at head, the same answers (head's added keys aside) and weekly rows, the copies dropped."""
    from datetime import timedelta

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from bench.release import BEFORE_REVISION, DATABASES, TITLE, run_release

    shape = district.Shape(20)
    with psycopg.connect(db_url, autocommit=True) as conn:
        district.load(conn, shape, progress=False, writers=1)
        conn.execute("select refresh_course_weekly_performance()")
        install_seed_baseline(conn)
        course = conn.execute("select max(id) from course").fetchone()[0]

    class Args:
        students = 20
        rounds = 1
        single = 50
        read_students = 20

    end = district.last_school_day()
    week = end - timedelta(days=end.weekday()) + timedelta(weeks=1)
    section = run_release(server_url, conninfo_to_dict(db_url)["dbname"], Args, end, week, course)
    assert section.title == TITLE and not section.skipped
    notes = " ".join(section.notes)
    assert f"Revisions: {BEFORE_REVISION} (two copies made in" in notes and "one downgraded from head" in notes
    assert "head yes" in notes and "no (no such column)" in notes
    assert "missing_count" in notes and "identical for 20 of 20 students" in notes
    assert "weekly rows our triggers wrote were identical" in notes
    answer, client, server = section.checks
    assert answer.name.startswith("parents' answer p50, head / revision") and answer.bound == 1.20
    for check, gauge in ((client, "means"), (server, "server execution p50s")):
        assert check.name.startswith(f"single-row INSERT, ours / no triggers ({gauge})") and check.bound > 0
    with psycopg.connect(server_url) as conn:
        left = conn.execute("select datname from pg_database where datname = any(%s)", (list(DATABASES.values()),))
        assert left.fetchall() == []
