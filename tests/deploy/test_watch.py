"""After going live: a release that turns unhealthy is rolled back by Podium itself, and
crashes of live processes are counted."""

from __future__ import annotations

import itertools
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
from podium.deploy.watch import next_wait

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
    # /health passes the deploy's gate, then fails: however slow the machine, v2 goes live, then turns bad.
    v2 = deploy(
        admin, service, "staging",
        slug_of(probe_app(tmp_path / "v2", marker="v2", app_json=HEALTH, health_fails_after_probes=1)),
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
    # The watcher says why once the rollback is under way, beside v3's rollout: no event either.
    v2_after = poll(lambda: (r := admin.get(f"{staging}/releases/v2").json())["failure_reason"] and r, 10,
                    "v2's failure reason")
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
        app = probe_app(tmp_path / version, marker=version, app_json=HEALTH, health_fails_after_probes=1)
        assert deploy(admin, service, "staging", slug_of(app)).release["status"] == "live"

    def rolled_back() -> bool:
        return any(r["version"] == "v3" for r in admin.get(f"{staging}/releases").json())

    poll(rolled_back, 20, "the automatic rollback (v3) to appear")  # the watcher posts no event to await
    v3 = follow(admin, service, "staging", "v3").release
    assert (v3["status"], v3["rollback_of"]) == ("live", "v1")
    # v3 fails its health check from its second probe on, like v2; were it watched, a v4 would
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
    # Passes the gate and the watch's first probe, then fails: the rollback is tried about 3 s after v2
    # goes live, while v3 (7 s before it listens) holds the environment's lock.
    turns_bad = probe_app(tmp_path / "v2", marker="v2", app_json=HEALTH, health_fails_after_probes=2)
    assert deploy(admin, service, "staging", slug_of(turns_bad)).release["status"] == "live"
    slow = upload(admin, service, "staging", slug_of(probe_app(tmp_path / "v3", marker="v3", listen_delay=7)))
    assert slow.status_code == 202, slow.text

    v3 = follow(admin, service, "staging", "v3")

    assert v3.release["status"] == "live"
    v2 = admin.get(f"{staging}/releases/v2").json()
    assert (v2["status"], v2["failure_reason"]) == ("superseded", None)
    assert [r["version"] for r in admin.get(f"{staging}/releases").json()] == ["v3", "v2", "v1"]


def test_the_watch_backs_off_while_probes_pass_and_probes_every_second_while_they_fail() -> None:
    def schedule(outcomes: str, slowest: float = 10.0) -> list[float]:
        """When each probe is made (seconds after going live), for passes (.) and failures (x)."""
        at, wait, times = 0.0, 0.0, []
        for outcome in outcomes:
            at += wait
            times.append(at)
            wait = next_wait(wait, outcome == "x", fast=1.0, slowest=slowest)
        return times

    assert schedule("........") == [0, 1, 3, 7, 15, 25, 35, 45]  # 8 probes in a minute instead of 60
    assert schedule(".....", slowest=3.0) == [0, 1, 3, 6, 9]  # the web check's interval caps the wait
    assert schedule("xxx") == [0, 1, 2]  # broken at once: rolled back as soon as ever
    assert schedule("....xxx") == [0, 1, 3, 7, 15, 16, 17]  # a failure brings back probing every second
    assert schedule("....x...") == [0, 1, 3, 7, 15, 16, 18, 22]  # and passing again, the back-off anew


@pytest.mark.parametrize("settings_overrides", [{"watch_window": 11.0}])
def test_a_healthy_release_is_probed_at_once_then_less_and_less_often(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    core.start_runtime()
    staging = env_path(service, "staging")
    web_check = admin.patch(f"{staging}/checks/web", json={"interval": 3.0})  # the back-off's ceiling
    assert web_check.status_code == 200, web_check.text
    v1 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1", app_json=HEALTH, log_requests=True)))
    live_at = datetime.fromisoformat(v1.release["live_at"]).timestamp()
    # There is no event for "the window ended": wait it out, with a second for the last probe's line.
    poll(lambda: time.time() > live_at + settings.watch_window + 1, settings.watch_window + 5, "the window to end")

    def probe_times() -> list[float]:
        lines = admin.get(f"{staging}/logs").text.splitlines()
        # "<time> /health <Host> <User-Agent>"; the watch probes the process directly, the checker via the router.
        found = [line.split(" ")[-4:] for line in lines if " /health 127.0.0.1:" in line]
        return [float(at) - live_at for at, _, _, agent in found if agent.startswith("Podium-Health/")]

    after_live = [at for at in probe_times() if at > 0]  # the gate's probe came before the switch
    # At once, then after 1 and 2 s, then every 3 s (the web check's interval, not 4): at 0, 1,
    # 3, 6 and 9 s; the next, at 12 s, would be past the 11 s window. Probing every second made eleven.
    assert len(after_live) == 5, after_live
    assert after_live[0] < 1.0, after_live
    gaps = [b - a for a, b in itertools.pairwise(after_live)]
    assert all(wait - 0.05 < gap < wait + 1.0 for gap, wait in zip(gaps, (1, 2, 3, 3), strict=True)), gaps


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
