"""The numbers of an experiment page, without a server: the lift chart, the formats, the results view."""

from __future__ import annotations

import re

from podium.web.charts import ABOVE_COLOUR, BELOW_COLOUR, LINE_COLOUR, svg_interval_chart
from podium.web.experiments import MINUS, p_value, results_view, share, signed_percent, tick_lift, weights_text

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


# The numbers as the page prints them --------------------------------------------------------


def test_shares_lifts_and_p_values_read_as_people_write_them() -> None:
    shares = [share(0.02), share(0.0025), share(0.5), share(1.0), share(None)]
    assert shares == ["2.0%", "0.25%", "50.0%", "100.0%", "—"]
    assert signed_percent(0.287) == "+28.7%"
    assert signed_percent(-0.031) == f"{MINUS}3.1%"
    assert signed_percent(0.0) == "0.0%"
    assert signed_percent(None) == "—"
    assert [tick_lift(0.1), tick_lift(0.0), tick_lift(-0.025)] == ["+10%", "0%", f"{MINUS}2.5%"]
    assert [p_value(0.0412), p_value(0.0004), p_value(None)] == ["0.041", "< 0.001", "—"]
    assert weights_text([0.5, 0.5]) == ["50%", "50%"]
    assert weights_text([1, 3]) == ["25%", "75%"]


RESULTS = {
    "experiment": "big-button", "service": "shop", "env": "production", "metric": "signup", "kind": "binomial",
    "status": "running",
    "variants": [
        {"name": "control", "users": 1000, "conversions": 100, "rate": 0.1, "lift": None, "ci_low": None,
         "ci_high": None, "p_value": None, "chance_to_beat_control": None},
        {"name": "treatment", "users": 800, "conversions": 120, "rate": 0.15, "lift": 0.5, "ci_low": 0.16,
         "ci_high": 0.84, "p_value": 0.0011, "chance_to_beat_control": 0.9994},
    ],
    "srm_p_value": 2.5e-6, "srm_mismatch": True,
    "warnings": ["sample ratio mismatch (p = 2.5e-06 < 0.001): users are not split as configured, …",
                 "variant 'control' has 90 users, fewer than 100"],
    "guardrails": [{"metric": "error", "kind": "binomial", "variants": [
        {"name": "control", "users": 1000, "conversions": 5, "rate": 0.005, "lift": None, "ci_low": None,
         "ci_high": None, "p_value": None, "chance_to_beat_control": None},
        {"name": "treatment", "users": 800, "conversions": 4, "rate": 0.005, "lift": 0.0, "ci_low": -0.9,
         "ci_high": 0.9, "p_value": 1.0, "chance_to_beat_control": 0.5},
    ], "srm_p_value": 2.5e-6, "srm_mismatch": False, "warnings": []}],
    "segment": None,
}


def test_the_results_view_keeps_the_srm_alert_apart_and_formats_each_variant() -> None:
    view = results_view(RESULTS)
    assert view.srm_mismatch
    assert view.srm_p_value == "p < 0.001"
    assert view.split == "1,000 / 800"
    assert view.warnings == ["variant 'control' has 90 users, fewer than 100"], "SRM is its own alert, not repeated"
    control, treatment = view.rows
    assert (control.control, control.lift, control.interval, control.outcome) == (True, "control", "", "10.00%")
    assert (treatment.users, treatment.conversions, treatment.outcome) == ("800", "120", "15.00%")
    assert (treatment.lift, treatment.interval) == ("+50.0%", "+16.0% to +84.0%")
    assert (treatment.p_value, treatment.chance, treatment.better) == ("0.001", "99.9%", True)
    assert str(view.chart).count('<g class="interval"') == 1, "one interval per treatment, none for the control"
    (guardrail,) = view.guardrails
    assert guardrail.metric == "error"
    assert not guardrail.srm_mismatch
    assert guardrail.rows[1].better is None
    assert 'class="chart lift guardrail-0"' in str(guardrail.chart)


def test_a_numeric_metric_shows_means_and_no_conversions() -> None:
    view = results_view({
        "metric": "revenue", "kind": "numeric",
        "variants": [
            {"name": "control", "users": 500, "mean": 12.5, "lift": None, "ci_low": None, "ci_high": None,
             "p_value": None, "chance_to_beat_control": None},
            {"name": "treatment", "users": 510, "mean": 11.25, "lift": -0.1, "ci_low": -0.25, "ci_high": -0.02,
             "p_value": 0.03, "chance_to_beat_control": 0.02},
        ],
        "srm_p_value": 0.75, "srm_mismatch": False, "warnings": [], "guardrails": [], "segment": None,
    })
    control, treatment = view.rows
    assert (control.outcome, control.conversions) == ("12.5", "—")
    assert (treatment.outcome, treatment.lift, treatment.better) == ("11.25", f"{MINUS}10.0%", False)
    assert treatment.interval == f"{MINUS}25.0% to {MINUS}2.0%"
    assert not view.srm_mismatch
    assert view.srm_p_value == "p = 0.750"
    assert BELOW_COLOUR in str(view.chart)
