"""Issue 9's integrity holes: each test here failed on the engine before its fix."""

from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from factories import add_assignment, add_course, add_quiz, add_student, drift
from reference import expected_weeks, stored_weeks

# Every SECURITY DEFINER function, with the roles that may execute it besides its owner.
# A new function must be added here on purpose: PUBLIC is never one of them.
SECURITY_DEFINER_EXECUTE = {
    "advance_id_sequence(regclass,bigint)": set(),
    "check_class_view(interval)": set(),
    "check_course_weekly_performance(bigint)": set(),
    "check_weekly_performance(bigint)": set(),
    "find_guardian_token(bytea,bigint)": {"weekly_trends_reader"},
    "issue_guardian_token(bigint,interval)": set(),
    "issue_staff_token(bigint,interval)": set(),
    "linked_course_class_weeks(bigint,date,date,integer)": {"weekly_trends_reader"},
    "log_access(bigint,text)": {"weekly_trends_reader", "weekly_trends_staff"},
    "missing_weeks(bigint,date,date)": {"weekly_trends_reader"},
    "my_weekly_digest()": {"weekly_trends_reader"},
    "prune_access_log(interval)": set(),
    "rebuild_weekly_rows(bigint,date)": set(),
    "refresh_course_weekly_performance()": set(),
    "refresh_weekly_performance(bigint,date,boolean)": {"weekly_trends_staff"},
    "revoke_guardian_tokens(bigint)": set(),
    "set_guardian_language(text)": {"weekly_trends_reader"},
    "set_weekly_digest(boolean)": {"weekly_trends_reader"},
    "sign_out_guardian_token(bigint)": {"weekly_trends_reader"},
    "sign_out_staff_token(bigint)": {"weekly_trends_staff"},
    "staff_issue_guardian_token(bigint,bigint,interval)": {"weekly_trends_staff"},
    "staff_revoke_guardian_tokens(bigint,bigint)": {"weekly_trends_staff"},
    "staff_revoke_unsent_guardian_token(bigint,bigint,bytea)": {"weekly_trends_staff"},
    "tg_id__advance_sequence()": set(),
    "tg_score_source__maintain_weekly()": set(),
    "tg_student_profile__rebuild_weeks_on_time_zone()": set(),
    "tg_student_profile__remove_weeks()": set(),
    "unsubscribe_weekly_digest(bytea)": {"weekly_trends_reader"},
    "week_scores(bigint,date)": {"weekly_trends_reader"},
    # Issues 25-27: the family's rights, alerts, staff sign-in and the teacher's list.
    "add_follow_up_note(bigint,text,date,text)": {"weekly_trends_staff"},
    "app_readable_students()": {"weekly_trends_reader"},
    "append_access_record(bigint,text,text,text,text,jsonb,bigint,timestamp with time zone)": set(),
    "erase_student(bigint,text,text,text,timestamp with time zone,boolean)": set(),
    "family_access_record_json(bigint,text,timestamp with time zone)": {"weekly_trends_reader"},
    "family_export_json(bigint,text,integer,numeric,integer,timestamp with time zone)": {"weekly_trends_reader"},
    "family_may_see(bigint,bigint,timestamp with time zone)": set(),
    "find_student_token(bytea,bigint)": {"weekly_trends_reader"},
    "guardian_link_state(bigint,bigint,timestamp with time zone)": {"weekly_trends_reader", "weekly_trends_staff"},
    "guardian_link_states(bigint,timestamp with time zone)": {"weekly_trends_reader", "weekly_trends_staff"},
    "issue_student_token(bigint,interval)": set(),
    "lift_guardian_link_restriction(bigint,bigint)": {"weekly_trends_staff"},
    "linked_missing_work(bigint,date,date)": {"weekly_trends_reader"},
    "my_alert_settings(bigint)": {"weekly_trends_reader"},
    "my_guardians()": {"weekly_trends_reader"},
    "open_staff_session_by_email(text,interval)": {"weekly_trends_staff"},
    "operator_export_json(bigint,text,integer,numeric,integer,timestamp with time zone)": set(),
    "purge_family_record(interval,interval,timestamp with time zone,boolean,text)": set(),
    "record_guardian_sign_in(bytea,timestamp with time zone)": {"weekly_trends_reader"},
    "restrict_guardian_link(bigint,bigint,text,date)": {"weekly_trends_staff"},
    "revoke_unsent_student_token(bigint,bytea)": {"weekly_trends_staff"},
    "set_guardian_sharing(bigint,boolean)": {"weekly_trends_reader"},
    "set_my_alert_settings(bigint,boolean,boolean,integer,integer)": {"weekly_trends_reader"},
    "set_student_dependant(bigint,date)": {"weekly_trends_staff"},
    "sign_out_student_token(bigint)": {"weekly_trends_reader"},
    "staff_attention(bytea,bigint,bigint,text,numeric,integer,numeric,integer,date,text)": {"weekly_trends_staff"},
    "staff_erase_student(bigint,text,text)": {"weekly_trends_staff"},
    "staff_issue_student_token(bigint,interval)": {"weekly_trends_staff"},
    "staff_may_see_student(bigint,bigint)": {"weekly_trends_staff"},
    "staff_student_page(bytea,bigint,bigint,integer,date,integer,text,numeric,integer)": {"weekly_trends_staff"},
    "staff_token_member(bytea,bigint)": {"weekly_trends_staff"},
    "student_access_record(bigint,bigint)": set(),
    "student_export_json(bigint,bigint,integer,numeric,integer,boolean)": set(),
    "student_link_states(bigint,timestamp with time zone)": {"weekly_trends_staff"},
    "student_may_sign_in(bigint,timestamp with time zone)": {"weekly_trends_reader", "weekly_trends_staff"},
    "unsubscribe_alerts(bytea,text[])": {"weekly_trends_reader"},
}


def security_definer_grantees(conn) -> dict[str, set[str]]:
    """Each SECURITY DEFINER function of the database with the roles (or PUBLIC) that may execute it, owner aside."""
    rows = conn.execute(
        """
        select p.oid::regprocedure::text,
               coalesce(array_agg(case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end)
                          filter (where a.grantee <> p.proowner), '{}')
          from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace
          left join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                 on a.privilege_type = 'EXECUTE'
         where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
         group by p.oid
        """
    ).fetchall()
    return {name: set(grantees) for name, grantees in rows}


def test_every_security_definer_function_states_who_may_execute_it(conn):
    assert security_definer_grantees(conn) == SECURITY_DEFINER_EXECUTE


def test_public_executable_security_definer_functions_say_why(conn):
    # None today; a future one must explain itself in its COMMENT.
    rows = conn.execute(
        """
        select p.oid::regprocedure::text, obj_description(p.oid, 'pg_proc')
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where p.prosecdef and n.nspname = 'public' and has_function_privilege('public', p.oid, 'EXECUTE')
        """
    ).fetchall()
    assert all("PUBLIC" in (comment or "") for _, comment in rows), rows


@pytest.fixture
def bare_login_role(conn, db_url):
    """A role with LOGIN and nothing else (PUBLIC's defaults only), and its connection."""
    name = f"wt_intruder_{os.getpid()}"
    conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))
    conn.execute(sql.SQL("create role {} login").format(sql.Identifier(name)))
    with psycopg.connect(make_conninfo(db_url, user=name, password=""), autocommit=True) as intruder:
        yield intruder
    conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
    conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


FORGERIES = {
    "tg_score_source__maintain_weekly": (
        "create temp table quiz_attempt (id bigint, student_profile_id bigint, course_id bigint, score numeric,"
        " teacher_score numeric, completed_at timestamptz, created_at timestamptz)",
        "after insert on pg_temp.quiz_attempt referencing new table as new_rows",
        "insert into pg_temp.quiz_attempt (id, student_profile_id, score, completed_at)"
        " select g, {student}, 0, now() from generate_series(1, 20) g",
    ),
    "tg_student_profile__remove_weeks": (
        "create temp table student_profile (id bigint, time_zone text)",
        "after delete on pg_temp.student_profile referencing old table as old_rows",
        "with x as (insert into pg_temp.student_profile values ({student}, 'UTC') returning 1)"
        " delete from pg_temp.student_profile",
    ),
    "tg_student_profile__rebuild_weeks_on_time_zone": (
        "create temp table student_profile (id bigint, time_zone text)",
        "after update on pg_temp.student_profile referencing old table as old_rows new table as new_rows",
        "insert into pg_temp.student_profile values ({student}, 'UTC');"
        " update pg_temp.student_profile set time_zone = 'Asia/Tokyo'",
    ),
}


@pytest.mark.parametrize("function", sorted(FORGERIES))
def test_a_login_role_without_grants_cannot_attach_a_trigger_function(conn, bare_login_role, function):
    student = add_student(conn, "Victim")
    add_quiz(conn, student, 90, datetime.now(UTC))
    before = stored_weeks(conn)
    create_table, timing, write = FORGERIES[function]
    bare_login_role.execute(create_table)
    with pytest.raises(errors.InsufficientPrivilege):
        bare_login_role.execute(
            f"create trigger forged {timing} for each statement execute function public.{function}()"
        )
    assert stored_weeks(conn) == before


@pytest.mark.parametrize("function", sorted(FORGERIES))
def test_a_trigger_function_refuses_any_relation_but_its_own(conn, function):
    # Even the owner cannot point one at another table: it would write figures no source row backs.
    student = add_student(conn, "Victim")
    add_quiz(conn, student, 90, datetime.now(UTC))
    before = stored_weeks(conn)
    create_table, timing, write = FORGERIES[function]
    conn.execute(create_table)
    conn.execute(f"create trigger forged {timing} for each statement execute function public.{function}()")
    with pytest.raises(errors.TriggerProtocolViolated):
        conn.execute(write.format(student=student))
    assert stored_weeks(conn) == before


# --- refresh_weekly_performance(p_since => d) covers whole ISO weeks in every time zone --------------

ZONES = ("Etc/GMT+12", "UTC", "Pacific/Kiritimati")  # UTC-12, UTC, UTC+14
MONDAY = date(2024, 3, 4)


@pytest.fixture
def three_zones(conn):
    """A student per zone with a score every 7 hours over three weeks around MONDAY, in one course."""
    course = add_course(conn, "Physics")
    students = [add_student(conn, zone, zone) for zone in ZONES]
    start = datetime.combine(MONDAY - timedelta(days=9), datetime.min.time(), UTC)
    for n, student in enumerate(students):
        for k in range(0, 24 * 23, 7):
            at = start + timedelta(hours=k + n)
            if k % 2:
                add_quiz(conn, student, 50 + k % 50, at, course_id=course)
            else:
                add_assignment(conn, student, 40 + k % 60, graded_at=at, course_id=course)
    return students


@pytest.mark.parametrize("weekday", range(7), ids=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
@pytest.mark.parametrize("scope", ["one student", "everyone"])
def test_refresh_since_any_weekday_keeps_whole_weeks(conn, three_zones, weekday, scope):
    since = MONDAY + timedelta(days=weekday)
    expected = expected_weeks(conn)
    assert stored_weeks(conn) == expected
    if scope == "everyone":
        conn.execute("select refresh_weekly_performance(null, %s)", (since,))
    else:
        for student in three_zones:
            conn.execute("select refresh_weekly_performance(%s, %s)", (student, since))
    assert drift(conn) == []
    assert stored_weeks(conn) == expected


def test_refresh_since_still_repairs_the_weeks_it_covers(conn, three_zones):
    kiritimati = three_zones[2]
    conn.execute(
        "update student_weekly_performance set quiz_count = quiz_count + 1 where student_profile_id = %s", (kiritimati,)
    )
    conn.execute("select refresh_weekly_performance(null, %s)", (MONDAY + timedelta(days=3),))
    # weeks from MONDAY's on are repaired; earlier ones are left as they were (still drifted)
    drifted = {row[2] for row in drift(conn)}
    assert drifted and all(week < MONDAY for week in drifted)


# --- writers at REPEATABLE READ / SERIALIZABLE beside a time-zone change -----------------------------

ISOLATIONS = [psycopg.IsolationLevel.REPEATABLE_READ, psycopg.IsolationLevel.SERIALIZABLE]
LATE_SUNDAY = datetime(2024, 3, 31, 20, tzinfo=UTC)  # Sunday in UTC, Monday 1 April in Kiritimati


def writer(db_url, isolation):
    connection = psycopg.connect(db_url)
    connection.isolation_level = isolation
    return connection


@pytest.mark.parametrize("isolation", ISOLATIONS, ids=lambda i: i.name)
def test_a_snapshot_older_than_a_time_zone_change_fails_retryably_never_drifts(conn, db_url, isolation):
    student = add_student(conn, "Kiri", "UTC")
    with writer(db_url, isolation) as session:
        session.execute("select 1")  # the snapshot is taken
        conn.execute("update student_profile set time_zone = 'Pacific/Kiritimati' where id = %s", (student,))
        with pytest.raises(errors.SerializationFailure):
            add_quiz(session, student, 70, LATE_SUNDAY)
        session.rollback()
        # the retry, with a fresh snapshot, files it under the new zone
        add_quiz(session, student, 70, LATE_SUNDAY)
        session.commit()
    assert drift(conn) == []
    assert conn.execute(
        "select week_start_date from student_weekly_performance where student_profile_id = %s", (student,)
    ).fetchall() == [(date(2024, 4, 1),)]


@pytest.mark.parametrize("isolation", ISOLATIONS, ids=lambda i: i.name)
def test_an_update_that_moves_a_score_under_an_old_snapshot_fails_retryably(conn, db_url, isolation):
    student = add_student(conn, "Kiri", "UTC")
    quiz = add_quiz(conn, student, 70, LATE_SUNDAY - timedelta(days=3))
    with writer(db_url, isolation) as session:
        session.execute("select 1")
        conn.execute("update student_profile set time_zone = 'Pacific/Kiritimati' where id = %s", (student,))
        with pytest.raises(errors.SerializationFailure):
            session.execute("update quiz_attempt set completed_at = %s where id = %s", (LATE_SUNDAY, quiz))
        session.rollback()
    assert drift(conn) == []


@pytest.mark.parametrize("isolation", ISOLATIONS, ids=lambda i: i.name)
def test_a_time_zone_change_after_an_open_writer_waits_for_it_and_stays_exact(conn, db_url, isolation):
    student = add_student(conn, "Kiri", "UTC")
    with writer(db_url, isolation) as session:
        add_quiz(session, student, 70, LATE_SUNDAY)  # uncommitted, under the old zone
        changed = threading.Event()

        def change_zone():
            with psycopg.connect(db_url, autocommit=True) as other:
                other.execute("update student_profile set time_zone = 'Pacific/Kiritimati' where id = %s", (student,))
            changed.set()

        thread = threading.Thread(target=change_zone)
        thread.start()
        wait_for_lock_wait(conn)
        assert not changed.is_set()
        session.commit()
        thread.join(10)
    assert changed.is_set()
    assert drift(conn) == []
    assert conn.execute(
        "select week_start_date from student_weekly_performance where student_profile_id = %s", (student,)
    ).fetchall() == [(date(2024, 4, 1),)]


def wait_for_lock_wait(conn, timeout: float = 10.0) -> None:
    """Returns once some backend of this database waits on a lock (no sleeping on a guess)."""
    deadline = datetime.now() + timedelta(seconds=timeout)
    while datetime.now() < deadline:
        waiting = conn.execute(
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
        ).fetchone()[0]
        if waiting:
            return
    raise AssertionError("no backend waited on a lock")
