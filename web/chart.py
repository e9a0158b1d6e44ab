"""A line chart of weekly averages as inline SVG geometry: no script, no library, readable at 360 px."""

from __future__ import annotations

from math import ceil

# (key in a week's figures, legend label, CSS class); each series also has its own marker shape.
SERIES = [
    ("overall_avg", "Overall", "overall"),
    ("quiz_avg", "Quizzes", "quiz"),
    ("assignment_avg", "Assignments", "assignment"),
]
# Narrow enough that its text stays legible when scaled down to a phone's width.
WIDTH, HEIGHT = 480, 270
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 14, 34


def line_chart(weeks: list[dict]) -> dict:
    """Geometry for templates/chart.html: one path per series, broken at weeks without data (gaps, not zeros)."""
    values = [w[key] for w in weeks for key, _, _ in SERIES if w[key] is not None]
    # Extra credit can pass 100: widen the scale instead of clipping.
    top = max(100, ceil(max(values, default=0) / 20) * 20)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return round(LEFT + (index + 0.5) * plot_w / len(weeks), 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - value / top), 1)

    series = []
    for key, label, css in SERIES:
        runs, run, points = [], [], []
        for index, week in enumerate(weeks):
            value = week[key]
            if value is None:
                run = []
                continue
            if not run:
                runs.append(run)
            run.append((x(index), y(value)))
            points.append({"x": x(index), "y": y(value), "value": value, "week": week["week"]})
        path = " ".join("M" + " L".join(f"{px} {py}" for px, py in r) for r in runs)
        series.append({"label": label, "css": css, "path": path, "points": points})
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "bottom": HEIGHT - BOTTOM,
        "series": series,
        "y_ticks": [{"y": y(v), "label": v} for v in range(0, top + 1, 20)],
        "x_labels": [{"x": x(i), "label": w["week"]} for i, w in enumerate(weeks)],
        "label_y": HEIGHT - BOTTOM + 20,
    }
