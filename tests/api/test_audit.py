"""The audit log: who did what, when, before and after; each team sees its own part."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient


def test_every_mutation_is_recorded_with_who_what_when_before_after(
    admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    started = datetime.now(UTC)
    checkout = team_client("checkout")
    team_client("search")
    token_id = checkout.get("/api/v1/whoami").json()["token_id"]
    checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    checkout.patch("/api/v1/services/cart", json={"lifecycle": "production"}).raise_for_status()
    grant = checkout.post("/api/v1/services/cart/grants",
                          json={"team": "search", "rights": ["deploy"], "duration": "1d"}).json()
    checkout.delete(f"/api/v1/services/cart/grants/{grant['id']}").raise_for_status()
    checkout.post("/api/v1/services/cart/transfer", json={"to": "search"}).raise_for_status()
    admin.delete("/api/v1/services/cart").raise_for_status()

    events = admin.get("/api/v1/audit", params={"service": "cart"}).json()
    assert [e["action"] for e in events] == [
        "service.delete", "service.transfer", "grant.revoke", "grant.add", "service.update", "service.create",
    ]
    by_action = {e["action"]: e for e in events}
    for action in ["service.create", "service.update", "grant.add", "grant.revoke", "service.transfer"]:
        assert (by_action[action]["team"], by_action[action]["token_id"]) == ("checkout", token_id)
    assert by_action["service.delete"]["team"] == "platform"
    assert all(started - timedelta(seconds=1) <= datetime.fromisoformat(e["at"]) <= datetime.now(UTC)
               for e in events)
    update = by_action["service.update"]
    assert (update["before"]["lifecycle"], update["after"]["lifecycle"]) == ("experimental", "production")
    assert by_action["service.create"]["before"] is None
    assert by_action["service.create"]["after"]["owner"] == "checkout"
    assert by_action["service.delete"]["before"]["owner"] == "search"
    assert by_action["service.delete"]["after"] is None
    assert by_action["grant.add"]["after"]["rights"] == ["deploy"]

    # Team and token mutations are recorded too.
    actions = [e["action"] for e in admin.get("/api/v1/audit", params={"team": "platform"}).json()]
    assert actions.count("team.create") == 2
    assert actions.count("token.create") == 2


def test_refused_and_failed_requests_leave_no_event(
    admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    checkout, search = team_client("checkout"), team_client("search")
    checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    before = admin.get("/api/v1/audit").json()
    search.patch("/api/v1/services/cart", json={"description": "mine"})
    checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"})
    checkout.post("/api/v1/services/cart/grants", json={"team": "nobody", "rights": ["deploy"], "duration": "1d"})
    assert admin.get("/api/v1/audit").json() == before


def test_a_team_sees_events_of_its_services_and_its_own_actions(
    admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    checkout, search = team_client("checkout"), team_client("search")
    checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    search.post("/api/v1/services", json={"name": "query", "owner": "search"}).raise_for_status()
    admin.patch("/api/v1/services/cart", json={"description": "by the platform team"}).raise_for_status()
    admin.post("/api/v1/services", json={"name": "ops", "owner": "platform"}).raise_for_status()

    seen = checkout.get("/api/v1/audit").json()
    assert {(e["team"], e["action"], e["service"]) for e in seen} == {
        ("checkout", "service.create", "cart"),
        ("platform", "service.update", "cart"),
    }
    assert checkout.get("/api/v1/audit", params={"service": "query"}).json() == []
    assert checkout.get("/api/v1/audit", params={"team": "search"}).json() == []
    assert [e["action"] for e in checkout.get("/api/v1/audit", params={"team": "platform"}).json()] == [
        "service.update"
    ]
    # The limit applies to what the team may see, not to the whole log.
    assert len(search.get("/api/v1/audit", params={"limit": 1}).json()) == 1

    everything = admin.get("/api/v1/audit").json()
    assert {"query", "ops", "cart"} <= {e["service"] for e in everything}
    assert admin.get("/api/v1/audit", params={"service": "nothing"}).json() == []
    assert admin.get("/api/v1/audit", params={"service": "Not A Name\x00"}).json() == []
    assert admin.get("/api/v1/audit", params={"limit": 0}).status_code == 422
