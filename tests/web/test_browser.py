"""The pages in Chromium against a real server: sign in, filter with htmx, open a service."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect
from tests.web.support import HELLO, deploy, failing_slug, pack

if TYPE_CHECKING:
    from tests.conftest import LiveServer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.browser


def test_sign_in_filter_and_open_a_service(
    page: Page, live_server: LiveServer, seed: Callable[[httpx.Client], None], tmp_path: Path
) -> None:
    with live_server.client() as client:
        seed(client)
    problems: list[str] = []
    page.on("console", lambda message: _keep_errors(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.screenshot(path=tmp_path / "login.png")
    page.get_by_label("Token").fill(live_server.admin_token)
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_test_id("signed-in-team")).to_have_text("platform")
    rows = page.locator("#services tbody tr")
    expect(rows).to_have_count(3)
    cart = rows.filter(has=page.get_by_role("link", name="cart", exact=True))
    expect(cart).to_contain_text("checkout")
    expect(cart).to_contain_text("production")
    page.screenshot(path=tmp_path / "services.png", full_page=True)

    # A full page load would drop this mark; an htmx swap of the table keeps it.
    page.evaluate("window.podiumMark = 'still here'")
    page.get_by_test_id("owner-filter").select_option("checkout")
    expect(rows).to_have_count(2)
    expect(page.locator("#services")).not_to_contain_text("search-api")
    expect(page).to_have_url(re.compile(r"\?owner=checkout"))
    assert page.evaluate("window.podiumMark") == "still here"

    page.get_by_role("link", name="cart", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/services/cart")
    expect(page.get_by_role("heading", level=1)).to_contain_text("cart")
    grants = page.locator("#grants tbody tr")
    expect(grants).to_have_count(1)
    expect(grants).to_contain_text("search")
    expect(grants).to_contain_text("deploy")
    expect(grants).to_contain_text("2099-01-01")

    screenshot = tmp_path / "service.png"
    page.screenshot(path=screenshot, full_page=True)
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1000
    assert problems == [], "the pages logged errors (a CSP violation, a failed script)"


def test_roll_back_from_the_service_page(page: Page, live_server: LiveServer, tmp_path: Path) -> None:
    with live_server.client() as client:
        client.post("/api/v1/teams", json={"name": "checkout"}).raise_for_status()
        client.post("/api/v1/services", json={"name": "hello", "owner": "checkout"}).raise_for_status()
        slug = pack(HELLO, tmp_path / "hello.tgz")
        for _ in range(2):
            assert deploy(client, "hello", "staging", slug)["status"] == "live"
        assert deploy(client, "hello", "production", failing_slug(tmp_path))["status"] == "failed"
    problems: list[str] = []
    page.on("console", lambda message: _keep_errors(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_server.url}/login?next=/services/hello")
    page.get_by_label("Token").fill(live_server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/services/hello")

    staging = page.locator("#environment-staging")
    expect(staging.locator("header")).to_contain_text("live v2")
    expect(staging.get_by_test_id("live-release")).to_contain_text("v2")
    # supervisord says STARTING for a process's first second; the section refreshes until it settles.
    expect(staging.locator("table.processes tbody tr")).to_contain_text("RUNNING", timeout=10_000)
    deploys = staging.locator("table.releases tbody tr")
    expect(deploys).to_have_count(2)
    expect(deploys.nth(0)).to_contain_text("live")
    expect(deploys.nth(1)).to_contain_text("superseded")
    expect(staging.get_by_test_id("logs")).to_contain_text("listening")

    failure = page.locator('#environment-production tr[data-release="v1"] details.failure')
    expect(failure).to_contain_text("release command exited with status 3")
    expect(failure.locator("pre")).to_be_hidden()
    failure.locator("summary").click()
    expect(failure.locator("pre")).to_contain_text("no database at db:5432")

    v1 = staging.locator('tr[data-release="v1"]')
    v1.get_by_role("button", name="Rollback").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Roll back staging to v1?")
    page.screenshot(path=tmp_path / "confirm.png")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    v1.get_by_role("button", name="Rollback").click()
    dialog.get_by_role("button", name="Roll back to v1").click()

    expect(page.get_by_role("status")).to_contain_text("Rolling back to v1: v3 started")
    expect(staging.locator('tr[data-release="v3"]')).to_contain_text("Rollback to v1")
    # No reload from here on: htmx refreshes the section until v3 is live.
    expect(staging.locator("header")).to_contain_text("live v3", timeout=20_000)
    expect(staging.locator('tr[data-release="v3"]')).to_contain_text("live")
    expect(staging.locator('tr[data-release="v2"]')).to_contain_text("superseded")
    expect(page.locator("#service-status")).to_contain_text("live v3")
    expect(staging.locator("table.processes tbody tr")).to_contain_text("RUNNING", timeout=10_000)

    screenshot = tmp_path / "rolled-back.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    assert problems == [], "the pages logged errors (a CSP violation, a failed script)"


def _keep_errors(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"{message.text} ({message.location.get('url', '')})")
