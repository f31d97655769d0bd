"""Charts as inline SVG, drawn on the server: no chart library, no script, no inline style.

``svg_line_chart`` (a trend) and ``svg_interval_chart`` (estimates with intervals, such
as an experiment's lifts) are pure functions of their numbers: the pages' CSP allows no
inline code, and a chart drawn here is in the HTML the tests read. Colours are SVG presentation
attributes (which the CSP allows); sizes of text come from ``podium.css``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

Point = tuple[str, float | None]
"""A label for the x axis (a week, say) and its value; None leaves a gap in the line."""

LINE_COLOUR = "#0b5cad"
GRID_COLOUR = "#d0d7de"
TEXT_COLOUR = "#656d76"
REFERENCE_COLOUR = "#9a6700"  # a target drawn across the chart, such as an SLO
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 28, 30, 30
MAX_X_LABELS = 7


def nice_step(span: float, ticks: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) that cuts ``span`` into about ``ticks`` parts."""
    raw = span / max(1, ticks)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1.0, 2.0, 2.5, 5.0):
        if raw <= multiple * magnitude * (1 + 1e-9):
            return multiple * magnitude
    return 10.0 * magnitude


def axis_range(
    values: Sequence[float], ticks: int, include: Sequence[float] = (), ceiling: float | None = None
) -> list[float]:
    """The tick values of a y axis that holds every value (and each of ``include``), on round steps.

    The axis never goes above ``ceiling`` (availability stops at 100%). A flat line gets
    some room around it, below the ceiling if it sits on it.
    """
    low, high = min([*values, *include]), max([*values, *include])
    if low == high:
        room = abs(high) * 0.01 or 1.0
        low, high = (low - room, high) if ceiling is not None and high >= ceiling else (low - room, high + room)
    step = nice_step(high - low, ticks)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    found = [round(i * step, 12) for i in range(first, last + 1)]
    if ceiling is not None:
        found = [tick for tick in found if tick <= ceiling + 1e-12]
        if found[-1] < high:
            found.append(ceiling)
    return found


AVAILABILITY_FLOORS = (0.99, 0.95, 0.90, 0.0)


def availability_axis(values: Sequence[float], objective: float | None = None, ticks: int = 4) -> list[float]:
    """The ticks of an availability axis, as status pages draw it: from a fixed floor to 100%.

    The floor is the SLO's ``objective`` when every value meets it, else 99%, 95%, 90% or 0%,
    the first that holds every value. A floor taken from the data instead (99.992% in a
    week of 100%) would make the smallest blip fill the chart; a fixed one keeps it the
    sliver it is, and against an SLO it shows how much of the error budget went. Between
    the floor and 100%, round ticks at least half a step from the floor.
    """
    lowest = min(values, default=1.0)
    floors = ((objective,) if objective is not None and 0 <= objective < 1 else ()) + AVAILABILITY_FLOORS
    floor = next((candidate for candidate in floors if lowest >= candidate), 0.0)
    step = even_step(1.0 - floor, ticks)
    if step is not None:
        parts = round((1.0 - floor) / step)
        return [round(floor + i * step, 12) for i in range(parts)] + [1.0]
    step = nice_step(1.0 - floor, ticks)  # an SLO such as 99.937%: round ticks between its own ends
    inner = [round(i * step, 12) for i in range(math.ceil(floor / step), math.floor(1 / step) + 1)]
    room = step / 2 - 1e-12  # a tick closer than half a step to an end would crowd its label
    return [floor, *(tick for tick in inner if floor + room <= tick <= 1.0 - room), 1.0]


def even_step(span: float, ticks: int) -> float | None:
    """A round step (1, 2, 2.5 or 5 times a power of ten) that cuts ``span`` into 2 to 8 equal
    parts, as near ``ticks`` parts as can be; None when no round step does."""
    fits = []
    for power in range(math.floor(math.log10(span)) - 2, math.floor(math.log10(span)) + 1):
        for multiple in (1.0, 2.0, 2.5, 5.0):
            step = multiple * 10.0**power
            parts = span / step
            if 2 <= round(parts) <= 8 and abs(parts - round(parts)) < 1e-6:
                fits.append((abs(round(parts) - ticks), -round(parts), step))
    return min(fits)[2] if fits else None


def svg_line_chart(
    points: Sequence[Point],
    *,
    title: str,
    format_value: Callable[[float], str] = "{:g}".format,
    include: Sequence[float] = (),
    ceiling: float | None = None,
    axis: Sequence[float] | None = None,
    reference: tuple[float, str] | None = None,
    ticks: int = 4,
    width: int = 480,
    height: int = 220,
    css_class: str = "",
) -> Markup:
    """A line chart of ``points`` in order, evenly spaced along x, as an ``<svg class="chart">``.

    The data line is the one ``<path class="line">`` (gaps where a value is None), each
    value also a dot with a tooltip; the y axis has round ticks labelled by
    ``format_value``, or the ticks of ``axis`` (its first and last are the ends) when
    given. ``reference`` is a value and its label drawn across the chart as
    ``<line class="reference">`` (an SLO, say). Every label and the title are escaped.
    With no values at all the chart says so and draws no line.
    """
    plot_left, plot_right = MARGIN_LEFT, width - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    classes = " ".join(["chart", *css_class.split()])
    parts = [
        f'<svg class="{escape(classes)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{plot_left}" y="18" fill="{TEXT_COLOUR}">{escape(title)}</text>',
    ]
    values = [value for _, value in points if value is not None and math.isfinite(value)]
    if not values:
        middle_x, middle_y = (plot_left + plot_right) / 2, (plot_top + plot_bottom) / 2
        parts.append(
            f'<rect x="{plot_left}" y="{plot_top}" width="{plot_right - plot_left}" '
            f'height="{plot_bottom - plot_top}" fill="none" stroke="{GRID_COLOUR}"/>'
        )
        parts.append(
            f'<text class="chart-empty" x="{middle_x:.1f}" y="{middle_y:.1f}" text-anchor="middle" '
            f'fill="{TEXT_COLOUR}">No data</text>'
        )
        parts.append("</svg>")
        return Markup("".join(parts))  # noqa: S704 — every piece above is escaped or a number

    axis = list(axis) if axis is not None else axis_range(values, ticks, include, ceiling)
    low, high = axis[0], axis[-1]

    def y_of(value: float) -> float:
        return plot_bottom - (value - low) / (high - low) * (plot_bottom - plot_top)

    def x_of(index: int) -> float:
        if len(points) == 1:
            return (plot_left + plot_right) / 2
        return plot_left + index * (plot_right - plot_left) / (len(points) - 1)

    parts.append('<g class="grid">')
    for tick in axis:
        y = y_of(tick)
        parts.append(f'<line x1="{plot_left}" x2="{plot_right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID_COLOUR}"/>')
        parts.append(
            f'<text class="tick" x="{plot_left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="{TEXT_COLOUR}">{escape(format_value(tick))}</text>'
        )
    parts.append("</g>")
    if reference is not None and low <= reference[0] <= high:
        y = y_of(reference[0])
        parts.append(
            f'<g class="reference"><line class="reference" x1="{plot_left}" x2="{plot_right}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="{REFERENCE_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text class="reference-label" x="{plot_right}" y="{y - 4:.1f}" text-anchor="end" '
            f'fill="{REFERENCE_COLOUR}">{escape(reference[1])}</text></g>'
        )

    # Counted from the right, so the latest point (this week) always has its label.
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    parts.append('<g class="labels">')
    for index, (label, _) in enumerate(points):
        if (len(points) - 1 - index) % every == 0:
            parts.append(
                f'<text class="tick" x="{x_of(index):.1f}" y="{height - 10}" text-anchor="middle" '
                f'fill="{TEXT_COLOUR}">{escape(label)}</text>'
            )
    parts.append("</g>")

    commands: list[str] = []
    pen_down = False
    for index, (_, value) in enumerate(points):
        if value is None or not math.isfinite(value):
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{x_of(index):.1f},{y_of(value):.1f}")
        pen_down = True
    parts.append(
        f'<path class="line" d="{" ".join(commands)}" fill="none" stroke="{LINE_COLOUR}" stroke-width="2" '
        'stroke-linejoin="round" stroke-linecap="round"/>'
    )

    parts.append('<g class="points">')
    for index, (label, value) in enumerate(points):
        if value is None or not math.isfinite(value):
            continue
        parts.append(
            f'<circle cx="{x_of(index):.1f}" cy="{y_of(value):.1f}" r="3" fill="{LINE_COLOUR}">'
            f"<title>{escape(label)}: {escape(format_value(value))}</title></circle>"
        )
    parts.append("</g></svg>")
    return Markup("".join(parts))  # noqa: S704 — every piece above is escaped or a number


Interval = tuple[str, float | None, float | None, float | None]
"""A row of an interval chart: its label, the estimate, and the low and high ends of its interval."""

ABOVE_COLOUR = "#1a7f37"  # the whole interval above zero
BELOW_COLOUR = "#cf222e"  # the whole interval below zero
ZERO_COLOUR = "#1f2328"
LABEL_WIDTH = 120


def interval_colour(low: float, high: float) -> str:
    """Green when the interval lies above zero, red below it, blue when it holds zero."""
    if low > 0:
        return ABOVE_COLOUR
    if high < 0:
        return BELOW_COLOUR
    return LINE_COLOUR


def svg_interval_chart(
    rows: Sequence[Interval],
    *,
    title: str,
    format_value: Callable[[float], str] = "{:g}".format,
    ticks: int = 4,
    width: int = 480,
    row_height: int = 36,
    css_class: str = "",
) -> Markup:
    """Estimates with their intervals, one row each, against a zero line, as an ``<svg class="chart">``.

    The x axis holds every end and zero, on round ticks labelled by ``format_value``;
    zero is the one ``<line class="zero">``. A row with its three numbers is a
    ``<g class="interval" data-label=…>`` holding a ``<line class="range">`` from the low
    end to the high end and a ``<circle class="estimate">`` at the estimate, with a
    tooltip; a row missing any of them says "not enough data" instead. Every label and the
    title are escaped.
    """
    plot_left, plot_right = LABEL_WIDTH, width - MARGIN_RIGHT
    plot_top = MARGIN_TOP
    plot_bottom = plot_top + max(1, len(rows)) * row_height
    height = plot_bottom + MARGIN_BOTTOM
    classes = " ".join(["chart", *css_class.split()])
    parts = [
        f'<svg class="{escape(classes)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="chart-title" x="{MARGIN_RIGHT}" y="18" fill="{TEXT_COLOUR}">{escape(title)}</text>',
    ]
    values = [value for _, *numbers in rows if _all_finite(numbers) for value in numbers if value is not None]
    axis = axis_range(values or [0.0], ticks, include=(0.0,))
    left, right = axis[0], axis[-1]

    def x_of(value: float) -> float:
        return plot_left + (value - left) / (right - left) * (plot_right - plot_left)

    parts.append('<g class="grid">')
    for tick in axis:
        x = x_of(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{plot_top}" y2="{plot_bottom}" stroke="{GRID_COLOUR}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{height - 10}" text-anchor="middle" '
            f'fill="{TEXT_COLOUR}">{escape(format_value(tick))}</text>'
        )
    parts.append("</g>")
    zero = x_of(0.0)
    parts.append(
        f'<line class="zero" x1="{zero:.1f}" x2="{zero:.1f}" y1="{plot_top}" y2="{plot_bottom}" '
        f'stroke="{ZERO_COLOUR}" stroke-width="1.5"/>'
    )

    for index, (label, point, low, high) in enumerate(rows):
        y = plot_top + (index + 0.5) * row_height
        parts.append(
            f'<text class="tick" x="{plot_left - 8}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="{TEXT_COLOUR}">{escape(label)}</text>'
        )
        if point is None or low is None or high is None or not _all_finite([point, low, high]):
            parts.append(
                f'<text class="chart-empty" x="{plot_left + 8}" y="{y + 4:.1f}" '
                f'fill="{TEXT_COLOUR}">not enough data</text>'
            )
            continue
        colour = interval_colour(low, high)
        tip = f"{label}: {format_value(point)} ({format_value(low)} to {format_value(high)})"
        parts.append(
            f'<g class="interval" data-label="{escape(label)}">'
            f'<line class="range" x1="{x_of(low):.1f}" x2="{x_of(high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="4" stroke-linecap="round"/>'
            f'<circle class="estimate" cx="{x_of(point):.1f}" cy="{y:.1f}" r="6" fill="{colour}" '
            f'stroke="#ffffff" stroke-width="1.5"><title>{escape(tip)}</title></circle></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 — every piece above is escaped or a number


def _all_finite(numbers: Sequence[float | None]) -> bool:
    return all(value is not None and math.isfinite(value) for value in numbers)
