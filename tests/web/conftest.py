"""Fixtures of the web tests: a small catalog, a signed-in client, Chromium through Playwright."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright
from tests.web.support import sign_in

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def populate(client: httpx.Client) -> None:
    """Two teams, three services, one grant from checkout to search; through the API."""
    for team in ("checkout", "search"):
        client.post("/api/v1/teams", json={"name": team}).raise_for_status()
    services = [
        {"name": "cart", "owner": "checkout", "lifecycle": "production", "description": "The shopping cart."},
        {"name": "ledger", "owner": "checkout", "lifecycle": "experimental"},
        {"name": "search-api", "owner": "search", "lifecycle": "experimental"},
    ]
    for service in services:
        client.post("/api/v1/services", json=service).raise_for_status()
    grant = {"team": "search", "rights": ["deploy"], "expires_at": "2099-01-01T00:00:00Z", "reason": "ranking"}
    client.post("/api/v1/services/cart/grants", json=grant).raise_for_status()


@pytest.fixture
def catalog(admin: TestClient) -> None:
    """The small catalog of ``populate``, in the test's store."""
    populate(admin)


@pytest.fixture
def signed_in(api: TestClient, admin_token: str) -> TestClient:
    """A client that signed in through /login as the platform team; it holds the cookie."""
    response = sign_in(api, admin_token)
    assert response.status_code == 303, response.text
    return api


@pytest.fixture
def seed() -> Callable[[httpx.Client], None]:
    """``populate`` for tests that hold their own client, such as a live server's."""
    return populate


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, one per test module.

    Not one per session: Playwright's sync API keeps an asyncio loop running in the main
    thread while it is open, and every later ``asyncio.run`` in other tests would fail.
    """
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs it"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context: no cookies carried over between tests."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()
