"""Teams renamed and deleted, as the platform team meets it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient


def test_a_renamed_team_keeps_its_tokens_and_services(
    admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    checkout = team_client("checkout")
    assert checkout.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).status_code == 201

    renamed = admin.patch("/api/v1/teams/checkout", json={"name": "payments"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "payments"
    assert admin.get("/api/v1/teams/checkout").status_code == 404
    assert checkout.get("/api/v1/whoami").json()["team"] == "payments"  # the same token
    assert admin.get("/api/v1/services/cart").json()["owner"] == "payments"
    assert checkout.patch("/api/v1/services/cart", json={"description": "still ours"}).status_code == 200

    [event] = [e for e in admin.get("/api/v1/audit").json() if e["action"] == "team.rename"]
    assert (event["before"], event["after"]) == ({"name": "checkout"}, {"name": "payments"})


def test_renaming_is_refused_clearly(admin: TestClient, team_client: Callable[[str], TestClient]) -> None:
    checkout = team_client("checkout")
    team_client("search")
    taken = admin.patch("/api/v1/teams/checkout", json={"name": "search"})
    assert taken.status_code == 409
    assert "already exists" in taken.json()["detail"]
    assert admin.patch("/api/v1/teams/checkout", json={"name": "Not A Label"}).status_code == 422
    assert admin.patch("/api/v1/teams/platform", json={"name": "ops"}).status_code in (400, 422)
    assert checkout.patch("/api/v1/teams/checkout", json={"name": "mine"}).status_code == 403


def test_a_team_is_deleted_only_once_it_owns_nothing(
    admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    checkout = team_client("checkout")
    for name in ("cart", "basket"):
        checkout.post("/api/v1/services", json={"name": name, "owner": "checkout"}).raise_for_status()

    refused = admin.delete("/api/v1/teams/checkout")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "team 'checkout' still owns basket, cart: transfer or delete them first"
    assert checkout.delete("/api/v1/teams/checkout").status_code == 403

    for name in ("cart", "basket"):
        assert admin.delete(f"/api/v1/services/{name}").status_code == 204
    assert admin.delete("/api/v1/teams/checkout").status_code == 204
    assert admin.get("/api/v1/teams/checkout").status_code == 404
    assert checkout.get("/api/v1/whoami").status_code == 401  # its tokens went with it
    assert admin.delete("/api/v1/teams/checkout").status_code == 404
    assert "team.delete" in [e["action"] for e in admin.get("/api/v1/audit").json()]
