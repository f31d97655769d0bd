"""The server-drawn charts and the numbers on the cards: pure functions, no server."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from podium.metrics.availability import AvailabilityReport
from podium.metrics.dora import DoraReport
from podium.web.availability import availability_cards, dora_cards, percent, tick_percent, trend_since
from podium.web.charts import availability_axis, axis_range, nice_step, svg_line_chart

PATH_D = re.compile(r'<path class="line" d="([^"]*)"')
TICK = re.compile(r'<text class="tick" x="58" y="[\d.]+" text-anchor="end" fill="#656d76">([^<]*)</text>')


def line_of(svg: str) -> str:
    match = PATH_D.search(svg)
    assert match is not None, "no data line"
    return match.group(1)


def points_of(d: str) -> list[tuple[str, float, float]]:
    return [(c, float(x), float(y)) for c, x, y in re.findall(r"([ML])([\d.]+),([\d.]+)", d)]


def test_a_line_goes_through_every_point_left_to_right_higher_values_higher_up() -> None:
    svg = str(svg_line_chart([("w1", 1.0), ("w2", 3.0), ("w3", 2.0)], title="MTTR"))
    assert svg.startswith('<svg class="chart"')
    points = points_of(line_of(svg))
    assert [c for c, _, _ in points] == ["M", "L", "L"]
    xs, ys = [x for _, x, _ in points], [y for _, _, y in points]
    assert xs == sorted(xs)
    assert ys[1] < ys[2] < ys[0], "SVG's y grows downwards: the largest value has the smallest y"
    assert svg.count("<circle") == 3
    assert "<title>w2: 3</title>" in svg


def test_a_missing_value_breaks_the_line_and_has_no_dot() -> None:
    d = line_of(str(svg_line_chart([("a", 1.0), ("b", None), ("c", 2.0), ("d", 3.0)], title="t")))
    assert [c for c, _, _ in points_of(d)] == ["M", "M", "L"]


def test_no_values_at_all_says_so_and_draws_no_line() -> None:
    svg = str(svg_line_chart([("a", None), ("b", None)], title="MTTR per week"))
    assert "No data" in svg
    assert "<path" not in svg
    assert svg.endswith("</svg>")


def test_title_and_labels_are_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    svg = str(svg_line_chart([(hostile, 1.0), ("b", 2.0)], title=hostile, css_class='x" onload="y'))
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in svg
    assert 'onload="y' not in svg


def test_the_y_axis_has_round_ticks_that_hold_every_value() -> None:
    svg = str(svg_line_chart([("a", 3.0), ("b", 47.0)], title="t", include=(0.0,)))
    assert TICK.findall(svg) == ["0", "20", "40", "60"]


def test_availability_never_goes_above_100_percent_and_a_flat_100_gets_room_below() -> None:
    assert axis_range([1.0, 1.0], 4, ceiling=1.0) == [0.99, 0.9925, 0.995, 0.9975, 1.0]
    ticks = axis_range([0.5, 1.0], 4, ceiling=1.0)
    assert ticks[0] <= 0.5
    assert ticks[-1] == 1.0
    svg = str(svg_line_chart([("a", 0.9972), ("b", 1.0)], title="t", format_value=tick_percent, ceiling=1.0))
    labels = TICK.findall(svg)
    assert labels[-1] == "100%"
    assert all(float(label.rstrip("%")) <= 100 for label in labels)


@pytest.mark.parametrize(
    ("span", "ticks", "step"), [(10, 5, 2), (1, 4, 0.25), (0.01, 4, 0.0025), (470, 4, 200), (7, 7, 1)]
)
def test_nice_steps(span: float, ticks: int, step: float) -> None:
    assert nice_step(span, ticks) == pytest.approx(step)


def test_percentages_are_never_rounded_up_to_100() -> None:
    assert percent(None) == "no data"
    assert percent(1.0) == "100%"
    assert percent(0.999996) == "99.999%"
    assert percent(0.99952) == "99.952%"
    assert percent(0.0) == "0.000%"
    assert tick_percent(0.9975) == "99.75%"


def test_a_metric_with_no_data_is_a_dash_and_a_count_of_zero_is_zero() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC)
    quiet = AvailabilityReport(start, end, 0, 0, None, None, None, None, 1.0, 1.0, 0.0, 2_592_000.0)
    cards = {card.key: card for card in availability_cards(quiet)}
    assert cards["availability"].value == "100%"
    assert cards["incidents"].value == "0"
    for key in ("mttr", "mtta", "mtbf"):
        assert cards[key].value == "no data"
        assert cards[key].empty
    dora = {card.key: card.value for card in dora_cards(DoraReport(start, end, 0, 0, 0.0, None, None, None))}
    assert dora == {"deployment_frequency": "0.00 / day", "lead_time": "no data", "change_failure_rate": "no data",
                    "time_to_restore": "no data"}


def test_trends_start_on_a_monday_eleven_weeks_before_this_weeks() -> None:
    assert trend_since(datetime(2026, 3, 19, 15, 30, tzinfo=UTC)) == "2025-12-29T00:00:00+00:00"


def dots_of(svg: str) -> list[float]:
    """The y of each dot, in order."""
    return [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]


def tick_ys(svg: str) -> dict[str, float]:
    return {label: float(y) - 4 for y, label in re.findall(
        r'<text class="tick" x="58" y="([\d.]+)" text-anchor="end" fill="#656d76">([^<]*)</text>', svg)}


WEEKS = [(f"w{n}", 1.0) for n in range(1, 12)]


def chart(points: list[tuple[str, float | None]], objective: float | None = None) -> str:
    values = [value for _, value in points if value is not None]
    reference = None if objective is None else (objective, f"SLO {tick_percent(objective)}")
    return str(svg_line_chart(points, title="Availability per week", format_value=tick_percent,
                              axis=availability_axis(values, objective), reference=reference))


def test_a_blip_of_a_99_992_percent_week_stays_a_sliver_on_an_axis_from_99_percent() -> None:
    svg = chart([*WEEKS, ("w12", 0.99992)])
    assert TICK.findall(svg) == ["99%", "99.25%", "99.5%", "99.75%", "100%"]
    ys = tick_ys(svg)
    height = ys["99%"] - ys["100%"]  # the plot's height
    blip = dots_of(svg)[-1] - dots_of(svg)[0]
    assert 0 < blip < height * 0.01, "0.008 points below 100%: under 1% of the chart's height"
    assert "reference" not in svg, "no objective, no SLO line"
    # The axis as it was: from the data's own low, where the same blip filled the chart.
    assert axis_range([1.0, 0.99992], 4, ceiling=1.0)[0] >= 0.9999


def test_with_an_slo_met_every_week_the_axis_starts_at_the_slo_and_says_so() -> None:
    svg = chart([*WEEKS, ("w12", 0.99992)], objective=0.999)
    assert TICK.findall(svg) == ["99.9%", "99.925%", "99.95%", "99.975%", "100%"]
    assert '<line class="reference"' in svg
    assert ">SLO 99.9%</text>" in svg
    ys = tick_ys(svg)
    slo_y = float(re.findall(r'<line class="reference" x1="\d+" x2="\d+" y1="([\d.]+)"', svg)[0])
    assert slo_y == pytest.approx(ys["99.9%"], abs=0.1)
    # 8% of the budget the objective allows: 8% of the way down to the SLO line.
    blip = (dots_of(svg)[-1] - dots_of(svg)[0]) / (ys["99.9%"] - ys["100%"])
    assert blip == pytest.approx(0.08, abs=0.01)


def test_a_week_below_the_slo_moves_the_floor_down_to_show_it_with_the_slo_line_above() -> None:
    svg = chart([*WEEKS, ("w12", 0.9985)], objective=0.999)
    assert TICK.findall(svg) == ["99%", "99.25%", "99.5%", "99.75%", "100%"]
    ys = tick_ys(svg)
    slo_y = float(re.findall(r'<line class="reference" x1="\d+" x2="\d+" y1="([\d.]+)"', svg)[0])
    assert ys["100%"] < slo_y < dots_of(svg)[-1] < ys["99%"], "the bad week's dot is under the SLO line"


@pytest.mark.parametrize(("values", "objective", "ticks"), [
    ([1.0, 1.0], None, [0.99, 0.9925, 0.995, 0.9975, 1.0]),  # a flat 100%: the same room below as any week
    ([], None, [0.99, 0.9925, 0.995, 0.9975, 1.0]),
    ([0.97], None, [0.95, 0.96, 0.97, 0.98, 0.99, 1.0]),
    ([0.93, 1.0], None, [0.9, 0.925, 0.95, 0.975, 1.0]),
    ([0.6], None, [0.0, 0.25, 0.5, 0.75, 1.0]),
    ([0.9999], 0.9995, [0.9995, 0.9996, 0.9997, 0.9998, 0.9999, 1.0]),
    ([1.0], 0.997, [0.997, 0.998, 0.999, 1.0]),
    ([1.0], 0.99937, [0.99937, 0.9996, 0.9998, 1.0]),  # no round step cuts 0.063 points evenly
    ([0.98], 0.995, [0.95, 0.96, 0.97, 0.98, 0.99, 1.0]),
])
def test_availability_axes_run_from_a_fixed_floor_to_100_percent(
    values: list[float], objective: float | None, ticks: list[float]
) -> None:
    assert availability_axis(values, objective) == pytest.approx(ticks)
