"""The chart's geometry (web/chart.py), computed by hand: no browser needed.

The viewBox is 340 x 230; the plot runs x from 34 to 330 (296 units) and y from 12 (the top of the
axis) to 200 (its bottom). With five weeks each takes 59.2 units and its point sits in the middle:
x = 63.6, 122.8, 182.0, 241.2, 300.4.
"""

from __future__ import annotations

from web.chart import line_chart

XS = [63.6, 122.8, 182.0, 241.2, 300.4]
LABELS = ["1 Jan", "8 Jan", "15 Jan", "22 Jan", "29 Jan"]


def week(n: int, overall, quiz, assignment) -> dict:
    return {"week": f"W{n}", "overall_avg": overall, "quiz_avg": quiz, "assignment_avg": assignment}


WEEKS = [
    week(1, 80.0, 90.0, None),
    week(2, None, None, None),  # a gap, not a zero
    week(3, 50.0, None, 50.0),
    week(4, 100.0, 100.0, 100.0),
    week(5, 0.0, 0.0, None),  # a zero is a point
]


def series(chart: dict) -> dict:
    return {s["css"]: s for s in chart["series"]}


def test_paths_break_at_gaps_and_keep_zeros():
    # 0 to 100 is the data's whole range: y = 12 + 188 * (1 - value / 100):
    # 100 -> 12.0, 90 -> 30.8, 80 -> 49.6, 50 -> 106.0, 0 -> 200.0
    chart = series(line_chart(WEEKS, LABELS))
    assert chart["overall"]["path"] == "M63.6 49.6 M182.0 106.0 L241.2 12.0 L300.4 200.0"
    assert chart["quiz"]["path"] == "M63.6 30.8 M241.2 12.0 L300.4 200.0"
    assert chart["assignment"]["path"] == "M182.0 106.0 L241.2 12.0"
    assert [(p["x"], p["y"], p["value"], p["index"]) for p in chart["overall"]["points"]] == [
        (63.6, 49.6, 80.0, 0),
        (182.0, 106.0, 50.0, 2),
        (241.2, 12.0, 100.0, 3),
        (300.4, 200.0, 0.0, 4),
    ]
    assert [s["label"] for s in line_chart(WEEKS, LABELS)["series"]] == ["Overall", "Quizzes", "Assignments"]


def test_frame_and_ticks_of_the_full_range():
    chart = line_chart(WEEKS, LABELS)
    assert (chart["width"], chart["height"], chart["left"], chart["right"], chart["bottom"], chart["label_y"]) == (
        340,
        230,
        34,
        330,
        200,
        220,
    )
    # 110 points of padded range: steps of 25 (at most 5 of them); never above 100 without extra credit
    assert chart["y_ticks"] == [
        {"y": y, "label": v} for v, y in [(0, 200.0), (25, 153.0), (50, 106.0), (75, 59.0), (100, 12.0)]
    ]
    assert (chart["low"], chart["high"], chart["fitted"]) == (0, 100, False)


def test_a_move_from_78_to_90_fills_a_fitted_axis():
    # 78..90 padded by 5 each side: 73..95, steps of 5: the axis runs from 70 to 95
    chart = line_chart([week(1, 78.0, None, None), week(2, 90.0, None, None)], ["a", "b"])
    assert (chart["low"], chart["high"], chart["fitted"]) == (70, 95, True)
    # two weeks of 148 units: x = 108.0 and 256.0; y = 12 + 188 * (95 - value) / 25: 78 -> 139.8, 90 -> 49.6
    assert series(chart)["overall"]["path"] == "M108.0 139.8 L256.0 49.6"


def test_no_data_draws_no_line_on_the_full_scale():
    chart = line_chart([week(n, None, None, None) for n in range(1, 7)], ["x"] * 6)
    assert all(s["path"] == "" and s["points"] == [] for s in chart["series"])
    assert chart["y_ticks"][0]["label"] == 0 and chart["y_ticks"][-1]["label"] == 100
