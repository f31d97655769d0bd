"""An experiment's results over time on its page, in Chromium: one point and one table row per
day of data, each day's lift as the daily results say, the last one today's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect
from tests.web.test_experiments_pages import BASE, define, shop

from podium.web.experiment_timeline import svg_lift_over_time
from podium.web.experiments import signed_percent

if TYPE_CHECKING:
    from tests.conftest import LiveServer

DAYS = 5
START = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=DAYS - 1)


def events_over_days() -> list[dict[str, Any]]:
    """200 users a day for five days; control's sign-ups come the same day, treatment's the next (or now)."""
    events: list[dict[str, Any]] = []
    for day in range(DAYS):
        moment = START + timedelta(days=day)
        for i in range(200):
            user, variant = f"d{day}-u{i}", ("control", "treatment")[i % 2]
            events.append({"id": f"x-{user}", "type": "exposure", "user_id": user, "experiment": "big-button",
                           "variant": variant, "at": moment.isoformat()})
            if i % (5 if variant == "treatment" else 8) == 0:
                later = min(moment + timedelta(days=i % 2), datetime.now(UTC))
                events.append({"id": f"m-{user}", "type": "metric", "user_id": user, "name": "signup",
                               "at": later.isoformat()})
    return events


@pytest.mark.browser
def test_the_page_draws_one_point_and_one_row_per_day(page: Page, live_server: LiveServer) -> None:
    with live_server.client() as client:
        shop(client)
        define(client, "big-button", sequential=True)
        sent = client.post("/api/v1/events", json={"service": "shop", "env": "production",
                                                   "events": events_over_days()})
        assert sent.json()["rejected"] == [], sent.text
        daily = client.get(f"/api/v1{BASE}/big-button/results/daily").json()
    days = [(START + timedelta(days=d)).date().isoformat() for d in range(DAYS)]
    assert [point["day"] for point in daily["days"]] == days
    assert daily["sequential"] is True

    problems: list[str] = []
    page.on("console", lambda message: _keep_errors(message, problems))
    page.goto(f"{live_server.url}/login?next={BASE}/big-button")
    page.get_by_label("Token").fill(live_server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}{BASE}/big-button")

    block = page.get_by_test_id("results-over-time")
    expect(block).to_have_attribute("data-days", str(DAYS))
    chart = block.locator("svg.chart.lift-over-time")
    points = chart.locator('g.series[data-variant="treatment"] circle.point')
    expect(points).to_have_count(DAYS)
    assert [points.nth(i).get_attribute("data-day") for i in range(DAYS)] == days
    xs = [float(points.nth(i).get_attribute("cx") or "nan") for i in range(DAYS)]
    assert xs == sorted(xs), "the days run left to right"
    expect(chart.locator("line.zero")).to_have_count(1)
    expect(chart.locator("polygon.band")).to_have_count(1)

    block.get_by_text("The numbers, day by day").click()
    rows = block.locator('tr[data-variant="treatment"]')
    expect(rows).to_have_count(DAYS)
    for point in daily["days"]:
        row = block.locator(f'tr[data-day="{point["day"]}"][data-variant="treatment"]')
        expect(row).to_be_visible()
        expect(row).to_contain_text(signed_percent(point["variants"][1]["lift"]))
        expect(row).to_contain_text(f"{point['variants'][1]['users']:,}")
    today = page.get_by_test_id("primary-results").locator('tr[data-variant="treatment"]')
    expect(today).to_contain_text(signed_percent(daily["days"][-1]["variants"][1]["lift"]))
    expect(block.locator(f'tr[data-day="{days[-1]}"][data-variant="treatment"]')).to_contain_text(
        f"{DAYS * 100:,}")  # every user by the last day
    assert problems == [], "the page logged errors (a CSP violation, a failed script)"


def _keep_errors(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"{message.text} ({message.location.get('url', '')})")


def test_a_day_without_an_interval_breaks_the_band_and_keeps_its_point() -> None:
    svg = str(svg_lift_over_time(
        ["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"],
        [("b", [(0.1, -0.1, 0.3), (None, None, None), (0.2, 0.0, 0.4), (0.15, 0.05, 0.25)])],
        title="Lift <by day>",
    ))
    assert svg.count('class="point"') == 3
    assert svg.count('class="band"') == 2
    assert "Lift &lt;by day&gt;" in svg
    assert svg.count('class="zero"') == 1
