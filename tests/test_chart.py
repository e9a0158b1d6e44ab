"""The chart's geometry (web/chart.py), computed by hand: no browser needed.

Plot area: x from 40 to 470 (430 px), y from 14 (the top of the scale) to 236 (zero).
With five weeks each takes 86 px and its point sits in the middle: x = 83, 169, 255, 341, 427.
"""

from __future__ import annotations

from web.chart import line_chart

XS = [83.0, 169.0, 255.0, 341.0, 427.0]


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
    # y = 14 + 222 * (1 - value / 100): 100 -> 14, 90 -> 36.2, 80 -> 58.4, 50 -> 125, 0 -> 236
    chart = series(line_chart(WEEKS))
    assert chart["overall"]["path"] == "M83.0 58.4 M255.0 125.0 L341.0 14.0 L427.0 236.0"
    assert chart["quiz"]["path"] == "M83.0 36.2 M341.0 14.0 L427.0 236.0"
    assert chart["assignment"]["path"] == "M255.0 125.0 L341.0 14.0"
    assert [(p["x"], p["y"], p["value"], p["week"]) for p in chart["overall"]["points"]] == [
        (83.0, 58.4, 80.0, "W1"), (255.0, 125.0, 50.0, "W3"), (341.0, 14.0, 100.0, "W4"), (427.0, 236.0, 0.0, "W5"),
    ]
    assert [s["label"] for s in line_chart(WEEKS)["series"]] == ["Overall", "Quizzes", "Assignments"]


def test_frame_ticks_and_labels():
    chart = line_chart(WEEKS)
    assert (chart["width"], chart["height"], chart["left"], chart["right"], chart["bottom"], chart["label_y"]) == (
        480, 270, 40, 470, 236, 256)
    assert chart["y_ticks"] == [{"y": y, "label": v} for v, y in
                                [(0, 236.0), (20, 191.6), (40, 147.2), (60, 102.8), (80, 58.4), (100, 14.0)]]
    assert chart["x_labels"] == [{"x": x, "label": f"W{n}"} for n, x in enumerate(XS, start=1)]


def test_extra_credit_widens_the_scale_to_the_next_20():
    # 112 -> the scale tops at 120: y = 14 + 222 * (1 - value / 120)
    chart = line_chart([week(1, 112.0, 112.0, None), week(2, 60.0, None, 30.0)])
    assert chart["y_ticks"][-1] == {"y": 14.0, "label": 120} and len(chart["y_ticks"]) == 7
    # two weeks: 215 px each, x = 147.5 and 362.5
    assert series(chart)["overall"]["path"] == "M147.5 28.8 L362.5 125.0"  # 112 -> 14 + 222 * 8 / 120
    assert series(chart)["assignment"]["path"] == "M362.5 180.5"


def test_no_data_draws_no_line():
    chart = line_chart([week(n, None, None, None) for n in range(1, 7)])
    assert all(s["path"] == "" and s["points"] == [] for s in chart["series"])
    assert chart["y_ticks"][-1]["label"] == 100
