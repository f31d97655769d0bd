"""Podium with ``PODIUM_RUNTIME=swarm``, driven over its API as a product team would: the
deploy service decides releases, health gates, switches and rollbacks; the swarm runs them."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from click.testing import Result as CliResult
from fastapi.testclient import TestClient
from tests.conftest import LiveServer
from tests.deploy.support import await_change, create_service, deploy, env_path, poll, slug_of, through_router
from tests.swarm.conftest import Swarm
from tests.swarm.support import HELLO, looping_clients
from typer.testing import CliRunner

from podium.api.app import create_app
from podium.cli.main import app
from podium.config import Settings
from podium.core import Podium
from podium.runtime.ports import free_port
from podium.runtime.swarm.runtime import SwarmRuntime

pytestmark = pytest.mark.swarm
SERVICE = "greeter"
HOST = f"{SERVICE}.localhost"


@pytest.fixture(scope="module")
def core(swarm: Swarm) -> Iterator[Podium]:
    data_dir = Path(tempfile.mkdtemp(prefix="pd-swarm-"))
    settings = Settings(
        data_dir=data_dir, port=free_port(), router_port=swarm.router_port, runtime="swarm",
        docker_host=swarm.manager_host, registry=swarm.registry, stack_image=swarm.stack_image,
        health_timeout=120.0, watch_window=0.0,
    )
    podium = Podium(settings)
    podium.start()
    podium.start_runtime()
    yield podium
    podium.runtime.teardown(SERVICE)
    podium.close()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def admin(core: Podium) -> Iterator[TestClient]:
    token = core.settings.admin_token_path.read_text().strip()
    with TestClient(create_app(core), headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


@pytest.fixture(scope="module")
def hello_slug(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    where = tmp_path_factory.mktemp("hello") / "hello"
    shutil.copytree(HELLO, where)
    return slug_of(where)


def test_a_deploy_on_the_swarm_goes_live_on_both_nodes_and_changes_fail_no_request(
    swarm: Swarm, core: Podium, admin: TestClient, hello_slug: bytes,
) -> None:
    assert isinstance(core.runtime, SwarmRuntime)
    create_service(admin, SERVICE)
    first = deploy(admin, SERVICE, "production", hello_slug)
    assert first.release["status"] == "live", first.events
    scaled = await_change(admin.post(f"{env_path(SERVICE, 'production')}/scale", json={"web": 4}),
                          admin, SERVICE, "production")
    assert scaled.release["status"] == "live", scaled.events
    ps = admin.get(f"{env_path(SERVICE, 'production')}/ps").json()
    assert [p["state"] for p in ps] == ["RUNNING"] * 4
    assert len({p["node"] for p in ps}) == 2

    with looping_clients(core.settings.router_port, HOST) as load:
        changed = await_change(
            admin.patch(f"{env_path(SERVICE, 'production')}/config", json={"set": {"GREETING": "hi"}}),
            admin, SERVICE, "production",
        )
        rolled = await_change(
            admin.post(f"{env_path(SERVICE, 'production')}/rollback", json={"to": scaled.release["version"]}),
            admin, SERVICE, "production",
        )
    assert changed.release["status"] == "live", (changed.release.get("failure_reason"), changed.events[-3:])
    assert rolled.release["status"] == "live", (rolled.release.get("failure_reason"), rolled.events[-3:])
    assert load.failed == 0, load.errors
    assert {changed.release["version"], rolled.release["version"]} <= set(load.releases)
    logs = admin.get(f"{env_path(SERVICE, 'production')}/logs", params={"lines": 50}).text
    assert f"{rolled.release['version']} web-" in logs


def test_a_killed_task_is_restarted_by_the_swarm_and_counted_on_its_release(
    swarm: Swarm, core: Podium, admin: TestClient,
) -> None:
    live = next(r for r in admin.get(f"{env_path(SERVICE, 'production')}/releases").json() if r["status"] == "live")
    ps = admin.get(f"{env_path(SERVICE, 'production')}/ps").json()
    victim = next(p for p in ps if p["state"] == "RUNNING")
    killed = False
    for host in (swarm.manager_host, swarm.worker_host):  # the task's own engine has its container
        engine = docker.DockerClient(base_url=host)
        try:
            for container in engine.containers.list(filters={"label": f"podium.release={live['version']}"}):
                if container.attrs["State"]["Pid"] == victim["pid"]:
                    container.kill()
                    killed = True
        finally:
            engine.close()
    assert killed
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        release = admin.get(f"{env_path(SERVICE, 'production')}/releases/{live['version']}").json()
        if release["crashes"] > live["crashes"]:
            break
        time.sleep(0.25)
    assert release["crashes"] == live["crashes"] + 1
    again = {p["process"]: p for p in admin.get(f"{env_path(SERVICE, 'production')}/ps").json()}
    assert again[victim["process"]]["restarts"] >= 1


def cli(server: LiveServer, *args: str, token: str | None = None) -> CliResult:
    env = {"PODIUM_URL": server.url, "PODIUM_TOKEN": token or server.admin_token, "XDG_CONFIG_HOME": "/nonexistent"}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def live_server(core: Podium) -> Iterator[LiveServer]:
    server = LiveServer(core)
    server.start()
    yield server
    server.stop()


def test_nodes_list_drain_and_activate_from_the_cli(
    swarm: Swarm, core: Podium, admin: TestClient, live_server: LiveServer,
) -> None:
    listed = cli(live_server, "nodes", "list", "--json")
    assert listed.exit_code == 0, listed.output
    nodes = json.loads(listed.stdout)
    assert sorted(n["address"] for n in nodes) == [swarm.manager_addr, swarm.worker_addr]
    assert {n["state"] for n in nodes} == {"ready"}
    worker = next(n for n in nodes if n["address"] == swarm.worker_addr)
    assert worker["tasks"] >= 1  # some of greeter's web tasks

    admin.post("/api/v1/teams", json={"name": "outsiders"}).raise_for_status()
    outsider = admin.post("/api/v1/teams/outsiders/tokens", json={}).json()["token"]
    refused = cli(live_server, "nodes", "drain", worker["id"], token=outsider)
    assert refused.exit_code != 0
    forbidden = admin.post(f"/api/v1/nodes/{worker['id']}/drain", headers={"Authorization": f"Bearer {outsider}"})
    assert forbidden.status_code == 403
    assert "platform" in forbidden.json()["detail"]

    try:
        drained = cli(live_server, "nodes", "drain", worker["id"][:8], "--json")
        assert drained.exit_code == 0, drained.output
        assert json.loads(drained.stdout)["availability"] == "drain"

        def moved() -> bool:
            ps = admin.get(f"{env_path(SERVICE, 'production')}/ps").json()
            return len(ps) == 4 and all(p["state"] == "RUNNING" and p["node"] != worker["name"] for p in ps)

        poll(moved, 90, "greeter's tasks to leave the drained node", interval=0.25)
        assert through_router(core.settings.router_port, HOST).status_code == 200
    finally:
        activated = cli(live_server, "nodes", "activate", worker["name"], "--json")
    assert activated.exit_code == 0, activated.output
    assert json.loads(activated.stdout)["availability"] == "active"
    audit = admin.get("/api/v1/audit").json()
    assert {(e["action"], e["team"]) for e in audit if e["target"] == worker["id"]} == {
        ("node.drain", "platform"), ("node.active", "platform"),
    }
