"""Single sign-on against a real OpenID Connect provider (glewlwyd), through Chromium.

The web signs in with the authorization code flow and PKCE; ``podium login`` with the
device authorization grant, approved in the browser; group claims make memberships.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.conftest import LiveServer
from tests.people.conftest import sign_in_at_provider
from tests.people.provider import Glewlwyd

from podium.runtime.ports import free_port

API = "/api/v1"
SECRET = "podium-client-secret-for-tests"
GROUPS = "eng-checkout=checkout,checkout-leads=checkout:maintainer"
serial = itertools.count()


@pytest.fixture
def settings_overrides(provider: Glewlwyd) -> dict[str, Any]:
    """A client registered at the provider for this test's server, and the settings naming it."""
    port = free_port()
    client_id = f"podium-{os.getpid()}-{next(serial)}"
    provider.add_client(client_id, SECRET, [f"http://127.0.0.1:{port}/auth/oidc/callback"])
    return {
        "port": port, "oidc_issuer": provider.issuer, "oidc_client_id": client_id, "oidc_client_secret": SECRET,
        "oidc_scopes": "openid", "oidc_group_map": GROUPS,
    }


def account(provider: Glewlwyd, name: str, groups: list[str]) -> str:
    """A person at the provider; their password."""
    password = f"{name}-password-1"
    provider.add_user(name, password, name=name.title(), email=f"{name}@example.com", groups=groups)
    return password


def test_the_web_signs_in_with_the_provider_and_groups_make_memberships(
    provider: Glewlwyd, live_server: LiveServer, page: Page, request: pytest.FixtureRequest
) -> None:
    admin = live_server.client()
    request.addfinalizer(admin.close)
    admin.post(f"{API}/teams", json={"name": "checkout"}).raise_for_status()
    admin.post(f"{API}/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    password = account(provider, "ada", ["eng-checkout", "unrelated"])

    page.goto(f"{live_server.url}/services/cart")
    page.get_by_test_id("sso").click()
    sign_in_at_provider(page, "ada", password)
    expect(page.get_by_test_id("signed-in-user")).to_have_text("ada")
    assert page.url == f"{live_server.url}/services/cart"

    me = admin.get(f"{API}/users/ada").json()
    assert (me["email"], me["teams"]) == ("ada@example.com", {"checkout": "member"})
    # The web session acts with the team's rights, and the audit names the person.
    page.goto(f"{live_server.url}/people/ada")
    expect(page.get_by_test_id("person-teams")).to_contain_text("checkout")
    expect(page.get_by_test_id("person-tokens")).to_contain_text("session")
    events = admin.get(f"{API}/audit", params={"limit": 5}).json()
    assert [e["action"] for e in events][:2] == ["member.add", "user.create"]
    assert {e["actor"]["user"] for e in events[:2]} == {"ada"}

    # Signing out ends the session itself, not only the browser's cookie.
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "podium_token")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("sso")).to_be_visible()
    assert httpx.get(f"{live_server.url}{API}/whoami", cookies={"podium_token": cookie}).status_code == 401

    # The provider's groups change: the next sign-in follows them.
    provider.set_groups("ada", ["checkout-leads"])
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login")
    page.get_by_test_id("sso").click()
    sign_in_at_provider(page, "ada", password)
    expect(page.get_by_test_id("signed-in-user")).to_have_text("ada")
    assert admin.get(f"{API}/users/ada").json()["teams"] == {"checkout": "maintainer"}
    provider.set_groups("ada", [])
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login")
    page.get_by_test_id("sso").click()
    sign_in_at_provider(page, "ada", password)
    expect(page.get_by_test_id("signed-in-user")).to_have_text("ada")
    assert admin.get(f"{API}/users/ada").json()["teams"] == {}


def test_a_forged_callback_signs_nobody_in(provider: Glewlwyd, live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url) as browser:
        answer = browser.get("/auth/oidc/callback", params={"code": "made-up", "state": "made-up"})
    assert answer.status_code == 403
    assert "did not start here" in answer.text


def test_podium_login_uses_the_device_flow_approved_in_the_browser(
    provider: Glewlwyd, live_server: LiveServer, page: Page, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    admin = live_server.client()
    request.addfinalizer(admin.close)
    admin.post(f"{API}/teams", json={"name": "checkout"}).raise_for_status()
    password = account(provider, "bo", ["eng-checkout"])
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "PODIUM_URL": "", "PODIUM_TOKEN": ""}
    env.pop("PODIUM_URL")
    env.pop("PODIUM_TOKEN")
    podium = str(Path(sys.executable).parent / "podium")
    login = subprocess.Popen(
        [podium, "login", "--url", live_server.url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert login.stderr is not None
        link = ""
        for line in login.stderr:  # "open <link>", then the code
            if line.startswith("open "):
                link = line.split(" ", 1)[1].strip()
                break
        assert link.startswith(provider.url), link
        page.goto(link)
        sign_in_at_provider(page, "bo", password)
        out, err = login.communicate(timeout=60)
    finally:
        login.kill()
    assert login.returncode == 0, err
    assert "as user bo" in out

    whoami = subprocess.run([podium, "whoami", "--json"], env=env, capture_output=True, text=True, timeout=30)
    assert whoami.returncode == 0, whoami.stderr
    assert '"user": "bo"' in whoami.stdout
    assert '"team": "checkout"' in whoami.stdout
    tokens = admin.get(f"{API}/users/bo/tokens").json()
    assert [t["kind"] for t in tokens] == ["login"]
