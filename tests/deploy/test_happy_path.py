"""The whole story of examples/hello: deploy, config, rollback, promote, scale."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

from fastapi.testclient import TestClient
from tests.deploy.support import HELLO, await_change, create_service, deploy, env_path, slug_of, through_router

from podium.config import Settings

STAGING = env_path("hello", "staging")
PRODUCTION = env_path("hello", "production")


def answer(settings: Settings, host: str) -> dict[str, str]:
    response = through_router(settings.router_port, host)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def test_deploy_config_rollback_promote_scale(admin: TestClient, settings: Settings, tmp_path: Path) -> None:
    create_service(admin, "hello")
    assert admin.patch(f"{STAGING}/config", json={"set": {"GREETING": "Hi from staging"}}).json()["release"] is None
    admin.patch(f"{PRODUCTION}/config", json={"set": {"GREETING": "Hi from production"}}).raise_for_status()

    v1 = deploy(admin, "hello", "staging", slug_of(HELLO))
    assert (v1.release["version"], v1.release["status"], v1.release["stage"]) == ("v1", "live", "done")
    assert v1.stages == ["pending", "unpacking", "starting", "health_check", "switching", "draining", "done"]
    assert v1.messages("unpacking") == [""]
    assert answer(settings, "hello.staging.localhost") == {
        "message": "Hi from staging", "service": "hello", "env": "staging", "release": "v1",
    }

    v2 = await_change(admin.patch(f"{STAGING}/config", json={"set": {"GREETING": "Howdy"}}), admin, "hello", "staging")
    assert (v2.release["version"], v2.release["status"]) == ("v2", "live")
    assert answer(settings, "hello.staging.localhost")["message"] == "Howdy"
    assert answer(settings, "hello.staging.localhost")["release"] == "v2"

    v3 = await_change(admin.post(f"{STAGING}/rollback", json={}), admin, "hello", "staging")
    assert (v3.release["version"], v3.release["status"], v3.release["rollback_of"]) == ("v3", "live", "v1")
    assert v3.messages("unpacking") == ["already unpacked"]
    assert answer(settings, "hello.staging.localhost") == {
        "message": "Hi from staging", "service": "hello", "env": "staging", "release": "v3",
    }
    assert admin.get(f"{STAGING}/config").json() == {"GREETING": "Hi from staging"}
    statuses = {r["version"]: r["status"] for r in admin.get(f"{STAGING}/releases").json()}
    assert statuses == {"v3": "live", "v2": "superseded", "v1": "superseded"}

    promoted = await_change(admin.post("/api/v1/services/hello/promote", json={}), admin, "hello", "production")
    assert (promoted.release["version"], promoted.release["status"]) == ("v1", "live")
    assert promoted.release["digest"] == v1.release["digest"]
    for host in ("hello.localhost", "hello.production.localhost"):
        assert answer(settings, host) == {
            "message": "Hi from production", "service": "hello", "env": "production", "release": "v1",
        }
    assert answer(settings, "hello.staging.localhost")["release"] == "v3"

    v4 = await_change(admin.post(f"{STAGING}/scale", json={"web": 2}), admin, "hello", "staging")
    assert (v4.release["version"], v4.release["status"], v4.release["formation"]) == ("v4", "live", {"web": 2})
    processes = admin.get(f"{STAGING}/ps").json()
    ports = sorted(p["port"] for p in processes)
    assert [p["process"] for p in processes] == ["web-1", "web-2"]
    assert len(set(ports)) == 2
    assert all(p["state"] in ("STARTING", "RUNNING") and p["release"] == "v4" for p in processes)  # 1 s of STARTING
    me = pwd.getpwuid(os.geteuid()).pw_name  # apps run as Podium's user, on this machine
    assert {(p["node"], p["user"]) for p in processes} == {("local", me)}
    for _ in range(6):
        assert answer(settings, "hello.staging.localhost")["release"] == "v4"
    access_log = settings.data_dir / "node" / "router" / "logs" / "access.log"
    upstreams = {
        entry["upstream_addr"]
        for entry in map(json.loads, access_log.read_text().splitlines())
        if entry["host"] == "hello.staging.localhost" and entry["status"] == 200
    }
    assert {f"127.0.0.1:{port}" for port in ports} <= upstreams, "nginx did not spread requests over both"
