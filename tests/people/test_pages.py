"""The people pages in Chromium: a team's members, a person's teams, tokens and on-call shifts."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from tests.conftest import LiveServer

API = "/api/v1"


def sign_in_with_token(page: Page, live_server: LiveServer, token: str) -> None:
    page.goto(f"{live_server.url}/login")
    page.fill("#token", token)
    page.get_by_role("button", name="Sign in").click()


def test_a_person_sees_their_teams_tokens_and_shifts_and_a_team_its_members(
    live_server: LiveServer, page: Page, request: pytest.FixtureRequest
) -> None:
    admin = live_server.client()
    request.addfinalizer(admin.close)
    admin.post(f"{API}/teams", json={"name": "checkout"}).raise_for_status()
    admin.post(f"{API}/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    for name, role in (("ada", "maintainer"), ("bo", "member")):
        admin.post(f"{API}/users", json={"name": name, "email": f"{name}@example.com",
                                        "contacts": [f"json://127.0.0.1:9/{name}"]}).raise_for_status()
        admin.post(f"{API}/teams/checkout/members", json={"user": name, "role": role}).raise_for_status()
    rotation = {"members": [{"name": "bo"}, {"name": "ada"}], "period": "weekly", "handoff": "mon 09:00"}
    admin.put(f"{API}/teams/checkout/oncall", json=rotation).raise_for_status()
    made = admin.post(f"{API}/users/ada/tokens", json={"name": "laptop", "expires": "7d"}).json()

    sign_in_with_token(page, live_server, made["token"])
    expect(page.get_by_test_id("signed-in-user")).to_have_text("ada")
    page.get_by_test_id("signed-in-user").click()
    expect(page.get_by_test_id("person-name")).to_contain_text("ada")
    expect(page.get_by_test_id("person-teams")).to_contain_text("maintainer")
    expect(page.get_by_test_id("person-tokens")).to_contain_text("laptop")
    shifts = page.get_by_test_id("person-shifts")
    expect(shifts).to_contain_text("checkout")
    expect(shifts.locator("time")).to_have_count(1)  # bo is on call now; ada's shift is next

    page.goto(f"{live_server.url}/teams/checkout")
    members = page.get_by_test_id("team-members")
    expect(members).to_contain_text("ada")
    expect(members).to_contain_text("bo")
    members.get_by_role("link", name="bo").click()
    expect(page.get_by_test_id("person-name")).to_contain_text("bo")
    expect(page.get_by_test_id("person-shifts")).to_contain_text("on call")
    # Someone else's tokens are not shown.
    expect(page.get_by_test_id("person-tokens")).to_have_count(0)


def test_the_audit_on_a_service_page_names_the_person(
    live_server: LiveServer, page: Page, request: pytest.FixtureRequest
) -> None:
    admin = live_server.client()
    request.addfinalizer(admin.close)
    admin.post(f"{API}/teams", json={"name": "checkout"}).raise_for_status()
    admin.post(f"{API}/users", json={"name": "cy", "email": "cy@example.com"}).raise_for_status()
    admin.post(f"{API}/teams/checkout/members", json={"user": "cy"}).raise_for_status()
    token = admin.post(f"{API}/users/cy/tokens", json={"name": "t"}).json()["token"]
    with live_server.client(token) as cy:
        cy.post(f"{API}/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    sign_in_with_token(page, live_server, live_server.admin_token)
    page.goto(f"{live_server.url}/services/cart")
    row = page.locator("#audit tbody tr").first
    expect(row).to_contain_text("cy (checkout)")
    expect(row).not_to_contain_text(token.split("_")[1])
