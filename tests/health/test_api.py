"""The availability routes over HTTP: incidents, checks, maintenance windows."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from tests.health.support import live_release

from podium.core import Podium

API = "/api/v1"
CHECKS = f"{API}/services/hello/environments/production/checks"


def test_incident_lifecycle_over_the_api(
    core: Podium, admin: TestClient, hello: str, team_client: Callable[[str], TestClient]
) -> None:
    web, outsider = team_client("web"), team_client("outsider")
    live_release(core, "hello", "production")
    opened = web.post(f"{API}/services/hello/incidents", json={"summary": "checkout fails"})
    assert opened.status_code == 201, opened.text
    incident = opened.json()
    assert {k: incident[k] for k in ("service", "env", "team", "state", "source", "cause_deploy")} == {
        "service": "hello", "env": "production", "team": "web", "state": "triggered", "source": "manual",
        "cause_deploy": "v1",
    }
    path = f"{API}/incidents/{incident['id']}"
    assert outsider.post(f"{path}/ack").status_code == 403
    acked = web.post(f"{path}/ack").json()
    assert acked["state"] == "acknowledged"
    assert acked["acknowledged_by"].startswith("web/")
    assert web.post(f"{path}/ack").status_code == 409
    assert web.post(f"{path}/notes", json={"text": "rolled back"}).status_code == 201
    assert web.post(f"{path}/resolve").json()["state"] == "resolved"
    shown = outsider.get(path).json()  # any team may read
    assert [n["text"] for n in shown["notes"]] == ["rolled back"]
    assert [i["id"] for i in admin.get(f"{API}/incidents", params={"service": "hello"}).json()] == [incident["id"]]
    assert admin.get(f"{API}/incidents", params={"state": "triggered"}).json() == []
    assert admin.get(f"{API}/incidents", params={"state": "open"}).status_code == 422
    assert admin.get(f"{API}/incidents", params={"since": "2026-01-01T00:00:00"}).status_code == 422
    assert admin.get(f"{API}/incidents/0").status_code == 422
    assert admin.get(f"{API}/incidents/12345").status_code == 404


def test_checks_over_the_api(admin: TestClient, hello: str, team_client: Callable[[str], TestClient]) -> None:
    web, outsider = team_client("web"), team_client("outsider")
    changed = web.patch(f"{CHECKS}/web", json={"path": "/health", "interval": 30, "down_after": 4})
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("target", "interval", "down_after", "state", "path_pinned")} == {
        "target": "GET /health", "interval": 30.0, "down_after": 4, "state": "unknown", "path_pinned": True,
    }
    added = web.post(CHECKS, json={"name": "db", "tcp": "127.0.0.1:5432"})
    assert added.status_code == 201, added.text
    assert added.json()["target"] == "TCP 127.0.0.1:5432"
    assert outsider.post(CHECKS, json={"name": "x"}).status_code == 403
    assert outsider.patch(f"{CHECKS}/web", json={"interval": 1}).status_code == 403
    assert outsider.delete(f"{CHECKS}/db").status_code == 403
    assert web.post(CHECKS, json={"name": "db", "tcp": "127.0.0.1:5432"}).status_code == 409
    assert web.patch(f"{CHECKS}/web", json={"interval": "often"}).status_code == 422
    assert web.patch(f"{CHECKS}/web", json={"interval": None}).status_code == 422
    assert [c["name"] for c in admin.get(CHECKS).json()] == ["web", "db"]
    assert [c["name"] for c in admin.get(f"{API}/services/hello/checks").json()] == ["web", "db"]
    assert web.delete(f"{CHECKS}/db").status_code == 204
    assert web.delete(f"{CHECKS}/web").status_code == 422


def test_maintenance_over_the_api(admin: TestClient, hello: str, team_client: Callable[[str], TestClient]) -> None:
    web, outsider = team_client("web"), team_client("outsider")
    windows = f"{API}/services/hello/maintenance"
    made = web.post(windows, json={"duration": "2h", "reason": "database upgrade"})
    assert made.status_code == 201, made.text
    assert (made.json()["active"], made.json()["env"], made.json()["created_by"]) == (True, None, "web")
    planned = web.post(windows, json={"env": "staging", "starts_at": "2099-01-01T02:00:00Z",
                                      "ends_at": "2099-01-01T03:00:00+00:00"})
    assert planned.json()["active"] is False
    assert outsider.post(windows, json={"duration": "1h"}).status_code == 403
    assert web.post(windows, json={}).status_code == 422
    assert web.post(windows, json={"duration": "1h", "ends_at": "2099-01-01T03:00:00Z"}).status_code == 422
    assert web.post(windows, json={"ends_at": "2099-01-01T03:00:00"}).status_code == 422
    assert [w["reason"] for w in outsider.get(windows).json()] == ["database upgrade", ""]
    assert outsider.delete(f"{windows}/{made.json()['id']}").status_code == 403
    assert web.delete(f"{windows}/{made.json()['id']}").status_code == 204
    assert len(admin.get(windows).json()) == 1
