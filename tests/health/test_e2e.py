"""examples/hello deployed for real (supervisord + nginx): its web process stops, an incident
opens by itself and names the deploy as its likely cause; it starts again, the incident resolves."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import HELLO, create_service, deploy, slug_of
from tests.health.support import wait_for

from podium.core import Podium
from podium.runtime.naming import group_name

FAST = {"check_interval": 0.2, "check_timeout": 1.0, "check_sync_interval": 0.2}


@pytest.mark.e2e
@pytest.mark.parametrize("settings_overrides", [FAST])
def test_a_stopped_app_opens_an_incident_that_resolves_when_it_is_back(
    core: Podium, admin: TestClient, settings_overrides: dict[str, Any]
) -> None:
    create_service(admin, "hello", owner="web")
    rollout = deploy(admin, "hello", "production", slug_of(HELLO))
    assert rollout.release["status"] == "live", rollout.release
    core.start_runtime()  # the checker starts with the rest of the runtime, as in `podium server`

    def web_check() -> dict[str, Any]:
        [check] = admin.get("/api/v1/services/hello/environments/production/checks").json()
        return dict(check)

    check = wait_for(lambda: web_check()["state"] == "up" and web_check(), 20, "the web check to say up")
    assert (check["target"], check["interval"]) == ("GET /health", 0.2)  # app.json's healthchecks.web

    group = group_name("hello", "production", 1)
    core.runtime.supervisor.stop_process(group, "web-1")

    def open_incident() -> dict[str, Any] | None:
        found = admin.get("/api/v1/incidents", params={"service": "hello", "state": "triggered"}).json()
        return found[0] if found else None

    incident = wait_for(open_incident, 20, "an incident to open")
    assert incident["summary"] == "hello/production is down: GET /health answered 502"
    assert (incident["source"], incident["team"], incident["cause_deploy"]) == ("check", "web", "v1")

    core.runtime.supervisor.start_process(group, "web-1")

    def resolved() -> dict[str, Any] | None:
        shown = admin.get(f"/api/v1/incidents/{incident['id']}").json()
        return shown if shown["state"] == "resolved" else None

    done = wait_for(resolved, 20, "the incident to resolve")
    assert done["resolved_by"] == "podium (check)"
    assert web_check()["state"] == "up"
    assert len(admin.get("/api/v1/incidents", params={"service": "hello"}).json()) == 1
