"""The pages in Chromium against a real server: sign in, filter with htmx, open a service."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

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


def _keep_errors(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"{message.text} ({message.location.get('url', '')})")
