"""The on-call API: rotations, overrides and pages under /api/v1/teams/{team}/oncall."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from podium.catalog.auth import Actor
from podium.core import Podium

SECRET = "s3cr3t-webhook-token"
ALICE = {"name": "alice", "url": f"json://127.0.0.1:9/alice?token={SECRET}"}
BOB = {"name": "bob", "url": "mailto://bob:pw@example.com"}
CAROL = {"name": "carol", "url": "json://127.0.0.1:9/carol"}


def rotation(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"members": [ALICE, BOB], "period": "weekly", "handoff": "mon 09:00"}
    return {**body, **changes}


@pytest.fixture
def checkout(team_client: Callable[[str], TestClient]) -> TestClient:
    return team_client("checkout")


def test_a_member_sets_the_rotation_and_every_team_sees_who_is_on_call(
    checkout: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    start = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    put = checkout.put("/api/v1/teams/checkout/oncall", json=rotation(escalate_after_minutes=10,
                                                                         starts_at=start.isoformat()))
    assert put.status_code == 200, put.text
    shown = team_client("search").get("/api/v1/teams/checkout/oncall")
    assert shown.status_code == 200
    body = shown.json()
    assert body["team"] == "checkout"
    assert body["members"] == ["alice", "bob"]
    assert body["escalate_after_minutes"] == 10
    assert (body["period"], body["handoff"], body["timezone"]) == ("weekly", "mon 09:00", "UTC")
    assert {body["current"]["name"], body["next"]["name"]} == {"alice", "bob"}
    assert datetime.fromisoformat(body["next_handoff_at"]).weekday() == 0
    assert body == put.json()
    assert SECRET not in shown.text
    assert "example.com" not in shown.text


def test_the_first_person_is_on_call_from_now_by_default(checkout: TestClient) -> None:
    body = checkout.put("/api/v1/teams/checkout/oncall", json=rotation()).json()
    assert (body["current"], body["next"]) == ({"name": "alice"}, {"name": "bob"})


def test_setting_a_rotation_is_audited_without_the_urls(checkout: TestClient, admin: TestClient) -> None:
    checkout.put("/api/v1/teams/checkout/oncall", json=rotation()).raise_for_status()
    checkout.put("/api/v1/teams/checkout/oncall", json=rotation(members=[BOB])).raise_for_status()
    events = [e for e in admin.get("/api/v1/audit", params={"team": "checkout"}).json() if e["action"] == "oncall.set"]
    assert [e["after"]["members"] for e in events] == [["bob"], ["alice", "bob"]]
    assert events[0]["before"]["members"] == ["alice", "bob"]
    assert SECRET not in str(events)


def test_the_platform_team_may_set_any_rotation(checkout: TestClient, admin: TestClient) -> None:
    assert admin.put("/api/v1/teams/checkout/oncall", json=rotation()).status_code == 200


def test_another_team_may_not_change_a_rotation(
    checkout: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    checkout.put("/api/v1/teams/checkout/oncall", json=rotation()).raise_for_status()
    search = team_client("search")
    now = datetime.now(UTC)
    override = {"name": "eve", "url": "json://127.0.0.1:9/eve", "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat()}
    refused = [
        search.put("/api/v1/teams/checkout/oncall", json=rotation(members=[CAROL])),
        search.post("/api/v1/teams/checkout/oncall/overrides", json=override),
        search.delete("/api/v1/teams/checkout/oncall/overrides/1"),
        search.get("/api/v1/teams/checkout/oncall/pages"),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert checkout.get("/api/v1/teams/checkout/oncall").json()["members"] == ["alice", "bob"]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"members": [{"name": "alice", "url": "not a url"}]}, "not one Apprise understands"),
        ({"members": [{"name": "alice", "url": "nosuchscheme://x/y"}]}, "scheme 'nosuchscheme'"),
        ({"members": []}, "1 to 50 people"),
        ({"members": [ALICE, {"name": "alice", "url": CAROL["url"]}]}, "same name"),
        ({"members": [{"name": "a,b", "url": CAROL["url"]}]}, "invalid name"),
        ({"handoff": "09:00"}, "weekday"),
        ({"handoff": "mon 9"}, "invalid handoff"),
        ({"escalate_after_minutes": 0}, "escalate_after_minutes"),
        ({"starts_at": "2026-03-04T10:00:00"}, "timezone"),
    ],
)
def test_a_rotation_that_breaks_a_rule_gets_422_with_the_reason(
    checkout: TestClient, changes: dict[str, Any], says: str
) -> None:
    response = checkout.put("/api/v1/teams/checkout/oncall", json=rotation(**changes))
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert checkout.get("/api/v1/teams/checkout/oncall").status_code == 404


def test_an_apprise_url_is_never_echoed_in_an_error(checkout: TestClient) -> None:
    response = checkout.put(
        "/api/v1/teams/checkout/oncall", json=rotation(members=[{"name": "alice", "url": f"zz://{SECRET}"}])
    )
    assert response.status_code == 422
    assert SECRET not in response.text


def test_a_daily_rotation_needs_only_a_time(checkout: TestClient) -> None:
    body = checkout.put("/api/v1/teams/checkout/oncall", json=rotation(period="daily", handoff="18:30")).json()
    assert (body["period"], body["handoff"]) == ("daily", "18:30")
    assert datetime.fromisoformat(body["next_handoff_at"]).strftime("%H:%M") == "18:30"


def test_no_rotation_is_404_with_a_hint(checkout: TestClient) -> None:
    response = checkout.get("/api/v1/teams/checkout/oncall")
    assert response.status_code == 404
    assert "podium oncall set" in response.json()["detail"]
    assert checkout.get("/api/v1/teams/nobody/oncall").status_code == 404


# Overrides --------------------------------------------------------------------------------


def test_an_override_puts_someone_else_on_call_until_it_is_removed(checkout: TestClient) -> None:
    checkout.put("/api/v1/teams/checkout/oncall", json=rotation()).raise_for_status()
    now = datetime.now(UTC)
    ends = now + timedelta(hours=4)
    created = checkout.post("/api/v1/teams/checkout/oncall/overrides", json={
        **CAROL, "starts_at": (now - timedelta(minutes=1)).isoformat(), "ends_at": ends.isoformat(),
    })
    assert created.status_code == 201, created.text
    override = created.json()
    assert set(override) == {"id", "name", "starts_at", "ends_at"}
    shown = checkout.get("/api/v1/teams/checkout/oncall").json()
    assert shown["current"] == {"name": "carol"}
    assert (shown["next"], datetime.fromisoformat(shown["next_handoff_at"])) == ({"name": "alice"}, ends)
    assert [o["name"] for o in shown["overrides"]] == ["carol"]

    removed = checkout.delete(f"/api/v1/teams/checkout/oncall/overrides/{override['id']}")
    assert removed.status_code == 200
    assert checkout.get("/api/v1/teams/checkout/oncall").json()["current"] == {"name": "alice"}
    assert checkout.delete(f"/api/v1/teams/checkout/oncall/overrides/{override['id']}").status_code == 404


@pytest.mark.parametrize(
    ("starts", "ends", "says"),
    [
        (timedelta(hours=2), timedelta(hours=1), "ends after it starts"),
        (timedelta(hours=-3), timedelta(hours=-1), "in the past"),
        (timedelta(days=400), timedelta(days=401), "within a year"),
    ],
)
def test_an_override_that_breaks_a_rule_gets_422(
    checkout: TestClient, starts: timedelta, ends: timedelta, says: str
) -> None:
    checkout.put("/api/v1/teams/checkout/oncall", json=rotation()).raise_for_status()
    now = datetime.now(UTC)
    response = checkout.post("/api/v1/teams/checkout/oncall/overrides", json={
        **CAROL, "starts_at": (now + starts).isoformat(), "ends_at": (now + ends).isoformat(),
    })
    assert response.status_code == 422
    assert says in response.json()["detail"]


def test_an_override_needs_a_rotation_and_a_timezone(checkout: TestClient) -> None:
    override = {**CAROL, "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-02T00:00:00Z"}
    assert checkout.post("/api/v1/teams/checkout/oncall/overrides", json=override).status_code == 404
    checkout.put("/api/v1/teams/checkout/oncall", json=rotation()).raise_for_status()
    naive = {**override, "starts_at": "2030-01-01T00:00:00"}
    response = checkout.post("/api/v1/teams/checkout/oncall/overrides", json=naive)
    assert response.status_code == 422
    assert "timezone" in response.json()["detail"]


def test_an_override_of_another_team_is_not_found(
    checkout: TestClient, team_client: Callable[[str], TestClient], admin: TestClient
) -> None:
    now = datetime.now(UTC)
    override = {**CAROL, "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()}
    checkout.put("/api/v1/teams/checkout/oncall", json=rotation()).raise_for_status()
    theirs = checkout.post("/api/v1/teams/checkout/oncall/overrides", json=override).json()
    search = team_client("search")
    search.put("/api/v1/teams/search/oncall", json=rotation()).raise_for_status()
    assert search.delete(f"/api/v1/teams/search/oncall/overrides/{theirs['id']}").status_code == 404
    assert admin.get("/api/v1/teams/checkout/oncall").json()["overrides"][0]["id"] == theirs["id"]


# Pages ------------------------------------------------------------------------------------


def test_pages_list_the_outbox_of_the_teams_incidents_without_urls(
    checkout: TestClient, admin: TestClient, core: Podium
) -> None:
    checkout.put("/api/v1/teams/checkout/oncall", json=rotation()).raise_for_status()
    admin.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    team = core.catalog.get_team("checkout")
    core.incidents.open(Actor(team="checkout", team_id=team.id, token_id=None), "cart", summary="cart is down")
    [page] = checkout.get("/api/v1/teams/checkout/oncall/pages").json()
    assert (page["kind"], page["recipient"], page["state"], page["attempts"]) == ("trigger", "alice", "pending", 0)
    assert "url" not in page
    assert SECRET not in str(page)
