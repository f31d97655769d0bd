"""People fixtures: users with personal tokens, the CLI in-process on a live server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright
from tests.people.provider import Glewlwyd
from typer.testing import CliRunner, Result

from podium.api.app import create_app
from podium.cli.main import app
from podium.core import Podium


@pytest.fixture
def person(core: Podium, admin: TestClient) -> Iterator[Callable[..., TestClient]]:
    """Factory: ``person("ada", checkout="maintainer")`` makes the user, their memberships
    (teams created when missing) and returns a client holding a personal token of theirs."""
    clients: list[TestClient] = []

    def make(name: str, *, admin_: bool = False, token: dict[str, Any] | None = None, **teams: str) -> TestClient:
        if admin.get(f"/api/v1/users/{name}").status_code == 404:
            created = admin.post("/api/v1/users", json={"name": name, "email": f"{name}@example.com", "admin": admin_})
            created.raise_for_status()
        for team, role in teams.items():
            if admin.get(f"/api/v1/teams/{team}").status_code == 404:
                admin.post("/api/v1/teams", json={"name": team}).raise_for_status()
            added = admin.post(f"/api/v1/teams/{team}/members", json={"user": name, "role": role})
            added.raise_for_status()
        made = admin.post(f"/api/v1/users/{name}/tokens", json={"name": "tests", **(token or {})})
        made.raise_for_status()
        client = TestClient(create_app(core), headers={"Authorization": f"Bearer {made.json()['token']}"})
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config dir of the test's own, and no login from the environment."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("PODIUM_URL", raising=False)
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)
    return home


Invoke = Callable[..., Result]


@pytest.fixture
def podium_cli(live_server: Any, config_home: Path) -> Invoke:
    """``podium_cli("users", "list", token=..., expect=0)``: the CLI in-process on the live server."""
    runner = CliRunner()

    def invoke(*args: str, token: str | None = live_server.admin_token, url: str | None = live_server.url,
               expect: int | None = 0) -> Result:
        result = runner.invoke(app, list(args), env={"PODIUM_URL": url, "PODIUM_TOKEN": token})
        if expect is not None:
            assert result.exit_code == expect, (args, result.exception, result.stdout, result.stderr)
        return result

    return invoke


# Single sign-on: a real provider, and Chromium to sign in at it ------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def provider() -> Iterator[Glewlwyd]:
    """Debian's glewlwyd on a loopback port, its own SQLite db, OpenID Connect set up."""
    assert shutil.which("glewlwyd"), "glewlwyd is missing: `make system-deps` installs it"
    base = Path(tempfile.mkdtemp(prefix="podium-oidc-"))
    server = Glewlwyd(base)
    try:
        server.start()
        server.configure()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, one per test module (as in tests/web)."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs it"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def sign_in_at_provider(page: Page, username: str, password: str) -> None:
    """Glewlwyd's login page, then its consent page: what a person clicks."""
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#loginbut")
    page.get_by_role("button", name="Continue").click()
