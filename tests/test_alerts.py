"""The sustained-decline alert: weekly_trend_alerts() (SQL, the rule's one home) against an
independent Python reading of the rule in docs/mail.md, at the edges, and where it shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factories import add_guardian, add_student

FIRST_MONDAY = date(2024, 1, 1)


def reference_alerts(weeks: list[tuple[int, Decimal | None]], drop=10, min_scores=2, baseline_weeks=6) -> list:
    """weeks: (number of scores, overall average) of consecutive ISO weeks. The rule, read from the docs."""
    drop = Fraction(drop)

    def baseline(i):  # mean of the last `baseline_weeks` weeks with scores before week i
        history = [Fraction(a) for c, a in weeks[:i] if c > 0]
        return sum(history[-baseline_weeks:]) / baseline_weeks if len(history) >= baseline_weeks else None

    def low(i, base):
        c, a = weeks[i]
        return c >= min_scores and Fraction(a) <= base - drop

    def good(i, base):
        c, a = weeks[i]
        return c >= min_scores and Fraction(a) >= base - drop / 2

    flags = [None] * len(weeks)
    i, mode, base = 0, "normal", None
    candidate = None  # (week, its baseline): a first low week while nothing is flagged
    while i < len(weeks):
        if mode == "normal":
            if candidate is not None and candidate[0] == i - 1 and low(i, candidate[1]):
                base, mode = candidate[1], "declining"
                flags[i] = "declining"
                candidate = None
            else:
                b = baseline(i)
                candidate = (i, b) if b is not None and low(i, b) else None
            i += 1
        elif mode == "declining":
            if low(i, base):
                flags[i] = "declining"
                i += 1
            else:
                mode, streak, last_low = "recovering", 0, False
        else:  # recovering: week i is looked at against the decline's baseline
            is_low = low(i, base)
            if is_low and last_low:
                flags[i], mode = "declining", "declining"
            elif good(i, base):
                streak += 1
                if streak == 2:
                    flags[i], mode, candidate = "back_on_track", "normal", None
            else:
                streak = 0
            last_low = is_low
            i += 1
    return flags


def load_weeks(conn, weeks: list[tuple[int, Decimal | None]]) -> int:
    """A student with `c` quizzes all scoring `a` in each week (so the week's average is exactly a)."""
    student = add_student(conn, "Alerted", "UTC")
    rows = []
    for index, (count, average) in enumerate(weeks):
        moment = datetime.combine(FIRST_MONDAY + timedelta(weeks=index, days=1), time(10), UTC)
        rows += [(student, average, moment + timedelta(minutes=n)) for n in range(count)]
    with conn.cursor() as cur:
        cur.executemany("insert into quiz_attempt (student_profile_id, score, completed_at) values (%s, %s, %s)", rows)
    return student


def sql_alerts(conn, student: int, n_weeks: int, drop=10, min_scores=2) -> list:
    rows = conn.execute(
        "select week_start_date, alert from weekly_trend_alerts(%s, %s, %s, %s, %s) order by 1",
        (student, FIRST_MONDAY, FIRST_MONDAY + timedelta(weeks=n_weeks - 1), drop, min_scores),
    ).fetchall()
    assert [r[0] for r in rows] == [FIRST_MONDAY + timedelta(weeks=i) for i in range(n_weeks)]
    return [r[1] for r in rows]


BASE = [(2, Decimal("80"))] * 6


@pytest.mark.parametrize(
    "tail, expected",
    [
        # two consecutive weeks exactly N below, each with M scores: flagged on the second
        ([(2, Decimal("70")), (2, Decimal("70"))], [None, "declining"]),
        # 0.01 short of N: nothing
        ([(2, Decimal("70.01")), (2, Decimal("70"))], [None, None]),
        # the second week has one score (below M): nothing
        ([(2, Decimal("60")), (1, Decimal("10"))], [None, None]),
        # a single low score in a week, then an empty week, then a low week: nothing
        ([(1, Decimal("0")), (0, None), (2, Decimal("50"))], [None, None, None]),
        # an empty week between two low weeks breaks the run
        ([(2, Decimal("60")), (0, None), (2, Decimal("60"))], [None, None, None]),
        # decline continues while low, then back on track after two weeks within N/2 of the baseline
        (
            [(2, Decimal("60")), (2, Decimal("65")), (3, Decimal("62")), (2, Decimal("75")), (2, Decimal("79"))],
            [None, "declining", "declining", None, "back_on_track"],
        ),
        # 74.99 is not within N/2 (5) of 80: the recovery waits for two good weeks in a row
        (
            [(2, Decimal("60")), (2, Decimal("60")), (2, Decimal("74.99")), (2, Decimal("75")), (2, Decimal("75"))],
            [None, "declining", None, None, "back_on_track"],
        ),
        # a partial recovery then two low weeks again: declining again
        (
            [(2, Decimal("60")), (2, Decimal("60")), (2, Decimal("76")), (2, Decimal("65")), (2, Decimal("65"))],
            [None, "declining", None, None, "declining"],
        ),
    ],
)
def test_the_rule_at_its_edges(conn, tail, expected):
    weeks = BASE + tail
    student = load_weeks(conn, weeks)
    got = sql_alerts(conn, student, len(weeks))
    assert got == [None] * 6 + expected
    assert reference_alerts(weeks) == got


def test_no_alert_without_six_weeks_of_baseline(conn):
    weeks = [(2, Decimal("80"))] * 5 + [(2, Decimal("50")), (2, Decimal("50"))]
    assert sql_alerts(conn, load_weeks(conn, weeks), len(weeks)) == [None] * 7


def test_thresholds_are_parameters(conn):
    weeks = BASE + [(1, Decimal("74")), (1, Decimal("74"))]
    student = load_weeks(conn, weeks)
    assert sql_alerts(conn, student, len(weeks))[-1] is None
    assert sql_alerts(conn, student, len(weeks), drop=5, min_scores=1)[-1] == "declining"
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("select * from weekly_trend_alerts(%s, '2024-02-01', '2024-01-01')", (student,))
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("select * from weekly_trend_alerts(%s, '2024-01-01', '2024-02-01', 0)", (student,))


def test_a_window_sees_the_history_before_it(conn):
    """The flag of a week does not depend on where the asked range starts."""
    weeks = BASE + [(2, Decimal("60")), (2, Decimal("60"))]
    student = load_weeks(conn, weeks)
    last = FIRST_MONDAY + timedelta(weeks=7)
    assert conn.execute("select alert from weekly_trend_alerts(%s, %s, %s)", (student, last, last)).fetchall() == [
        ("declining",)
    ]


def test_a_decline_keeps_its_baseline_past_any_window_of_recent_weeks(conn):
    """Why the teacher's list reads a student's whole history (issue 27): a decline's baseline stays until two
    good weeks end it, so weeks in between that are neither low nor good keep it for as long as they last.
    Here the last two weeks are a decline against the 90s of 24 weeks before; the same 8 weeks alone (the
    six before them give a baseline of 82) are none."""
    run = [(2, Decimal("82"))] * 22
    weeks = [(2, Decimal("90"))] * 6 + [(2, Decimal("75"))] * 2 + run + [(2, Decimal("78"))] * 2
    assert sql_alerts(conn, load_weeks(conn, weeks), len(weeks))[-2:] == [None, "declining"]
    assert reference_alerts(weeks[-8:])[-2:] == [None, None]


def test_a_range_that_starts_inside_a_decline_after_empty_weeks(conn):
    """The walk skips runs of empty weeks before the range, never the weeks with scores after them."""
    weeks = BASE + [(0, None), (0, None), (2, Decimal("60")), (2, Decimal("60")), (2, Decimal("61"))]
    student = load_weeks(conn, weeks)
    assert reference_alerts(weeks)[-3:] == [None, "declining", "declining"]
    for first in range(len(weeks)):
        rows = conn.execute(
            "select alert from weekly_trend_alerts(%s, %s, %s) order by week_start_date",
            (student, FIRST_MONDAY + timedelta(weeks=first), FIRST_MONDAY + timedelta(weeks=len(weeks) - 1)),
        )
        assert [r[0] for r in rows] == reference_alerts(weeks)[first:], first


AVERAGES = st.one_of(
    st.sampled_from([Decimal(v) for v in ("80", "75", "70", "70.01", "69.99", "65", "60", "74.99", "85", "90")]),
    st.decimals(min_value=40, max_value=100, places=2),
)
WEEK = st.one_of(
    st.just((0, None)),
    st.tuples(st.integers(min_value=1, max_value=3), AVERAGES),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=3), st.sampled_from([Decimal("80"), Decimal("79.5"), Decimal("81")])
        ),
        min_size=4,
        max_size=7,
    ),
    tail=st.lists(WEEK, min_size=1, max_size=10),
    drop=st.sampled_from([10, 5]),
    min_scores=st.sampled_from([2, 1, 3]),
)
def test_sql_rule_matches_the_reference(conn, history, tail, drop, min_scores):
    weeks = history + tail
    student = load_weeks(conn, weeks)
    got = sql_alerts(conn, student, len(weeks), drop, min_scores)
    assert got == reference_alerts(weeks, drop, min_scores)
    # never from an empty week or a week below M scores
    for (count, _), flag in zip(weeks, got):
        if count < min_scores:
            assert flag is None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(
        st.tuples(st.integers(min_value=1, max_value=3), st.sampled_from([Decimal("80"), Decimal("81")])),
        min_size=6,
        max_size=7,
    ),
    tail=st.lists(st.one_of(WEEK, st.just((0, None)), st.just((2, Decimal("60")))), min_size=1, max_size=16),
    window=st.tuples(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40)),
)
def test_any_range_asked_gives_the_flags_of_the_whole_history(conn, history, tail, window):
    """A range that starts late (after runs of empty weeks the walk skips), or ends early: each week's flag
    is the one the whole history gives it (the reference over every week)."""
    weeks = history + tail
    student = load_weeks(conn, weeks)
    expected = reference_alerts(weeks)
    first, length = window[0] % len(weeks), window[1] % len(weeks)
    last = min(len(weeks) - 1, first + length)
    rows = conn.execute(
        "select week_start_date, alert from weekly_trend_alerts(%s, %s, %s) order by 1",
        (student, FIRST_MONDAY + timedelta(weeks=first, days=3), FIRST_MONDAY + timedelta(weeks=last, days=6)),
    ).fetchall()
    assert [r[0] for r in rows] == [FIRST_MONDAY + timedelta(weeks=i) for i in range(first, last + 1)]
    assert [r[1] for r in rows] == expected[first : last + 1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    weeks=st.lists(WEEK, min_size=6, max_size=14),
    lone=st.integers(min_value=0, max_value=13),
)
def test_a_single_low_score_never_flags(conn, weeks, lone):
    """With M >= 2, a week with one (however low) score changes no flag of its own week."""
    lone %= len(weeks)
    weeks = list(weeks)
    weeks[lone] = (1, Decimal("0"))
    got = sql_alerts(conn, load_weeks(conn, weeks), len(weeks))
    assert got[lone] is None
    assert got == reference_alerts(weeks)


def test_the_weekly_trend_json_and_the_dashboard_show_it(app, client, conn):
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday())
    student = add_student(conn, "Dana Dip", "UTC")
    guardian = add_guardian(conn, "dana.parent@example.org", student)
    token = conn.execute("select issue_guardian_token(%s)", (guardian,)).fetchone()[0]
    scores = [80] * 6 + [65, 66, 64]  # weeks -8 .. 0 (this week)
    for index, score in enumerate(scores):
        moment = datetime.combine(monday - timedelta(weeks=len(scores) - 1 - index), time(9), UTC)
        for n in range(2):
            conn.execute(
                "insert into quiz_attempt (student_profile_id, score, completed_at) values (%s, %s, %s)",
                (student, score, moment + timedelta(minutes=n)),
            )
    answer = client.get(
        f"/api/v1/students/{student}/weekly-trend", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    alerts = [w["alert"] for w in answer["weekly_stats"]["weekly_trend"]]
    assert alerts == [None, None, None, None, "declining", "declining"]
    client.get(f"/login?token={token}")
    page = client.get(f"/students/{student}").get_data(as_text=True)
    assert 'data-alert="declining"' in page and "A sustained dip" in page


# -- a walk that goes on from a kept state (issue 27: the teacher's list reads the last few weeks) ----------


def walk_state(conn, student: int, through_week: int):
    """The state after the walk through week `through_week` (an index of FIRST_MONDAY's weeks), as text."""
    monday = FIRST_MONDAY + timedelta(weeks=through_week)
    return conn.execute(
        "select state_after::text from weekly_trend_alerts(%s, %s, %s)", (student, monday, monday)
    ).fetchone()[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(
        st.tuples(st.integers(min_value=1, max_value=3), st.sampled_from([Decimal("80"), Decimal("81")])),
        min_size=6,
        max_size=7,
    ),
    tail=st.lists(st.one_of(WEEK, st.just((0, None)), st.just((2, Decimal("60")))), min_size=1, max_size=16),
    cuts=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=3),
)
def test_a_walk_from_a_kept_state_gives_the_flags_of_the_whole_history(conn, history, tail, cuts):
    """The state after any week, handed to a later walk (p_start), gives each later week the flag the walk
    from the first week gives it, however often it is handed on, across empty weeks and declines."""
    weeks = history + tail
    student = load_weeks(conn, weeks)
    expected = reference_alerts(weeks)
    state, start = None, 0
    for cut in sorted({c % len(weeks) for c in cuts}):
        monday = FIRST_MONDAY + timedelta(weeks=cut)
        row = conn.execute(
            "select alert, state_after::text from weekly_trend_alerts(%s, %s, %s, 10, 2, 6, %s::alert_walk_state)",
            (student, monday, monday, state),
        ).fetchone()
        assert row[0] == expected[cut], cut
        state, start = row[1], cut + 1
        assert state.startswith(f"({FIRST_MONDAY + timedelta(weeks=cut + 1)},10,2,6,")
    if start < len(weeks):
        rows = conn.execute(
            "select alert from weekly_trend_alerts(%s, %s, %s, 10, 2, 6, %s::alert_walk_state) order by week_start_date",
            (student, FIRST_MONDAY + timedelta(weeks=start), FIRST_MONDAY + timedelta(weeks=len(weeks) - 1), state),
        ).fetchall()
        assert [r[0] for r in rows] == expected[start:]


def test_a_kept_state_walked_with_other_thresholds_or_after_the_range_is_refused(conn):
    weeks = BASE + [(2, Decimal("60")), (2, Decimal("60"))]
    student = load_weeks(conn, weeks)
    state = walk_state(conn, student, 5)
    sixth, seventh = FIRST_MONDAY + timedelta(weeks=6), FIRST_MONDAY + timedelta(weeks=7)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="start state"):
        conn.execute(
            "select * from weekly_trend_alerts(%s, %s, %s, 5, 2, 6, %s::alert_walk_state)",
            (student, sixth, seventh, state),
        )
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="start state"):
        conn.execute(
            "select * from weekly_trend_alerts(%s, %s, %s, 10, 2, 6, %s::alert_walk_state)",
            (student, FIRST_MONDAY + timedelta(weeks=5), seventh, state),
        )
    rows = conn.execute(
        "select alert from weekly_trend_alerts(%s, %s, %s, 10, 2, 6, %s::alert_walk_state) order by week_start_date",
        (student, sixth, seventh, state),
    ).fetchall()
    assert [r[0] for r in rows] == [None, "declining"]
