"""A release that cannot serve never takes traffic: it fails with its reason, the old one serves."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import LiveServer
from tests.deploy.support import (
    create_service,
    deploy,
    env_path,
    follow,
    probe_app,
    slug_of,
    through_router,
    upload,
)

from podium.config import Settings
from podium.core import Podium
from podium.runtime import RuntimeFailure
from podium.runtime.interface import Draining, RunningRelease


def serves(settings: Settings, service: str, marker: str) -> bool:
    answer = through_router(settings.router_port, f"{service}.staging.localhost")
    return answer.status_code == 200 and answer.json()["marker"] == marker


def groups_of(core: Podium, service: str) -> list[str]:
    return [g for g in core.runtime.supervisor.groups() if g.startswith(f"{service}_")]


def live_v1(admin: TestClient, service: str, tmp_path: Path) -> None:
    v1 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1", marker="v1")))
    assert v1.release["status"] == "live", v1.release


def test_web_process_that_exits_at_once(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    live_v1(admin, service, tmp_path)

    v2 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v2", exit_at_once=True)))

    release = v2.release
    assert release["status"] == "failed"
    assert release["failure_reason"].startswith("health_check: process web-1 is "), release["failure_reason"]
    assert "exited too quickly" in release["failure_reason"].lower()
    assert "giving up at once on purpose" in release["log_tail"]
    assert v2.events[-1]["status"] == "failed"
    assert serves(settings, service, "v1")
    assert groups_of(core, service) == [f"{service}_staging_v1"]


@pytest.mark.parametrize("settings_overrides", [{"health_timeout": 3.0}])
def test_health_check_that_never_passes(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    live_v1(admin, service, tmp_path)
    check = {"type": "startup", "path": "/health", "attempts": 1, "timeout": 1, "wait": 1}
    app_json: dict[str, Any] = {"healthchecks": {"web": [check]}}

    v2 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v2", health="500", app_json=app_json)))

    reason = v2.release["failure_reason"]
    assert v2.release["status"] == "failed"
    assert reason.startswith("health_check: health check failed after 3s: GET /health on port "), reason
    assert reason.endswith("answered 500")
    assert serves(settings, service, "v1")
    assert groups_of(core, service) == [f"{service}_staging_v1"]


def test_failing_release_command(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    live_v1(admin, service, tmp_path)

    v2 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v2", release=True, release_exit=4)))

    release = v2.release
    assert release["status"] == "failed"
    assert release["failure_reason"] == "releasing: release command exited with status 4"
    assert "release: migration failed with status 4" in release["log_tail"]
    # The release command's output is stamped like every process's: "<UTC time>Z <text>".
    [line] = [x for x in release["log_tail"].splitlines() if "migration failed" in x]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z release: migration failed", line), line
    assert "starting" not in v2.stages
    assert release["ports"] == {}
    assert serves(settings, service, "v1")
    assert groups_of(core, service) == [f"{service}_staging_v1"]


def test_second_deploy_while_one_runs_is_refused(
    admin: TestClient, team_client: Any, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    team = team_client("web")
    slow = slug_of(probe_app(tmp_path / "slow", marker="slow", listen_delay=2))
    started = upload(team, service, "staging", slow)
    assert started.status_code == 202, started.text

    refused = upload(admin, service, "staging", slug_of(probe_app(tmp_path / "other", marker="other")))
    config = admin.patch(f"{env_path(service, 'staging')}/config", json={"set": {"CFG_A": "1"}})

    assert refused.status_code == 409, refused.text
    assert "running here: v1, held by 'web' since " in refused.json()["detail"]
    assert follow(admin, service, "staging", "v1").release["status"] == "live"
    assert config.status_code in (202, 409)  # 202 only if nothing was live yet to roll out
    after = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "after", marker="after")))
    assert after.release["status"] == "live"
    assert serves(settings, service, "after")


def test_two_deploys_at_the_same_instant_one_wins(live_server: LiveServer, tmp_path: Path) -> None:
    slugs = [slug_of(probe_app(tmp_path / name, marker=name)) for name in ("a", "b")]
    with live_server.client() as client:
        create_service(client, "race")
        for env in ("staging", "production"):
            barrier = threading.Barrier(2)

            def send(slug: bytes, env: str = env, barrier: threading.Barrier = barrier) -> httpx.Response:
                with live_server.client() as own:
                    barrier.wait(timeout=10)
                    return upload(own, "race", env, slug)

            with ThreadPoolExecutor(max_workers=2) as pool:
                answers = list(pool.map(send, slugs))

            assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
            won = next(a for a in answers if a.status_code == 202).json()["version"]
            assert won == "v1"
            assert follow(client, "race", env, won).release["status"] == "live"


def test_switch_that_fails_after_reloading_routes_back_to_the_old_release(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live_v1(admin, service, tmp_path)
    runtime = core.runtime
    switch = runtime.switch

    def reloads_then_fails(running: RunningRelease) -> Draining:
        switch(running)
        monkeypatch.setattr(runtime, "switch", switch)  # only the switch to v2 misbehaves
        raise RuntimeFailure("nginx started no worker with the new configuration within 20s")

    monkeypatch.setattr(runtime, "switch", reloads_then_fails)

    v2 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v2", marker="v2")))

    assert v2.release["status"] == "failed"
    assert v2.release["failure_reason"] == "switching: nginx started no worker with the new configuration within 20s"
    assert serves(settings, service, "v1")
    assert groups_of(core, service) == [f"{service}_staging_v1"]


def test_old_router_workers_that_linger_keep_the_old_release_running(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live_v1(admin, service, tmp_path)
    runtime = core.runtime
    switch = runtime.switch

    def lingering(running: RunningRelease) -> Draining:
        switched = switch(running)

        def still_running() -> None:
            switched.wait_drained()
            raise RuntimeFailure("nginx workers from before the reload still run after 20s")

        return cast(Draining, SimpleNamespace(wait_drained=still_running))

    monkeypatch.setattr(runtime, "switch", lingering)

    v2 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v2", marker="v2")))

    # v2 is live; v1's processes stay up for the requests an old worker may still carry to them
    assert (v2.release["status"], v2.release["stage"]) == ("live", "done")
    assert "still run after 20s" in v2.events[-1]["message"]
    assert serves(settings, service, "v2")
    assert groups_of(core, service) == [f"{service}_staging_v1", f"{service}_staging_v2"]


def test_trouble_after_going_live_never_takes_the_new_release_down(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live_v1(admin, service, tmp_path)

    def disk_trouble(service: str, env: str, keep_digests: set[str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core.runtime, "prune", disk_trouble)

    v2 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v2", marker="v2")))

    assert (v2.release["status"], v2.release["stage"], v2.release["failure_reason"]) == ("live", "done", None)
    assert "No space left on device" in v2.events[-1]["message"]
    assert serves(settings, service, "v2")
    assert groups_of(core, service) == [f"{service}_staging_v2"]


@pytest.mark.parametrize("settings_overrides", [{"keep_releases": 2}])
def test_failed_releases_never_push_a_rollback_target_out_of_the_unpacked_apps(
    admin: TestClient, service: str, settings: Settings, tmp_path: Path
) -> None:
    live_v1(admin, service, tmp_path)
    v2 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v2", marker="v2")))
    for n in (3, 4):
        broken = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / f"v{n}", exit_at_once=True)))
        assert broken.release["status"] == "failed"
    v5 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v5", marker="v5")))
    assert (v2.release["status"], v5.release["status"]) == ("live", "live")

    back = admin.post(f"{env_path(service, 'staging')}/rollback", json={})
    v6 = follow(admin, service, "staging", back.json()["version"])

    assert (v6.release["status"], v6.release["rollback_of"]) == ("live", "v2")
    assert v6.messages("unpacking") == ["already unpacked"]
    assert serves(settings, service, "v2")


def test_a_route_nginx_refuses_fails_the_health_gate_and_the_old_release_serves(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    live_v1(admin, service, tmp_path)
    broken = core.runtime.router.sites_dir / "zz-hand-written.conf"  # what nginx -t refuses, beside the routes
    broken.write_text("this is not nginx;\n")
    try:
        v2 = deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v2", marker="v2")))
    finally:
        broken.unlink()

    reason = v2.release["failure_reason"]
    assert v2.release["status"] == "failed"
    assert reason.startswith("health_check: nginx -t failed: "), reason
    assert 'unknown directive "this"' in reason
    assert serves(settings, service, "v1")
    assert groups_of(core, service) == [f"{service}_staging_v1"]
    assert core.runtime.route(service, "staging").upstreams == (f"127.0.0.1:{v1_port(admin, service)}",)


def v1_port(admin: TestClient, service: str) -> int:
    ports = admin.get(f"{env_path(service, 'staging')}/releases/v1").json()["ports"]
    return int(next(iter(ports.values())))
