"""Importing a Backstage catalog-info.yaml: Components become services, owners become teams."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: cart
  description: The shopping cart
spec:
  type: service
  owner: group:default/checkout
  lifecycle: production
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: checkout
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: query
spec:
  owner: search
  lifecycle: experimental
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: cart-api
spec:
  owner: checkout
"""


def import_(client: TestClient, document: str) -> list[dict[str, str]]:
    response = client.post("/api/v1/catalog/import", json={"document": document})
    assert response.status_code == 200, response.text
    result: list[dict[str, str]] = response.json()
    return result


def test_import_creates_then_reports_unchanged_then_updates(admin: TestClient) -> None:
    assert import_(admin, CATALOG) == [
        {"service": "cart", "owner": "checkout", "action": "created"},
        {"service": "query", "owner": "search", "action": "created"},
    ]
    cart = admin.get("/api/v1/services/cart").json()
    assert (cart["owner"], cart["lifecycle"], cart["description"]) == ("checkout", "production", "The shopping cart")
    assert cart["environments"] == ["staging", "production"]
    assert {t["name"] for t in admin.get("/api/v1/teams").json()} == {"platform", "checkout", "search"}
    assert admin.get("/api/v1/services/cart-api").status_code == 404  # only Components

    assert [r["action"] for r in import_(admin, CATALOG)] == ["unchanged", "unchanged"]

    moved = CATALOG.replace("owner: search", "owner: group:default/checkout")
    assert [r["action"] for r in import_(admin, moved)] == ["unchanged", "updated"]
    assert admin.get("/api/v1/services/query").json()["owner"] == "checkout"
    [event] = admin.get("/api/v1/audit", params={"service": "query"}).json()[:1]
    assert event["action"] == "service.import"
    assert (event["before"]["owner"], event["after"]["owner"]) == ("search", "checkout")


def test_bad_catalog_files_are_refused_whole(admin: TestClient) -> None:
    bad = [
        "kind: Component\nmetadata: [unclosed",
        "kind: Component\nmetadata: {name: x}\nspec: {}\n",  # no owner
        "kind: Component\nmetadata: just-a-string\nspec: {owner: a}\n",
        "kind: Component\nmetadata: {name: Bad_Name}\nspec: {owner: a}\n",
        "kind: Component\nmetadata: {name: ok}\nspec: {owner: 'group:default/Not Valid'}\n",
        "kind: Component\nmetadata: {name: ok, created: 2001-13-45}\nspec: {owner: a}\n",
        "[" * 500 + "]" * 500,  # nesting deeper than the parser can build
    ]
    for document in bad:
        response = admin.post("/api/v1/catalog/import", json={"document": CATALOG + "---\n" + document})
        assert response.status_code == 422, document
        assert isinstance(response.json()["detail"], str)
    # Nothing of the good entities before the bad one was kept.
    assert admin.get("/api/v1/services").json() == []


def test_only_the_platform_team_imports(admin: TestClient, team_client: Callable[[str], TestClient]) -> None:
    refused = team_client("checkout").post("/api/v1/catalog/import", json={"document": CATALOG})
    assert refused.status_code == 403
    assert admin.get("/api/v1/services").json() == []
