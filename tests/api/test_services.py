"""Services: one owning team each, two environments, and only the owner changes them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def checkout(team_client: Callable[[str], TestClient]) -> TestClient:
    return team_client("checkout")


@pytest.fixture
def search(team_client: Callable[[str], TestClient]) -> TestClient:
    return team_client("search")


def test_create_show_and_list_services(admin: TestClient, checkout: TestClient, search: TestClient) -> None:
    created = checkout.post(
        "/api/v1/services",
        json={"name": "cart", "owner": "checkout", "description": "The cart", "lifecycle": "production"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["owner"], body["lifecycle"]) == ("cart", "checkout", "production")
    assert body["environments"] == ["staging", "production"]
    search.post("/api/v1/services", json={"name": "query", "owner": "search"}).raise_for_status()
    admin.post("/api/v1/services", json={"name": "pay", "owner": "checkout"}).raise_for_status()

    shown = search.get("/api/v1/services/cart").json()
    assert shown == body
    assert search.get("/api/v1/services/query").json()["lifecycle"] == "experimental"

    def names(**params: str) -> list[str]:
        listed = search.get("/api/v1/services", params=params)
        assert listed.status_code == 200, listed.text
        return [s["name"] for s in listed.json()]

    assert names() == ["cart", "pay", "query"]
    assert names(owner="checkout") == ["cart", "pay"]
    assert names(lifecycle="experimental") == ["pay", "query"]
    assert names(owner="checkout", lifecycle="production") == ["cart"]
    assert names(owner="platform") == []
    assert search.get("/api/v1/services", params={"owner": "nobody"}).status_code == 404
    assert search.get("/api/v1/services", params={"lifecycle": "retired"}).status_code == 422


def test_service_input_errors(admin: TestClient, checkout: TestClient) -> None:
    checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    duplicate = checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"})
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.json()["detail"]

    for bad in ["Cart", "-cart", "cart_1", "c" * 41, "cart.io"]:
        refused = checkout.post("/api/v1/services", json={"name": bad, "owner": "checkout"})
        assert refused.status_code == 422, bad
        assert "lower-case letter" in refused.json()["detail"]
    lifecycle = checkout.post("/api/v1/services", json={"name": "x", "owner": "checkout", "lifecycle": "beta"})
    assert lifecycle.status_code == 422
    assert "experimental" in lifecycle.text
    long = checkout.post("/api/v1/services", json={"name": "x", "owner": "checkout", "description": "d" * 2001})
    assert long.status_code == 422
    assert checkout.post("/api/v1/services", json={"name": "x", "owner": "nobody"}).status_code == 404
    assert checkout.get("/api/v1/services/nothing").status_code == 404
    assert checkout.patch("/api/v1/services/nothing", json={}).status_code == 404
    assert checkout.delete("/api/v1/services/nothing").status_code == 404
    assert admin.get("/api/v1/services/" + "x" * 300).status_code == 404


def test_a_team_creates_services_only_for_itself(admin: TestClient, checkout: TestClient) -> None:
    refused = checkout.post("/api/v1/services", json={"name": "cart", "owner": "platform"})
    assert refused.status_code == 403
    assert "owned by itself" in refused.json()["detail"]
    assert admin.get("/api/v1/services/cart").status_code == 404
    assert admin.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).status_code == 201


def test_owner_updates_and_deletes_others_get_403(
    admin: TestClient, checkout: TestClient, search: TestClient
) -> None:
    checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    updated = checkout.patch("/api/v1/services/cart", json={"description": "The cart", "lifecycle": "production"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["description"], updated.json()["lifecycle"]) == ("The cart", "production")
    assert datetime.fromisoformat(updated.json()["updated_at"]) > datetime.fromisoformat(
        updated.json()["created_at"]
    )
    assert checkout.patch("/api/v1/services/cart", json={"lifecycle": "gone"}).status_code == 422

    assert search.patch("/api/v1/services/cart", json={"description": "mine"}).status_code == 403
    assert search.delete("/api/v1/services/cart").status_code == 403
    assert checkout.get("/api/v1/services/cart").json()["description"] == "The cart"

    assert admin.patch("/api/v1/services/cart", json={"lifecycle": "deprecated"}).status_code == 200
    assert checkout.delete("/api/v1/services/cart").status_code == 204
    assert checkout.get("/api/v1/services/cart").status_code == 404
    # The name is free again.
    assert checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).status_code == 201


def test_transfer_by_owner_or_admin_only(admin: TestClient, checkout: TestClient, search: TestClient) -> None:
    checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    assert search.post("/api/v1/services/cart/transfer", json={"to": "search"}).status_code == 403
    assert checkout.post("/api/v1/services/cart/transfer", json={"to": "nobody"}).status_code == 404

    moved = checkout.post("/api/v1/services/cart/transfer", json={"to": "search"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["owner"] == "search"
    # The former owner has lost it; the new owner has it.
    assert checkout.patch("/api/v1/services/cart", json={"description": "still mine?"}).status_code == 403
    assert search.patch("/api/v1/services/cart", json={"description": "ours"}).status_code == 200
    assert admin.post("/api/v1/services/cart/transfer", json={"to": "checkout"}).json()["owner"] == "checkout"

    [event] = admin.get("/api/v1/audit", params={"service": "cart"}).json()[:1]
    assert event["action"] == "service.transfer"
    assert (event["before"]["owner"], event["after"]["owner"]) == ("search", "checkout")


def test_a_change_that_changes_nothing_is_not_recorded(admin: TestClient, checkout: TestClient) -> None:
    created = checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout", "description": "d"})
    assert checkout.patch("/api/v1/services/cart", json={}).json() == created.json()
    assert checkout.patch("/api/v1/services/cart", json={"description": "d"}).json() == created.json()
    assert checkout.post("/api/v1/services/cart/transfer", json={"to": "checkout"}).json() == created.json()
    assert [e["action"] for e in admin.get("/api/v1/audit", params={"service": "cart"}).json()] == [
        "service.create"
    ]
