"""The billing pages: a team's month with its chart and invoice, and the platform's page; in Chromium too."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import Page, expect
from tests.billing.support import go_live, make_service, store_usage, usage
from tests.web.support import sign_in

from podium.api.app import create_app
from podium.billing.invoice import Month
from podium.billing.models import Meter
from podium.core import Podium
from podium.web.billing import TOP, stacked_bar_chart

if TYPE_CHECKING:
    from tests.conftest import LiveServer


def month_use(month: str) -> list:  # type: ignore[type-arg]
    return [
        usage("checkout", 3600, f"{month}-01 10:00:00", f"{month}-01 11:00:00"),
        usage("checkout", 7200, f"{month}-02 10:00:00", f"{month}-02 11:00:00"),
        usage("checkout", 250, f"{month}-02 10:00:00", f"{month}-02 11:00:00", meter=Meter.API_REQUESTS),
        usage("checkout", 1800, f"{month}-02 10:00:00", f"{month}-02 10:30:00", service="ledger"),
        usage("search", 3600, f"{month}-01 10:00:00", f"{month}-01 11:00:00", service="search-api"),
    ]


def browser_of(core: Podium, token: str) -> TestClient:
    client = TestClient(create_app(core))
    assert sign_in(client, token).status_code == 303
    return client


def token_of(admin: TestClient, team: str) -> str:
    token: str = admin.post(f"/api/v1/teams/{team}/tokens", json={}).json()["token"]
    return token


def test_a_team_page_stacks_cost_per_day_and_shows_the_invoice(
    core: Podium, admin: TestClient, teams: dict[str, TestClient]
) -> None:
    store_usage(core, *month_use("2026-01"))
    page = browser_of(core, token_of(admin, "checkout")).get("/teams/checkout/billing", params={"month": "2026-01"})
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-testid="billing-chart"' in html
    bars = re.findall(r'<rect class="bar" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', html)
    assert len(bars) == 4  # cart·process on days 1 and 2, cart·requests and ledger·process on day 2
    assert "2026-01-02 cart · api_requests: 2.50 USD" in html
    invoice = admin.get("/api/v1/billing/invoices/checkout/2026-01").json()
    total = f"{invoice['total_cents'] // 100:,}.{invoice['total_cents'] % 100:02d} USD"
    assert re.search(rf'data-testid="billing-total"><strong>{re.escape(total)}</strong>', html)
    assert "closed" in html
    assert "search-api" not in html
    # How the team's share of the platform's cost was computed, as the invoice says.
    (basis,) = invoice["shared_basis"]
    assert basis["rule"] == "usage"
    share = f"{basis['share'] * 100:.2f}%"
    used = f"{invoice['usage_cents'] / 100:,.2f}"
    assert re.search(r"shared in proportion to each team&#39;s usage cost this month;\s+this team used "
                     rf"{re.escape(used)} of [\d,.]+ in usage = {re.escape(share)}", html)


@settings(max_examples=100, deadline=None)  # a loaded machine must not fail it on time
@given(st.lists(st.lists(st.decimals(0, 10**6, places=4), min_size=28, max_size=28), min_size=1, max_size=6))
def test_the_chart_stacks_every_bar_inside_its_plot(columns: list[list[Decimal]]) -> None:
    series = {(f"svc-{index}", "process_seconds"): values for index, values in enumerate(columns)}
    chart = stacked_bar_chart(series, Month(2026, 2), "USD")
    assert chart.empty == (not any(any(values) for values in columns))
    for bar in chart.bars:
        assert bar.y >= TOP - 0.01
        assert bar.y + bar.height <= chart.baseline + 0.01
        assert chart.plot_left <= bar.x
        assert bar.x + bar.width <= chart.plot_right
    assert chart.y_ticks[0].label == "0.00"
    assert [tick.label for tick in chart.x_ticks][-1] == "28"


def test_the_billing_pages_keep_teams_apart(core: Podium, admin: TestClient, teams: dict[str, TestClient]) -> None:
    search = browser_of(core, token_of(admin, "search"))
    assert search.get("/teams/checkout/billing").status_code == 403
    assert search.get("/billing/platform").status_code == 403
    assert search.get("/teams/search/billing", params={"month": "2099-01"}).status_code == 422
    assert TestClient(create_app(core)).get("/billing/platform", follow_redirects=False).status_code == 303


def test_the_platform_page_shows_each_team_and_its_use_of_the_platform(
    core: Podium, admin: TestClient, teams: dict[str, TestClient]
) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    store_usage(core, *month_use(month))
    go_live(core, "cart", "staging", datetime.now(UTC), formation={"web": 1})
    go_live(core, "cart", "production", datetime.now(UTC), formation={"web": 1})
    make_service(admin, "ledger", "checkout")
    admin.post(
        "/api/v1/services/cart/environments/staging/experiments",
        json={"key": "big-button", "variants": ["control", "treatment"], "metric": "signup"},
    ).raise_for_status()
    page = browser_of(core, token_of(admin, "platform")).get("/billing/platform")
    assert page.status_code == 200, page.text
    html = re.sub(r"\s+", " ", page.text)
    assert 'href="/teams/checkout/billing?month=' in html
    assert 'data-testid="platform-cost">100.00 USD' in html
    row = re.search(r"<td>checkout</td>(.*?)</tr>", html)
    assert row is not None
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(1))
    assert cells[0] == "2"  # two deploys this month
    assert cells[2] == "1"  # one experiment


@pytest.mark.browser
def test_a_team_sees_its_chart_and_total_in_the_browser(
    page: Page, live_server: LiveServer, core: Podium
) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    with live_server.client() as client:
        make_service(client, "cart", "checkout")  # type: ignore[arg-type]
        make_service(client, "search-api", "search")  # type: ignore[arg-type]
        token = client.post("/api/v1/teams/checkout/tokens", json={}).json()["token"]
        store_usage(core, *month_use(month))
        total_cents = client.get(f"/api/v1/billing/invoices/checkout/{month}").json()["total_cents"]
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/teams/checkout/billing")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{live_server.url}/teams/checkout/billing")
    chart = page.get_by_test_id("billing-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.bar")).to_have_count(4)
    expect(page.get_by_test_id("billing-legend")).to_contain_text("ledger · process_seconds")
    expect(page.get_by_test_id("billing-total")).to_have_text(f"{total_cents // 100:,}.{total_cents % 100:02d} USD")
    box = chart.bounding_box()
    assert box is not None
    assert box["height"] > 100
    assert problems == [], "the page logged errors (a CSP violation, a failed script)"
