"""Swarm benchmark: Podium on a real two-node Docker Swarm, each number beside its floor.

Run it as root with ``.venv/bin/python bench/swarm.py [--json PATH]``. It builds the same
two-node swarm the tests use (a dockerd of its own, node 2 in a network namespace, Debian's
registry, the stack image from ``make stack-image``), runs Podium with
``PODIUM_RUNTIME=swarm`` in this process, and measures, all in the same run:

1. upload → live of the hello app (one web task) on the swarm, with the image build it
   includes, against the floor: ``docker service create`` of the same image through the
   Engine API until its task runs, plus routing it and the first 200 through the router;
2. a config change (a new release, no build) upload → live against the same floor;
3. failed requests through the router while two config changes and a rollback run under
   four looping clients;
4. draining node 2 with four web tasks: time until every task runs on node 1 again, and
   failed requests meanwhile.

Target: a deploy ≤ 1.5x floor + image build, 0 failed requests. It is a report, not a
test: it exits non-zero only when a step itself fails. Everything it started is stopped at
the end (the dockerd data root stays, with the stack image, for the next run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from docker.types import EndpointSpec  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from tests.deploy.support import await_change, create_service, deploy, env_path, slug_of  # noqa: E402
from tests.swarm.conftest import Cluster  # noqa: E402
from tests.swarm.support import HELLO, looping_clients  # noqa: E402

from podium.api.app import create_app  # noqa: E402
from podium.config import Settings  # noqa: E402
from podium.core import Podium  # noqa: E402
from podium.runtime.ports import free_port  # noqa: E402
from podium.runtime.swarm.nodes import Availability, list_nodes, set_availability  # noqa: E402
from podium.runtime.swarm.router import gateway_site  # noqa: E402
from podium.runtime.swarm.runtime import SwarmRuntime  # noqa: E402
from podium.runtime.swarm.services import network_name  # noqa: E402

SERVICE = "bench"
HOST = f"{SERVICE}.localhost"
TIME_LIMIT = 900.0


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def answers(port: int, body_has: str) -> bool:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": HOST}, timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and body_has in response.text


def build_seconds(events: list[dict[str, Any]]) -> float:
    """How long the rollout's image build took, from its stage events."""
    stamps = [(event["stage"], datetime.fromisoformat(event["at"]).timestamp()) for event in events]
    for index, (stage, at) in enumerate(stamps):
        if stage == "building":
            later = [t for s, t in stamps[index + 1:] if s != "building"]
            return (later[0] if later else at) - at
    return 0.0


def floor(runtime: SwarmRuntime, image: str, port: int) -> float:
    """``docker service create`` of the image (API), its task running, routed, first 200."""
    client = runtime.client
    started = time.monotonic()
    svc = client.services.create(
        image, command=["/bin/sh", "-c", "exec python3 app.py"], name=f"{SERVICE}-floor",
        env=["PORT=5000", "HOST=0.0.0.0", "GREETING=floor"], networks=[network_name(SERVICE, "production")],
        endpoint_spec=EndpointSpec(mode="dnsrr"),
    )
    try:
        def address() -> str | None:
            for task in client.api.tasks(filters={"service": svc.id}):
                if task["Status"]["State"] == "running":
                    return str(task["NetworksAttachments"][0]["Addresses"][0].split("/")[0])
            return None

        ip = poll(address, 120, "the floor service's task")
        gateway = runtime.routes.gateway_of(SERVICE, "production")
        route = runtime.route(SERVICE, "production")
        with runtime.routes._lock:  # hold off the route keeper while the floor borrows the gateway
            gateway.apply({"app": gateway_site(svc.name, (ip,))})
            poll(lambda: answers(port, "floor"), 60, "the floor's first 200 through the router")
            elapsed = time.monotonic() - started
            runtime.switch_back(route)
    finally:
        svc.remove()
    return elapsed


def report(r: dict[str, Any]) -> None:
    floor_s, build = r["floor_s"], r["image_build_s"]
    without_build = r["first_deploy_s"] - build
    print(f"floor (service create + routed + first 200)  {floor_s:6.2f} s")
    print(f"first deploy, upload → live                   {r['first_deploy_s']:6.2f} s "
          f"(image build {build:.2f} s; the rest {without_build:.2f} s = {without_build / floor_s:.2f}x floor)")
    print(f"config change, → live (nothing to build)      {r['config_deploy_s']:6.2f} s "
          f"= {r['config_deploy_s'] / floor_s:.2f}x floor (target ≤ 1.5x)")
    print(f"failed during 2 config changes + rollback     {r['changes_failed']} of {r['changes_requests']}")
    print(f"drain of node 2 (4 web tasks)                 {r['drain_s']:6.2f} s, "
          f"failed {r['drain_failed']} of {r['drain_requests']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="Also write the numbers as JSON here.")
    args = parser.parse_args()
    begun = time.monotonic()
    cluster = Cluster()
    data_dir = Path(tempfile.mkdtemp(prefix="pd-bench-swarm-"))
    results: dict[str, Any] = {}
    try:
        swarm = cluster.build()
        settings = Settings(
            data_dir=data_dir, port=free_port(), router_port=free_port(), runtime="swarm",
            docker_host=swarm.manager_host, registry=swarm.registry, stack_image=swarm.stack_image,
            health_timeout=120.0, watch_window=0.0,
        )
        core = Podium(settings)
        core.start()
        core.start_runtime()
        runtime = core.runtime
        assert isinstance(runtime, SwarmRuntime)
        token = settings.admin_token_path.read_text().strip()
        work = data_dir / "hello"
        shutil.copytree(HELLO, work)
        (work / "BENCH").write_text(str(time.time()))  # a slug never built before: its image is built now
        slug = slug_of(work)
        with TestClient(create_app(core), headers={"Authorization": f"Bearer {token}"}) as admin:
            create_service(admin, SERVICE)
            started = time.monotonic()
            first = deploy(admin, SERVICE, "production", slug)
            results["first_deploy_s"] = time.monotonic() - started
            assert first.release["status"] == "live", first.release
            results["image_build_s"] = build_seconds(first.events)
            image = runtime.client.services.list(filters={"name": f"{SERVICE}_production_v1_web"})[0].attrs[
                "Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
            results["floor_s"] = floor(runtime, image, settings.router_port)
            started = time.monotonic()
            changed = await_change(
                admin.patch(f"{env_path(SERVICE, 'production')}/config", json={"set": {"GREETING": "a"}}),
                admin, SERVICE, "production",
            )
            results["config_deploy_s"] = time.monotonic() - started
            assert changed.release["status"] == "live", changed.release

            with looping_clients(settings.router_port, HOST) as load:
                for value in ("b", "c"):
                    await_change(admin.patch(f"{env_path(SERVICE, 'production')}/config",
                                             json={"set": {"GREETING": value}}), admin, SERVICE, "production")
                await_change(admin.post(f"{env_path(SERVICE, 'production')}/rollback", json={"to": "v1"}),
                             admin, SERVICE, "production")
            results["changes_requests"] = sum(load.statuses.values())
            results["changes_failed"] = load.failed

            await_change(admin.post(f"{env_path(SERVICE, 'production')}/scale", json={"web": 4}),
                         admin, SERVICE, "production")
            worker = next(n for n in list_nodes(runtime.client) if n.address == swarm.worker_addr)
            with looping_clients(settings.router_port, HOST) as drain_load:
                started = time.monotonic()
                set_availability(runtime.client, worker.id, Availability.DRAIN)

                def moved() -> bool:
                    ps = admin.get(f"{env_path(SERVICE, 'production')}/ps").json()
                    return len(ps) == 4 and all(p["state"] == "RUNNING" and p["node"] != worker.name for p in ps)

                poll(moved, 120, "the tasks to leave the drained node")
                results["drain_s"] = time.monotonic() - started
            set_availability(runtime.client, worker.id, Availability.ACTIVE)
            results["drain_requests"] = sum(drain_load.statuses.values())
            results["drain_failed"] = drain_load.failed
            runtime.teardown(SERVICE)
        core.close()
    finally:
        cluster.remove()
        shutil.rmtree(data_dir, ignore_errors=True)
    results["bench_s"] = time.monotonic() - begun
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if results["bench_s"] < TIME_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
