"""A line chart of weekly averages as inline SVG geometry: no script, no library, readable at 360 px.

The y-axis fits the data (padded, in round steps, its range stated in words so a fitted axis
never exaggerates); week labels are the weeks' dates, thinned so they never collide.
"""

from __future__ import annotations

from math import ceil, floor

from flask_babel import lazy_gettext as _l

# (key in a week's figures, legend label, CSS class); each series also has its own marker shape and dash.
SERIES = [
    ("overall_avg", _l("Overall"), "overall"),
    ("quiz_avg", _l("Quizzes"), "quiz"),
    ("assignment_avg", _l("Assignments"), "assignment"),
]
# A viewBox as wide as a 360 px phone's column: the SVG's 14.5-unit text shows at 14 px or more there.
WIDTH, HEIGHT = 340, 230
LEFT, RIGHT, TOP, BOTTOM = 34, 10, 12, 30
FONT = 14.5
STEPS = (5, 10, 20, 25, 50, 100, 200)
MIN_SPAN = 20  # points: a smaller wobble is not stretched over the whole height


def y_range(values: list[float]) -> tuple[int, int, int]:
    """(low, high, step): the data's range padded by a step's worth, in round steps, 0 at the least."""
    if not values:
        return 0, 100, 20
    low, high = min(values), max(values)
    pad = max(5.0, (high - low) * 0.1)
    raw = max(MIN_SPAN, high + pad - max(0.0, low - pad))
    step = next(s for s in STEPS if raw / s <= 5)
    bottom = max(0, floor((low - pad) / step) * step)
    top = ceil((high + pad) / step) * step
    if top > 100 >= high:
        top = max(100, bottom + step)  # no axis above 100 unless a score is (extra credit)
    while top - bottom < MIN_SPAN:
        top, bottom = (top + step, bottom) if bottom == 0 or top < 100 else (top, max(0, bottom - step))
    return bottom, top, step


def label_width(label: str) -> float:
    """A generous estimate of a label's width in the chart's units."""
    return len(label) * FONT * 0.55


def x_labels(labels: list[str], centres: list[float]) -> list[dict]:
    """Every n-th week's label, counted back from the latest (always shown), none touching another
    nor leaving the chart (a label at an edge is moved in)."""
    widest = max((label_width(label) for label in labels), default=0) + 10
    plot_width = centres[-1] - centres[0] + (centres[1] - centres[0] if len(centres) > 1 else widest)
    every = max(1, ceil(len(labels) / max(1, floor(plot_width / widest))))
    shown, i = [], len(labels) - 1
    while i >= 0:
        half = label_width(labels[i]) / 2
        x = round(min(max(centres[i], half + 2), WIDTH - half - 2), 1)
        if shown and shown[-1]["x"] - x < half + label_width(shown[-1]["label"]) / 2 + 6:
            i -= 1  # its neighbour was moved in at the edge: try the week before
            continue
        shown.append({"x": x, "label": labels[i]})
        i -= every
    return shown[::-1]


def class_ranges(weeks: list[dict], courses: list[dict]) -> list[tuple[float, float] | None]:
    """Per week, the lowest and highest class average shown for the child's courses (None: none shown)."""
    ranges = []
    for index in range(len(weeks)):
        shown = [c["weeks"][index]["class_average"] for c in courses if c["weeks"][index]["class_average"] is not None]
        ranges.append((min(shown), max(shown)) if shown else None)
    return ranges


def line_chart(weeks: list[dict], date_labels: list[str], courses: list[dict] | None = None) -> dict:
    """Geometry for templates/chart.html: one path per series, broken at weeks without data (gaps, not zeros),
    and a faint band from the lowest to the highest class average of the child's courses, where shown.

    date_labels: each week's label in the reader's locale (its Monday's date).
    """
    bands = class_ranges(weeks, courses or [])
    values = [w[key] for w in weeks for key, _, _ in SERIES if w[key] is not None]
    values += [v for band in bands if band for v in band]
    low, high, step = y_range(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    column = plot_w / len(weeks)

    def x(index: int) -> float:
        return round(LEFT + (index + 0.5) * column, 1)

    def y(value: float) -> float:
        return round(TOP + plot_h * (1 - (value - low) / (high - low)), 1)

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
            points.append({"x": x(index), "y": y(value), "value": value, "index": index})
        path = " ".join("M" + " L".join(f"{px} {py}" for px, py in r) for r in runs)
        series.append({"label": str(label), "css": css, "path": path, "points": points})
    # The band: one polygon per run of weeks with a class average, at least 2 points thick to stay visible.
    band_paths, run = [], []
    for index, band in enumerate(bands + [None]):
        if band is not None:
            run.append((x(index), y(band[1]) - 1, y(band[0]) + 1))
            continue
        if run:
            if len(run) == 1:  # a single week: a short bar across its column
                cx, top_y, bottom_y = run[0]
                run = [(cx - column / 4, top_y, bottom_y), (cx + column / 4, top_y, bottom_y)]
            upper = " L".join(f"{px} {round(t, 1)}" for px, t, _ in run)
            lower = " L".join(f"{px} {round(b, 1)}" for px, _, b in reversed(run))
            band_paths.append(f"M{upper} L{lower} Z")
            run = []
    return {
        "class_band": " ".join(band_paths),
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "font": FONT,
        "series": series,
        "low": low,
        "high": high,
        "fitted": low > 0 or high != 100,
        "y_ticks": [{"y": y(v), "label": v} for v in range(low, high + 1, step)],
        "x_labels": x_labels(date_labels, [x(i) for i in range(len(weeks))]),
        "columns": [
            {"x": round(LEFT + i * column, 1), "width": round(column, 1), "index": i} for i in range(len(weeks))
        ],
        "label_y": HEIGHT - BOTTOM + 20,
    }
