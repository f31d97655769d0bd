"""Contribution grants over the API: given by the owner, listed on the service, time-boxed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from podium.catalog.models import Grant
from podium.core import Podium


@pytest.fixture
def checkout(team_client: Callable[[str], TestClient]) -> TestClient:
    client = team_client("checkout")
    client.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    return client


@pytest.fixture
def search(team_client: Callable[[str], TestClient]) -> TestClient:
    return team_client("search")


def test_owner_grants_lists_and_revokes(admin: TestClient, checkout: TestClient, search: TestClient) -> None:
    until = datetime.now(UTC) + timedelta(days=3)
    given = checkout.post(
        "/api/v1/services/cart/grants",
        json={"team": "search", "rights": ["deploy", "config", "deploy"], "expires_at": until.isoformat(),
              "reason": "launch week"},
    )
    assert given.status_code == 201, given.text
    grant = given.json()
    assert (grant["team"], grant["rights"], grant["active"]) == ("search", ["config", "deploy"], True)
    assert datetime.fromisoformat(grant["expires_at"]) == until
    by_duration = admin.post("/api/v1/services/cart/grants", json={"team": "search", "rights": ["config"],
                                                                 "duration": "12h"})
    assert by_duration.status_code == 201, by_duration.text
    ends = datetime.fromisoformat(by_duration.json()["expires_at"])
    assert timedelta(hours=11) < ends - datetime.now(UTC) <= timedelta(hours=12)

    listed = search.get("/api/v1/services/cart/grants").json()
    assert [g["id"] for g in listed] == [grant["id"], by_duration.json()["id"]]

    assert search.delete(f"/api/v1/services/cart/grants/{grant['id']}").status_code == 403
    revoked = checkout.delete(f"/api/v1/services/cart/grants/{grant['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert [g["id"] for g in search.get("/api/v1/services/cart/grants").json()] == [by_duration.json()["id"]]
    everything = search.get("/api/v1/services/cart/grants", params={"all": "true"}).json()
    assert [g["active"] for g in everything] == [False, True]

    actions = [e["action"] for e in admin.get("/api/v1/audit", params={"service": "cart"}).json()]
    assert actions == ["grant.revoke", "grant.add", "grant.add", "service.create"]


def test_grant_errors(checkout: TestClient, search: TestClient) -> None:
    def grant(service: str = "cart", **body: object) -> int:
        payload = {"team": "search", "rights": ["deploy"], "duration": "1d", **body}
        payload = {k: v for k, v in payload.items() if v is not None}
        return checkout.post(f"/api/v1/services/{service}/grants", json=payload).status_code

    assert grant(service="nothing") == 404
    assert grant(team="nobody") == 404
    assert grant(team="checkout") == 422  # the owner needs no grant
    assert grant(rights=[]) == 422
    assert grant(rights=["delete"]) == 422
    assert grant(duration="forever") == 422
    assert grant(duration="0s") == 422
    assert grant(duration="9" * 5000 + "d") == 422
    assert grant(duration="999999999w") == 422
    assert grant(duration=None) == 422  # neither expires_at nor duration
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert grant(duration=None, expires_at=past) == 422
    assert grant(duration=None, expires_at="2030-01-01T00:00:00") == 422  # no timezone
    assert grant(duration=None, expires_at="9999-12-31T23:59:59-05:00") == 422
    assert grant(expires_at="2030-01-01T00:00:00Z") == 422  # both
    assert search.post("/api/v1/services/cart/grants", json={"team": "search", "rights": ["deploy"],
                                                             "duration": "1d"}).status_code == 403
    assert checkout.delete("/api/v1/services/cart/grants/999").status_code == 404
    assert checkout.delete(f"/api/v1/services/cart/grants/{10**30}").status_code == 404
    assert checkout.delete("/api/v1/services/cart/grants/-1").status_code == 404
    assert checkout.delete("/api/v1/services/cart/grants/abc").status_code == 422
    assert checkout.get("/api/v1/services/cart/grants").json() == []


def test_a_grant_of_another_service_cannot_be_revoked_through_this_one(
    admin: TestClient, checkout: TestClient, search: TestClient
) -> None:
    search.post("/api/v1/services", json={"name": "query", "owner": "search"}).raise_for_status()
    theirs = search.post("/api/v1/services/query/grants", json={"team": "checkout", "rights": ["deploy"],
                                                                "duration": "1d"}).json()
    assert checkout.delete(f"/api/v1/services/cart/grants/{theirs['id']}").status_code == 404
    assert admin.get("/api/v1/services/query/grants").json()[0]["active"] is True


def test_an_expired_grant_is_no_longer_listed_as_active(
    core: Podium, checkout: TestClient, search: TestClient
) -> None:
    given = checkout.post("/api/v1/services/cart/grants", json={"team": "search", "rights": ["deploy"],
                                                                "duration": "1h"}).json()
    # Expiry is a matter of time passing: move the end into the past rather than wait.
    with core.store.session() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(Grant).where(Grant.id == given["id"]).values(expires_at=past))
    assert checkout.get("/api/v1/services/cart/grants").json() == []
    [ended] = checkout.get("/api/v1/services/cart/grants", params={"all": "true"}).json()
    assert (ended["id"], ended["active"]) == (given["id"], False)
