"""After going live: a release that turns unhealthy is rolled back by Podium itself, and
crashes of live processes are counted."""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import deploy, env_path, follow, poll, probe_app, slug_of, through_router, upload

from podium.config import Settings
from podium.core import Podium

HEALTH: dict[str, Any] = {
    "healthchecks": {"web": [{"type": "startup", "path": "/health", "attempts": 3, "timeout": 1, "wait": 1}]},
}


@pytest.mark.parametrize("settings_overrides", [{"watch_window": 10.0}])
def test_release_that_turns_unhealthy_is_rolled_back_automatically(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    core.start_runtime()
    staging = env_path(service, "staging")
    assert deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1", marker="v1", app_json=HEALTH)))
    v2 = deploy(
        admin, service, "staging",
        slug_of(probe_app(tmp_path / "v2", marker="v2", app_json=HEALTH, health_fails_after=1.0)),
    )
    assert v2.release["status"] == "live"

    def rollback_started() -> bool:
        return any(r["version"] == "v3" for r in admin.get(f"{staging}/releases").json())

    poll(rollback_started, 20, "the automatic rollback (v3) to appear")  # the watcher posts no event to await
    v3 = follow(admin, service, "staging", "v3")

    assert (v3.release["status"], v3.release["rollback_of"]) == ("live", "v1")
    assert v3.release["description"] == "Auto-rollback of v2: rollback to v1"
    assert v3.release["created_by"] == "platform"
    assert (v3.release["cause"], v2.release["cause"]) == ("auto_rollback", "deploy")
    v2_after = admin.get(f"{staging}/releases/v2").json()
    assert v2_after["status"] == "superseded"
    assert v2_after["failure_reason"].startswith(
        "rolled back automatically by v3: 3 failed health checks within 10s of going live (GET /health on port "
    )
    assert v2_after["failure_reason"].endswith(" answered 500)")
    answer = through_router(settings.router_port, f"{service}.staging.localhost")
    assert answer.json()["marker"] == "v1"
    assert answer.json()["env"]["PODIUM_RELEASE"] == "v3"


@pytest.mark.parametrize("settings_overrides", [{"watch_window": 6.0}])
def test_an_automatic_rollback_is_not_itself_rolled_back(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    """When every build turns unhealthy (say, its database is down), Podium rolls back once,
    then leaves the decision to people instead of rolling back and forth."""
    core.start_runtime()
    staging = env_path(service, "staging")
    for version in ("v1", "v2"):
        app = probe_app(tmp_path / version, marker=version, app_json=HEALTH, health_fails_after=1.0)
        assert deploy(admin, service, "staging", slug_of(app)).release["status"] == "live"

    def rolled_back() -> bool:
        return any(r["version"] == "v3" for r in admin.get(f"{staging}/releases").json())

    poll(rolled_back, 20, "the automatic rollback (v3) to appear")  # the watcher posts no event to await
    v3 = follow(admin, service, "staging", "v3").release
    assert (v3["status"], v3["rollback_of"]) == ("live", "v1")
    # v3 fails its health check a second after it starts, like v2; were it watched, a v4 would
    # follow within the window. There is no event for "nothing happened": wait the window out.
    live_at = datetime.fromisoformat(v3["live_at"]).timestamp()
    poll(lambda: time.time() > live_at + settings.watch_window + 1, settings.watch_window + 5, "the window to end")

    assert [r["version"] for r in admin.get(f"{staging}/releases").json()] == ["v3", "v2", "v1"]


@pytest.mark.parametrize("settings_overrides", [{"watch_window": 10.0}])
def test_no_rollback_claimed_while_another_deploy_holds_the_lock(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    core.start_runtime()
    staging = env_path(service, "staging")
    assert deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1", marker="v1", app_json=HEALTH)))
    turns_bad = probe_app(tmp_path / "v2", marker="v2", app_json=HEALTH, health_fails_after=1.0)
    assert deploy(admin, service, "staging", slug_of(turns_bad)).release["status"] == "live"
    slow = upload(admin, service, "staging", slug_of(probe_app(tmp_path / "v3", marker="v3", listen_delay=7)))
    assert slow.status_code == 202, slow.text

    v3 = follow(admin, service, "staging", "v3")

    assert v3.release["status"] == "live"
    v2 = admin.get(f"{staging}/releases/v2").json()
    assert (v2["status"], v2["failure_reason"]) == ("superseded", None)
    assert [r["version"] for r in admin.get(f"{staging}/releases").json()] == ["v3", "v2", "v1"]


def test_a_killed_process_is_restarted_and_counted_as_a_crash(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    core.start_runtime()
    staging = env_path(service, "staging")
    assert deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1", marker="v1")))

    def running() -> dict[str, Any] | None:
        (process,) = admin.get(f"{staging}/ps").json()
        return process if process["state"] == "RUNNING" else None

    before = poll(running, 10, "web-1 to be RUNNING")  # supervisord's startsecs: 1 s of staying up
    assert before["restarts"] == 0

    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        (process,) = admin.get(f"{staging}/ps").json()
        return process if process["state"] == "RUNNING" and process["pid"] not in (None, before["pid"]) else None

    after = poll(restarted, 20, "supervisord to restart web-1")  # supervisord reports no event to await
    assert after["port"] == before["port"]
    release = poll(
        lambda: (r := admin.get(f"{staging}/releases/v1").json())["crashes"] >= 1 and r, 10, "the crash count"
    )
    assert release["crashes"] == 1
    assert release["status"] == "live"
    assert through_router(settings.router_port, f"{service}.staging.localhost").json()["marker"] == "v1"


def test_a_crash_while_nothing_watched_is_counted_once_the_watcher_starts(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    staging = env_path(service, "staging")
    v1 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1", marker="v1")))
    live_at = datetime.fromisoformat(v1.release["live_at"]).timestamp()
    (before,) = admin.get(f"{staging}/ps").json()
    # supervisord gives start times in whole seconds: let the clock pass the second after going live.
    poll(lambda: time.time() > live_at + 1, 5, "the next second")
    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> bool:
        (process,) = admin.get(f"{staging}/ps").json()
        return bool(process["pid"]) and process["pid"] != before["pid"]

    poll(restarted, 20, "supervisord to restart web-1")
    core.start_runtime()  # as when Podium restarts after the crash happened

    release = poll(
        lambda: (r := admin.get(f"{staging}/releases/v1").json())["crashes"] >= 1 and r, 10, "the crash count"
    )
    assert release["crashes"] == 1


def test_restarts_are_counted_per_process(
    admin: TestClient, core: Podium, service: str, tmp_path: Path
) -> None:
    core.start_runtime()
    staging = env_path(service, "staging")
    slug = slug_of(probe_app(tmp_path / "v1", app_json={"formation": {"web": {"quantity": 2}}}))
    assert deploy(admin, service, "staging", slug).release["status"] == "live"

    def all_running() -> list[dict[str, Any]] | None:
        processes: list[dict[str, Any]] = admin.get(f"{staging}/ps").json()
        return processes if all(p["state"] == "RUNNING" for p in processes) else None

    before = {p["process"]: p for p in poll(all_running, 10, "both processes to be RUNNING")}
    os.kill(before["web-2"]["pid"], signal.SIGKILL)
    poll(lambda: admin.get(f"{staging}/releases/v1").json()["crashes"] >= 1, 20, "the crash count")

    restarts = {p["process"]: p["restarts"] for p in admin.get(f"{staging}/ps").json()}
    assert restarts == {"web-1": 0, "web-2": 1}
