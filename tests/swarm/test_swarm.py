"""The swarm runtime on a real two-node swarm, as a user of Podium would see it.

One module, so the session's swarm is built once even when the suite runs on several
pytest-xdist workers (each takes whole files). First the runtime alone: where tasks run,
what the router answers while releases change, what a broken release, a drained node and a
killed process do. Then Podium with ``PODIUM_RUNTIME=swarm``, driven over its API and CLI
as a product team and the platform team would.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from click.testing import Result as CliResult
from fastapi.testclient import TestClient
from tests.conftest import LiveServer
from tests.deploy.support import await_change, create_service, deploy, env_path, poll, slug_of, through_router
from tests.swarm.conftest import Swarm
from tests.swarm.support import HELLO, looping_clients, make_slug, release, rollout
from typer.testing import CliRunner

from podium.api.app import create_app
from podium.cli.main import app
from podium.config import Settings
from podium.core import Podium
from podium.runtime.interface import ReleaseFailed, ReleaseRef, RunningRelease
from podium.runtime.naming import group_name
from podium.runtime.ports import free_port
from podium.runtime.swarm.nodes import Availability, list_nodes, set_availability
from podium.runtime.swarm.runtime import SwarmRuntime

pytestmark = pytest.mark.swarm


def test_two_ready_nodes_and_the_stack_image(swarm: Swarm) -> None:
    client = docker.DockerClient(base_url=swarm.manager_host)
    try:
        nodes = client.nodes.list()
        assert sorted(node.attrs["Status"]["Addr"] for node in nodes) == [swarm.manager_addr, swarm.worker_addr]
        assert {node.attrs["Status"]["State"] for node in nodes} == {"ready"}
        assert client.images.get(swarm.stack_image).attrs["Os"] == "linux"
    finally:
        client.close()


# The runtime alone ------------------------------------------------------------
HOST = "hello.localhost"


@pytest.fixture(scope="module")
def slugs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("slugs")
    return {
        "v1": make_slug(base / "v1.tgz"),
        "v2": make_slug(base / "v2.tgz", extra={"VERSION": "2"}),
        "broken": make_slug(base / "broken.tgz", extra={"Procfile": "web: python3 -c 'raise SystemExit(3)'\n"}),
    }


@pytest.fixture(scope="module")
def live(swarm_runtime: SwarmRuntime, slugs: dict[str, Path]) -> Iterator[RunningRelease]:
    running = rollout(swarm_runtime, release(slugs["v1"], 1))
    yield running
    swarm_runtime.teardown("hello")


def get(runtime: SwarmRuntime, path: str = "/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{runtime.router_port}{path}", headers={"Host": HOST}, timeout=10)


def test_web_tasks_run_on_both_nodes_and_both_take_traffic(swarm_runtime: SwarmRuntime, live: RunningRelease) -> None:
    processes = swarm_runtime.processes(live)
    assert sorted(p.name for p in processes) == ["web-1", "web-2", "web-3", "web-4"]
    assert {p.state for p in processes} == {"RUNNING"}
    assert len({p.node for p in processes}) == 2
    for _ in range(40):
        assert get(swarm_runtime).json()["release"] == "v1"
    served = {line.split(" ")[2].rstrip(":") for line in swarm_runtime.read_logs("hello", "production", 400)
              if line.endswith("GET / 200")}
    nodes_serving = {p.node for p in processes if p.name in served}
    assert len(nodes_serving) == 2


def test_redeploys_a_config_change_and_a_rollback_fail_no_request(
    swarm_runtime: SwarmRuntime, live: RunningRelease, slugs: dict[str, Path],
) -> None:
    with looping_clients(swarm_runtime.router_port, HOST) as load:
        for version in (2, 3, 4):
            rollout(swarm_runtime, release(slugs["v2" if version % 2 else "v1"], version))
        rollout(swarm_runtime, release(slugs["v1"], 5, config={"GREETING": "changed"}))  # a config change
        rollback = release(slugs["v2"], 6)  # vN again: its image is in the registry, nothing is built
        prepared = swarm_runtime.prepare(rollback, lambda step, detail: None)
        assert swarm_runtime.images.exists(prepared.location)
        rollout(swarm_runtime, rollback)
    assert load.failed == 0, load.errors
    assert sum(load.statuses.values()) > 100
    assert {"v2", "v3", "v4", "v5", "v6"} <= set(load.releases)
    assert get(swarm_runtime).json()["release"] == "v6"
    assert swarm_runtime.route("hello", "production").upstreams == ("tasks.hello_production_v6_web:5000",)


def test_a_broken_release_never_takes_traffic(
    swarm_runtime: SwarmRuntime, live: RunningRelease, slugs: dict[str, Path],
) -> None:
    before = swarm_runtime.route("hello", "production")
    with looping_clients(swarm_runtime.router_port, HOST) as load, pytest.raises(ReleaseFailed):
        rollout(swarm_runtime, release(slugs["broken"], 90))
    assert load.failed == 0, load.errors
    assert "v90" not in load.releases
    assert swarm_runtime.route("hello", "production") == before
    assert not [p for p in swarm_runtime.all_live_processes([]) if p.version == 90]


def test_draining_a_node_moves_its_tasks_and_fails_no_request(
    swarm: Swarm, swarm_runtime: SwarmRuntime, live: RunningRelease,
) -> None:
    client = swarm_runtime.client
    worker = next(node for node in list_nodes(client) if node.address == swarm.worker_addr)
    running = current_release(swarm_runtime)
    try:
        with looping_clients(swarm_runtime.router_port, HOST) as load:
            set_availability(client, worker.id, Availability.DRAIN)
            wait_until_moved(swarm_runtime, running, worker.name)
        assert load.failed == 0, load.errors
        assert sum(load.statuses.values()) > 20
        assert next(n for n in list_nodes(client) if n.id == worker.id).availability == "drain"
    finally:
        set_availability(client, worker.id, Availability.ACTIVE)


def wait_until_moved(runtime: SwarmRuntime, running: RunningRelease, away_from: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        processes = runtime.processes(running)
        if len(processes) == 4 and all(p.state == "RUNNING" and p.node != away_from for p in processes):
            return
        time.sleep(0.25)
    raise AssertionError(f"tasks still on {away_from}: {runtime.processes(running)}")


def test_a_killed_process_is_restarted_and_counted(
    swarm: Swarm, swarm_runtime: SwarmRuntime, live: RunningRelease,
) -> None:
    running = current_release(swarm_runtime)
    victim = next(p for p in swarm_runtime.processes(running) if p.state == "RUNNING")
    engine = docker.DockerClient(base_url=engine_of(swarm, swarm_runtime, victim.node))
    try:
        web = f"{group_name('hello', 'production', running.ref.version)}_web"
        container = next(
            c for c in engine.containers.list(filters={"label": f"com.docker.swarm.service.name={web}"})
            if c.attrs["State"]["Pid"] == victim.pid
        )
        container.kill()  # SIGKILL to the app's process, as the kernel's OOM killer would
    finally:
        engine.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        again = {p.name: p for p in swarm_runtime.all_live_processes([running.ref])}
        replaced = again[victim.name]
        if replaced.restarts > victim.restarts and replaced.state == "RUNNING" and replaced.pid != victim.pid:
            break
        time.sleep(0.25)
    assert again[victim.name].restarts == victim.restarts + 1
    assert again[victim.name].pid != victim.pid
    assert all(p.state == "RUNNING" for p in again.values())
    assert get(swarm_runtime).status_code == 200


def test_an_app_cannot_reach_another_environments_network(
    swarm: Swarm, swarm_runtime: SwarmRuntime, live: RunningRelease, slugs: dict[str, Path],
) -> None:
    staging = rollout(swarm_runtime, release(slugs["v1"], 1, env="staging", web=1))
    try:
        production = [p for p in swarm_runtime.processes(current_release(swarm_runtime)) if p.address]
        own = swarm_runtime.processes(staging)[0]
        assert own.address is not None
        probe = (
            "import socket,sys\n"
            "def reach(host, port):\n"
            "    try: socket.create_connection((host, port), timeout=2).close(); return 'open'\n"
            "    except OSError as exc: return type(exc).__name__\n"
            "print(' '.join(reach(h, 5000) for h in sys.argv[1:]))"
        )
        targets = [own.address.split(":")[0], production[0].address.split(":")[0],
                   f"tasks.{group_name('hello', 'production', production[0].version or 0)}_web"]
        engine = docker.DockerClient(base_url=engine_of(swarm, swarm_runtime, own.node))
        try:
            container = engine.containers.list(
                filters={"label": "com.docker.swarm.service.name=hello_staging_v1_web"})[0]
            result = container.exec_run(["python3", "-c", probe, *targets])
        finally:
            engine.close()
        own_answer, other_task, other_name = result.output.decode().split()
        assert own_answer == "open"  # the probe can reach what it may
        assert other_task != "open"
        assert other_name == "gaierror"  # another environment's services do not even resolve
    finally:
        swarm_runtime.stop(staging.ref)


def current_release(runtime: SwarmRuntime) -> RunningRelease:
    """The release the router sends hello/production to now."""
    upstream = runtime.route("hello", "production").upstreams[0]
    version = int(upstream.split("_v")[1].split("_")[0])
    return RunningRelease(ref=ReleaseRef("hello", "production", version), ports={"web-1": 5000})


def engine_of(swarm: Swarm, runtime: SwarmRuntime, node: str) -> str:
    """The Engine API of the node a process runs on (containers are reached on their own node)."""
    address = next(n.address for n in list_nodes(runtime.client) if n.name == node)
    return swarm.manager_host if address == swarm.manager_addr else swarm.worker_host


# Podium on the swarm, over its API -------------------------------------------
SERVICE = "greeter"
GREETER_HOST = f"{SERVICE}.localhost"


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

    with looping_clients(core.settings.router_port, GREETER_HOST) as load:
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
        assert through_router(core.settings.router_port, GREETER_HOST).status_code == 200
    finally:
        activated = cli(live_server, "nodes", "activate", worker["name"], "--json")
    assert activated.exit_code == 0, activated.output
    assert json.loads(activated.stdout)["availability"] == "active"
    audit = admin.get("/api/v1/audit").json()
    assert {(e["action"], e["team"]) for e in audit if e["target"] == worker["id"]} == {
        ("node.drain", "platform"), ("node.active", "platform"),
    }
