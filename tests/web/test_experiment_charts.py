"""The lift chart of an experiment page: intervals where the numbers put them, a zero line, escaping."""

from __future__ import annotations

import re

from podium.web.charts import ABOVE_COLOUR, BELOW_COLOUR, LINE_COLOUR, svg_interval_chart

RANGE = re.compile(r'<g class="interval" data-label="([^"]*)"><line class="range" x1="([\d.]+)" x2="([\d.]+)" '
                   r'y1="([\d.]+)" y2="[\d.]+" stroke="([^"]+)"')
ESTIMATE = re.compile(r'<circle class="estimate" cx="([\d.]+)" cy="([\d.]+)"')
ZERO = re.compile(r'<line class="zero" x1="([\d.]+)"')


def percent(value: float) -> str:
    return f"{value * 100:+.0f}%"


def test_each_interval_spans_its_ends_around_its_estimate_and_zero_sits_where_zero_is() -> None:
    svg = str(svg_interval_chart(
        [("bigger", 0.2, 0.1, 0.3), ("smaller", -0.1, -0.3, 0.1)], title="Lift", format_value=percent,
    ))
    ranges = RANGE.findall(svg)
    estimates = [(float(x), float(y)) for x, y in ESTIMATE.findall(svg)]
    assert [label for label, *_ in ranges] == ["bigger", "smaller"]
    assert len(estimates) == 2
    (zero_text,) = ZERO.findall(svg)
    zero = float(zero_text)

    # The x axis is linear: equal steps in lift are equal steps in pixels.
    _, low1, high1, y1, _ = ranges[0]
    _, low2, high2, y2, _ = ranges[1]
    low_big, high_big, low_small, high_small = float(low1), float(high1), float(low2), float(high2)
    unit = (high_big - low_big) / 0.2  # pixels per 1.0 of lift
    assert unit > 0
    assert abs((zero - low_small) - 0.3 * unit) < 0.2
    assert abs((high_small - zero) - 0.1 * unit) < 0.2
    assert abs((low_big - zero) - 0.1 * unit) < 0.2
    assert abs((estimates[0][0] - zero) - 0.2 * unit) < 0.2
    assert abs((zero - estimates[1][0]) - 0.1 * unit) < 0.2
    # One row each, the estimate on its interval's line.
    assert float(y1) < float(y2)
    assert [y for _, y in estimates] == [float(y1), float(y2)]


def test_colour_says_whether_the_interval_holds_zero() -> None:
    svg = str(svg_interval_chart(
        [("up", 0.2, 0.05, 0.35), ("flat", 0.0, -0.1, 0.1), ("down", -0.2, -0.3, -0.1)], title="Lift",
    ))
    assert [colour for *_, colour in RANGE.findall(svg)] == [ABOVE_COLOUR, LINE_COLOUR, BELOW_COLOUR]


def test_the_axis_always_holds_zero_even_when_every_interval_is_far_from_it() -> None:
    svg = str(svg_interval_chart([("t", 2.0, 1.5, 2.5)], title="Lift", format_value=percent))
    (zero,) = ZERO.findall(svg)
    ((_, low, high, _, _),) = RANGE.findall(svg)
    assert float(zero) < float(low) < float(high)
    assert ">+0%</text>" in svg
    assert ">+250%</text>" in svg or ">+300%</text>" in svg


def test_a_row_without_numbers_says_so_and_draws_no_interval() -> None:
    svg = str(svg_interval_chart([("t1", None, None, None), ("t2", 0.1, float("nan"), 0.2)], title="Lift"))
    assert svg.count("not enough data") == 2
    assert '<g class="interval"' not in svg
    assert svg.count('<line class="zero"') == 1
    assert svg.endswith("</svg>")


def test_labels_and_title_are_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    svg = str(svg_interval_chart([(hostile, 0.1, 0.0, 0.2)], title=hostile, css_class='x" onload="y'))
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in svg
    assert 'onload="y' not in svg
