"""The catalog's first promise: a team owns its services, and others get 403."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient


def test_owner_changes_its_service_and_a_foreign_team_gets_403(
    admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    checkout, search = team_client("checkout"), team_client("search")
    created = checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"})
    assert created.status_code == 201, created.text
    assert created.json()["environments"] == ["staging", "production"]

    refused = search.patch("/api/v1/services/cart", json={"description": "mine now"})
    assert refused.status_code == 403
    assert "checkout" in refused.json()["detail"]

    changed = checkout.patch("/api/v1/services/cart", json={"description": "the cart"})
    assert changed.json()["description"] == "the cart"
    actions = [e["action"] for e in admin.get("/api/v1/audit", params={"service": "cart"}).json()]
    assert actions == ["service.update", "service.create"]
