"""The experiment pages: a team defines and starts an experiment, its app sends events, and the
page shows the hypothesis, the exposure against the cap, the results with a lift chart and, for a
skewed split, the sample ratio mismatch. In Chromium, and over plain HTTP for the rest."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import ConsoleMessage, Page, expect
from sqlalchemy import update
from tests.web.support import csrf_of, sign_in

from podium.core import Podium
from podium.experiments.models import Experiment
from podium.experiments.service import get_experiment_row, stop_running
from podium.store.db import utcnow

if TYPE_CHECKING:
    from tests.conftest import LiveServer

SHOP = {"name": "shop", "owner": "growth", "lifecycle": "production", "description": "The shop."}
BASE = "/services/shop/environments/production/experiments"


def define(client: httpx.Client, key: str, **fields: Any) -> dict[str, Any]:
    """Create an experiment on shop/production through the API and start it."""
    body = {
        "key": key, "hypothesis": "A larger sign-up button will increase registration.",
        "variants": ["control", "treatment"], "weights": [0.5, 0.5], "coverage": 0.02,
        "metric": "signup", "guardrails": ["error"], **fields,
    }
    created = client.post(f"/api/v1{BASE}", json=body)
    assert created.status_code == 201, created.text
    started = client.post(f"/api/v1{BASE}/{key}/start", json={})
    assert started.status_code == 200, started.text
    result: dict[str, Any] = started.json()
    return result


def send(client: httpx.Client, key: str, split: dict[str, tuple[int, int]]) -> None:
    """Exposures and sign-ups as the app would send them: ``{variant: (users, converted)}``."""
    events: list[dict[str, Any]] = []
    for variant, (users, converted) in split.items():
        for i in range(users):
            user = f"{key}-{variant}-{i}"
            events.append({"id": f"x-{user}", "type": "exposure", "user_id": user, "experiment": key,
                           "variant": variant, "attributes": {"profession": "marketing" if i % 3 else "sales"}})
            if i < converted:
                events.append({"id": f"m-{user}", "type": "metric", "user_id": user, "name": "signup", "value": 1.0})
    response = client.post("/api/v1/events", json={"service": "shop", "env": "production", "events": events})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events), response.text


def shop(client: httpx.Client) -> None:
    client.post("/api/v1/teams", json={"name": "growth"}).raise_for_status()
    client.post("/api/v1/services", json=SHOP).raise_for_status()


# In Chromium -------------------------------------------------------------------------------------


@pytest.fixture
def experiments(live_server: LiveServer) -> Iterator[httpx.Client]:
    """shop, with big-button skewed (1,000 vs 800 users at 50/50) and colours balanced (1,000 each of three)."""
    with live_server.client() as client:
        shop(client)
        define(client, "big-button")
        send(client, "big-button", {"control": (1000, 100), "treatment": (800, 120)})
        define(client, "colours", hypothesis="The button's colour changes nothing.",
               variants=["control", "green", "blue"], weights=None)
        send(client, "colours", {"control": (1000, 100), "green": (1000, 104), "blue": (1000, 96)})
        yield client


@pytest.mark.browser
def test_the_experiment_page_shows_hypothesis_exposure_results_chart_and_srm(
    page: Page, live_server: LiveServer, experiments: httpx.Client, tmp_path: Path
) -> None:
    problems: list[str] = []
    page.on("console", lambda message: _keep_errors(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/login?next=/services/shop")
    page.get_by_label("Token").fill(live_server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/services/shop")

    production = page.locator('#experiments li[data-environment="production"]')
    expect(production).to_contain_text("2 experiments")  # big-button and colours
    expect(production).to_contain_text("2 running")
    production.get_by_role("link").click()
    expect(page).to_have_url(f"{live_server.url}{BASE}")
    row = page.locator('tr[data-experiment="big-button"]')
    expect(row.get_by_test_id("experiment-status")).to_have_text("running")
    expect(row).to_contain_text("2.0% · cap 2.0%")
    row.get_by_role("link", name="big-button").click()
    expect(page).to_have_url(f"{live_server.url}{BASE}/big-button")

    expect(page.get_by_test_id("hypothesis")).to_have_text("A larger sign-up button will increase registration.")
    expect(page.get_by_test_id("experiment-status")).to_have_text("running")
    expect(page.get_by_test_id("exposure")).to_contain_text("2.0% of users · cap 2.0%")
    expect(page.get_by_test_id("cap-override")).to_have_count(0)
    expect(page.get_by_test_id("variants")).to_contain_text("control 50%")
    expect(page.get_by_test_id("history").locator('[data-step="started"]')).to_contain_text("Started by platform")

    results = page.get_by_test_id("primary-results")
    treatment = results.locator('tr[data-variant="treatment"]')
    expect(results.locator('tr[data-variant="control"]')).to_contain_text("1,000")
    expect(treatment).to_contain_text("800")
    expect(treatment).to_contain_text("15.00%")  # 120 of 800
    expect(treatment).to_contain_text("+50.0%")  # 15% against 10%

    srm = page.get_by_test_id("srm-warning")
    expect(srm).to_be_visible()
    expect(srm).to_contain_text("Sample ratio mismatch")
    expect(srm).to_contain_text("1,000 / 800")

    chart = results.locator("svg.chart.lift")
    expect(chart.locator("g.interval")).to_have_count(1)  # one per treatment
    expect(chart.locator('g.interval[data-label="treatment"] line.range')).to_have_count(1)
    expect(chart.locator("line.zero")).to_have_count(1)
    zero = float(chart.locator("line.zero").get_attribute("x1") or "nan")
    low = float(chart.locator("line.range").get_attribute("x1") or "nan")
    point = float(chart.locator("circle.estimate").get_attribute("cx") or "nan")
    assert zero < low < point, "the whole interval of +50% lies right of zero"
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 200
    page.screenshot(path=tmp_path / "experiment.png", full_page=True)

    page.goto(f"{live_server.url}{BASE}/colours")
    expect(page.get_by_test_id("hypothesis")).to_have_text("The button's colour changes nothing.")
    expect(page.get_by_test_id("variants")).to_contain_text("green 33.33%")
    intervals = page.get_by_test_id("primary-results").locator("svg.chart.lift g.interval")
    expect(intervals).to_have_count(2)  # green and blue, against the control
    expect(intervals.nth(0)).to_have_attribute("data-label", "green")
    expect(intervals.nth(1)).to_have_attribute("data-label", "blue")
    green = float(intervals.nth(0).locator("circle.estimate").get_attribute("cx") or "nan")
    blue = float(intervals.nth(1).locator("circle.estimate").get_attribute("cx") or "nan")
    zero = float(page.locator("svg.chart.lift line.zero").first.get_attribute("x1") or "nan")
    assert blue < zero < green, "blue converts less than the control (-4%), green more (+4%)"
    expect(page.get_by_test_id("srm-warning")).to_have_count(0)

    page.get_by_label("Why stop it?").fill("no colour moves sign-ups")
    page.get_by_role("button", name="Stop: everyone gets control").click()
    expect(page).to_have_url(f"{live_server.url}{BASE}/colours")
    expect(page.get_by_role("status")).to_have_text("Stopped: everyone gets control.")
    expect(page.get_by_test_id("experiment-status")).to_have_text("stopped")
    page.get_by_label("Decision").select_option(label="Discard: everyone gets control")
    page.get_by_label("Why? What did the results show?").fill("all three within 5% of each other")
    page.get_by_role("button", name="Record the decision").click()
    expect(page.get_by_test_id("experiment-status")).to_have_text("decided")
    expect(page.get_by_test_id("history").locator('[data-step="decided"]')).to_contain_text("Discarded by platform")
    expect(page.get_by_role("button", name="Record the decision")).to_have_count(0)
    assert problems == [], "the pages logged errors (a CSP violation, a failed script)"


def _keep_errors(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"{message.text} ({message.location.get('url', '')})")


# Over plain HTTP --------------------------------------------------------------------------------


@pytest.fixture
def signed_in_admin(api: TestClient, admin: TestClient) -> TestClient:
    shop(admin)
    assert sign_in(api, admin.headers["Authorization"].removeprefix("Bearer ")).status_code == 303
    return api


def test_an_override_of_the_cap_is_marked_with_who_when_and_why(signed_in_admin: TestClient, admin: TestClient) -> None:
    define(admin, "wide", coverage=0.05, override_cap=True, reason="the launch needs a quick answer")
    page = signed_in_admin.get(f"{BASE}/wide")
    assert page.status_code == 200, page.text
    assert "5.0% of users · cap 2.0%" in page.text
    override = re.search(r'data-testid="cap-override">(.*?)</dd>', page.text, re.S)
    assert override is not None
    assert "The exposure cap was overridden" in override.group(1)
    assert "by platform" in override.group(1)
    assert "the launch needs a quick answer" in override.group(1)
    listing = signed_in_admin.get(BASE).text
    assert "cap overridden" in listing


def test_a_draft_has_no_results_and_an_unknown_key_is_a_404_page(
    signed_in_admin: TestClient, admin: TestClient
) -> None:
    body = {"key": "later", "hypothesis": "Soon.", "variants": ["control", "treatment"], "metric": "signup"}
    assert admin.post(f"/api/v1{BASE}", json=body).status_code == 201
    page = signed_in_admin.get(f"{BASE}/later")
    assert page.status_code == 200
    assert 'data-testid="no-results"' in page.text
    assert '<span class="badge none" data-testid="experiment-status">draft</span>' in page.text
    missing = signed_in_admin.get(f"{BASE}/nope")
    assert missing.status_code == 404
    assert "nope" in missing.text
    assert signed_in_admin.get("/services/shop/environments/qa/experiments").status_code == 404


def test_pages_need_a_session(api: TestClient, admin: TestClient) -> None:
    shop(admin)
    response = api.get(BASE, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_the_owner_stops_and_decides_through_forms_another_team_sees_no_form(
    signed_in_admin: TestClient, admin: TestClient, core: Podium, team_client: Callable[[str], TestClient]
) -> None:
    define(admin, "big-button")
    page = signed_in_admin.get(f"{BASE}/big-button").text
    csrf = csrf_of(page)
    forged = signed_in_admin.post(f"{BASE}/big-button/stop", data={"reason": "x", "csrf": "bad"})
    assert forged.status_code == 403
    assert admin.get(f"/api/v1{BASE}/big-button").json()["status"] == "running"

    stopped = signed_in_admin.post(
        f"{BASE}/big-button/stop", data={"reason": "the copy was wrong", "csrf": csrf}, follow_redirects=True
    )
    assert stopped.status_code == 200
    assert "Stopped: everyone gets control." in stopped.text
    assert '<li data-step="stopped">Stopped by platform' in stopped.text
    assert "the copy was wrong" in stopped.text

    empty = signed_in_admin.post(f"{BASE}/big-button/decide", data={"choice": "ship:treatment", "csrf": csrf})
    assert empty.status_code == 422, "a decision needs a reason"
    decided = signed_in_admin.post(
        f"{BASE}/big-button/decide",
        data={"choice": "ship:treatment", "reason": "sign-ups up 50%", "csrf": csrf},
        follow_redirects=True,
    )
    assert decided.status_code == 200
    assert "Decided: everyone gets treatment." in decided.text
    assert "Shipped <code>treatment</code>" in decided.text
    assert admin.get(f"/api/v1{BASE}/big-button").json()["decision"]["variant"] == "treatment"

    outsider = team_client("search")
    token = outsider.headers["Authorization"].removeprefix("Bearer ")
    with TestClient(signed_in_admin.app) as other:
        assert sign_in(other, token).status_code == 303
        define(admin, "copy-test")
        seen = other.get(f"{BASE}/copy-test")
        assert seen.status_code == 200
        assert 'action="/services/shop/environments/production/experiments/copy-test/stop"' not in seen.text
        refused = other.post(f"{BASE}/copy-test/stop", data={"reason": "mine now", "csrf": csrf_of(seen.text)})
        assert refused.status_code == 403
    assert admin.get(f"/api/v1{BASE}/copy-test").json()["status"] == "running"


def test_the_team_page_lists_stale_experiments(signed_in_admin: TestClient, admin: TestClient, core: Podium) -> None:
    define(admin, "old-banner", hypothesis="A banner sells.")
    define(admin, "fresh-banner")
    days = core.settings.experiments_stale_days
    with core.store.session() as session:  # it started long ago
        session.execute(
            update(Experiment).where(Experiment.key == "old-banner")
            .values(started_at=utcnow() - timedelta(days=days + 1))
        )
    page = signed_in_admin.get("/teams/growth").text
    section = re.search(r'<section id="stale-experiments">(.*?)</section>', page, re.S)
    assert section is not None
    assert 'data-experiment="shop/production/old-banner"' in section.group(1)
    assert "A banner sells." in section.group(1)
    assert "fresh-banner" not in section.group(1)
    listing = signed_in_admin.get(BASE).text
    old_row = re.search(r'<tr data-experiment="old-banner">(.*?)</tr>', listing, re.S)
    assert old_row is not None
    assert 'data-testid="stale"' in old_row.group(1)
    assert 'data-testid="stale"' in signed_in_admin.get(f"{BASE}/old-banner").text


def test_results_break_down_by_an_attribute_against_everyone_else(
    signed_in_admin: TestClient, admin: TestClient
) -> None:
    define(admin, "big-button")
    # Two users in three are in marketing (i % 3 != 0): 200 of 300 per variant; of the first
    # 30 (control) and 60 (treatment) who sign up, 20 and 40 are in marketing.
    send(admin, "big-button", {"control": (300, 30), "treatment": (300, 60)})
    page = signed_in_admin.get(f"{BASE}/big-button", params={"segment": "profession=marketing"}).text

    def row(block: str, variant: str) -> list[str]:
        found = re.search(rf'data-testid="{block}".*?<tr data-variant="{variant}">(.*?)</tr>', page, re.S)
        assert found is not None, f"no {variant} row in {block}"
        return re.findall(r"<td[^>]*>(?:<strong>)?([^<]*)", found.group(1))

    assert row("primary-results", "control")[:3] == ["control", "300", "30"]
    assert row("segment-results", "control")[:3] == ["control", "200", "20"]
    assert row("segment-results", "treatment")[:3] == ["treatment", "200", "40"]
    assert row("rest-results", "treatment")[:3] == ["treatment", "100", "20"]
    assert "<code>profession=marketing</code>" in page
    assert page.count('<g class="interval"') >= 3, "a lift chart for everyone, the segment and the rest"

    mistyped = signed_in_admin.get(f"{BASE}/big-button", params={"segment": "profession"}).text
    assert 'data-testid="segment-problem"' in mistyped
    assert "attribute=value" in mistyped
    assert 'data-testid="primary-results"' in mistyped
    assert 'data-testid="segment-results"' not in mistyped


def test_a_guardrail_stop_shows_its_reason_at_the_top(
    signed_in_admin: TestClient, admin: TestClient, core: Podium
) -> None:
    define(admin, "big-button")
    reason = "guardrail error: 4.1% of treatment users against 1.0% of control (p_worse = 0.0002 < 0.01)"
    with core.store.session() as session:  # as the guardrail watch does
        row = get_experiment_row(session, "shop", "production", "big-button")
        assert stop_running(session, row, "guardrail", reason)
    page = signed_in_admin.get(f"{BASE}/big-button").text
    alert = re.search(r'<div class="error" role="alert" data-testid="guardrail-stop">(.*?)</div></div>', page, re.S)
    assert alert is not None
    assert "Stopped by a guardrail" in alert.group(1)
    assert "everyone gets the control, <code>control</code>, until a decision" in alert.group(1)
    assert html.escape(reason, quote=False) in alert.group(1)
    assert '<li data-step="stopped">Stopped by a guardrail' in page
    assert 'action="/services/shop/environments/production/experiments/big-button/stop"' not in page
    assert 'action="/services/shop/environments/production/experiments/big-button/decide"' in page
