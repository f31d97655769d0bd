"""An experiment's results over time on its page: each treatment's lift and interval per day, as
an inline SVG chart and a table, from the daily results (``podium.experiments.timeline``).

The chart follows ``podium.web.charts``: drawn on the server, no script, every label escaped;
it reuses that module's axis and colours. Each treatment is one ``<g class="series">`` with
its interval as a band, its lift as a line and one ``<circle class="point" data-day=…>`` per
day; zero is the one ``<line class="zero">``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from podium.web.charts import (
    GRID_COLOUR,
    MARGIN_BOTTOM,
    MARGIN_LEFT,
    MARGIN_RIGHT,
    MARGIN_TOP,
    MAX_X_LABELS,
    TEXT_COLOUR,
    ZERO_COLOUR,
    axis_range,
)

SERIES_COLOURS = ("#0b5cad", "#8250df", "#bf3989", "#9a6700", "#1a7f37", "#cf222e")
Estimate = tuple[float | None, float | None, float | None]
"""A day's lift with the low and high ends of its interval (None where there is not enough data)."""


@dataclass(frozen=True)
class DayRow:
    """One row of the table: a day and a variant, with its numbers as the page prints them."""

    day: str
    variant: str
    users: str
    lift: str
    interval: str
    p_value: str
    better: bool | None


@dataclass(frozen=True)
class TimelineView:
    """The chart and the table of an experiment's results over time."""

    chart: Markup
    rows: list[DayRow]
    days: int
    sequential: bool


def _finite(*numbers: float | None) -> bool:
    return all(n is not None and math.isfinite(n) for n in numbers)


def svg_lift_over_time(
    days: Sequence[str],
    series: Sequence[tuple[str, Sequence[Estimate]]],
    *,
    title: str,
    format_value: Callable[[float], str] = "{:g}".format,
    ticks: int = 4,
    width: int = 760,
    height: int = 260,
) -> Markup:
    """Each treatment's lift (a line) and interval (a band) on each day, against zero."""
    plot_left, plot_right = MARGIN_LEFT, width - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    parts = [
        f'<svg class="chart lift-over-time" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{plot_left}" y="18" fill="{TEXT_COLOUR}">{escape(title)}</text>',
    ]
    values = [v for _, points in series for point in points if _finite(*point) for v in point if v is not None]
    axis = axis_range(values or [0.0], ticks, include=(0.0,))
    low, high = axis[0], axis[-1]

    def y_of(value: float) -> float:
        return plot_bottom - (value - low) / (high - low) * (plot_bottom - plot_top)

    def x_of(index: int) -> float:
        if len(days) == 1:
            return (plot_left + plot_right) / 2
        return plot_left + index * (plot_right - plot_left) / (len(days) - 1)

    parts.append('<g class="grid">')
    for tick in axis:
        y = y_of(tick)
        parts.append(f'<line x1="{plot_left}" x2="{plot_right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID_COLOUR}"/>')
        parts.append(f'<text class="tick" x="{plot_left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'fill="{TEXT_COLOUR}">{escape(format_value(tick))}</text>')
    parts.append("</g>")
    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    parts.append('<g class="labels">')
    for index, day in enumerate(days):
        if (len(days) - 1 - index) % every == 0:  # counted from the right: the latest day is labelled
            parts.append(f'<text class="tick" x="{x_of(index):.1f}" y="{height - 10}" text-anchor="middle" '
                         f'fill="{TEXT_COLOUR}">{escape(day[5:])}</text>')
    parts.append("</g>")
    zero = y_of(0.0)
    parts.append(f'<line class="zero" x1="{plot_left}" x2="{plot_right}" y1="{zero:.1f}" y2="{zero:.1f}" '
                 f'stroke="{ZERO_COLOUR}" stroke-width="1.5"/>')

    for number, (variant, points) in enumerate(series):
        colour = SERIES_COLOURS[number % len(SERIES_COLOURS)]
        parts.append(f'<g class="series" data-variant="{escape(variant)}">')
        for run in _runs(points):  # a band per stretch of days that all have an interval
            top = [f"{x_of(i):.1f},{y_of(points[i][2] or 0.0):.1f}" for i in run]
            bottom = [f"{x_of(i):.1f},{y_of(points[i][1] or 0.0):.1f}" for i in reversed(run)]
            parts.append(f'<polygon class="band" points="{" ".join(top + bottom)}" fill="{colour}" '
                         'fill-opacity="0.15" stroke="none"/>')
        commands: list[str] = []
        pen_down = False
        for index, (lift, _, _) in enumerate(points):
            if lift is None or not math.isfinite(lift):
                pen_down = False
                continue
            commands.append(f"{'L' if pen_down else 'M'}{x_of(index):.1f},{y_of(lift):.1f}")
            pen_down = True
        parts.append(f'<path class="line" d="{" ".join(commands)}" fill="none" stroke="{colour}" stroke-width="2" '
                     'stroke-linejoin="round"/>')
        for index, (lift, ci_low, ci_high) in enumerate(points):
            if lift is None or not math.isfinite(lift):
                continue
            tip = f"{variant}, {days[index]}: {format_value(lift)}"
            if _finite(ci_low, ci_high):
                tip += f" ({format_value(ci_low or 0.0)} to {format_value(ci_high or 0.0)})"
            parts.append(f'<circle class="point" data-day="{escape(days[index])}" cx="{x_of(index):.1f}" '
                         f'cy="{y_of(lift):.1f}" r="3" fill="{colour}"><title>{escape(tip)}</title></circle>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 — every piece above is escaped or a number


def _runs(points: Sequence[Estimate]) -> list[list[int]]:
    """The stretches of consecutive days whose three numbers are all there."""
    runs: list[list[int]] = []
    current: list[int] = []
    for index, point in enumerate(points):
        if _finite(*point):
            current.append(index)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def timeline_view(
    document: Mapping[str, Any],
    percent: Callable[[float | None], str],
    tick: Callable[[float], str],
    interval: Callable[[float | None, float | None], str],
    p_value: Callable[[float | None], str],
    better: Callable[[float | None, float | None], bool | None],
) -> TimelineView | None:
    """The page's view of a daily results document, formatted with the page's own formats; None without days."""
    points: Sequence[Mapping[str, Any]] = document.get("days") or []
    if not points:
        return None
    days = [str(point["day"]) for point in points]
    names = [str(row["name"]) for row in points[-1]["variants"]]
    series = [
        (name, [(p["variants"][i].get("lift"), p["variants"][i].get("ci_low"), p["variants"][i].get("ci_high"))
                for p in points])
        for i, name in enumerate(names) if i > 0
    ]
    metric = str(document.get("metric", ""))
    chart = svg_lift_over_time(days, series, title=f"Lift in {metric} over control by day, cumulative, 95% interval",
                               format_value=tick)
    rows = [
        DayRow(
            day=str(point["day"]), variant=str(row["name"]), users=f"{int(row['users']):,}",
            lift=percent(row.get("lift")) if i else "control", interval=interval(row.get("ci_low"), row.get("ci_high"))
            if i else "", p_value=p_value(row.get("p_value")) if i else "",
            better=better(row.get("ci_low"), row.get("ci_high")) if i else None,
        )
        for point in reversed(points) for i, row in enumerate(point["variants"])
    ]
    return TimelineView(chart=chart, rows=rows, days=len(days), sequential=bool(document.get("sequential")))
