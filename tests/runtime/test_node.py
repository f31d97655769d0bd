"""A node switches a live service between releases without dropping a request."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

from podium.runtime.node import LocalNode

from .conftest import StartApp

HOST = "svc.staging.localhost"
SWITCHES = 4
MAX_REQUESTS = 50_000  # per client: the load loop's hard caps
MAX_SECONDS = 40.0


def test_local_node_hands_out_fresh_ports(node: LocalNode) -> None:
    node.ensure_running()  # idempotent
    ports = {node.allocate_port() for _ in range(50)}
    assert len(ports) == 50
    assert node.router.port not in ports


def test_switching_releases_under_load_drops_no_request(node: LocalNode, start_app: StartApp) -> None:
    sup, router = node.supervisor, node.router
    current = start_app(sup, "svc-v0", "A", node.allocate_port())
    router.set_route("svc.staging", [HOST], [current.port])

    answers: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def client_loop() -> None:
        deadline = time.monotonic() + MAX_SECONDS
        with httpx.Client(base_url=f"http://127.0.0.1:{router.port}", headers={"Host": HOST}, trust_env=False) as c:
            for _ in range(MAX_REQUESTS):
                if done.is_set() or time.monotonic() > deadline:
                    return
                try:
                    response = c.get("/")
                    outcome = response.text if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as err:
                    outcome = f"{type(err).__name__}: {err}"
                with lock:
                    answers[outcome] += 1
                    if outcome not in ("A", "B"):
                        failures.append(outcome)

    clients = [threading.Thread(target=client_loop) for _ in range(2)]
    for thread in clients:
        thread.start()
    try:
        for switch in range(1, SWITCHES + 1):
            name = "B" if switch % 2 else "A"
            new = start_app(sup, f"svc-v{switch}", name, node.allocate_port())
            router.set_route("svc.staging", [HOST], [new.port])
            # set_route returned: no nginx worker routes to the old port any more.
            sup.remove_group(current.group)
            current = new
    finally:
        done.set()
        for thread in clients:
            thread.join()

    total = sum(answers.values())
    print(f"zero-downtime: {total} requests over {SWITCHES} switches, {len(failures)} failed: {dict(answers)}")
    assert failures == []
    assert answers["A"] > 0
    assert answers["B"] > 0
    assert sup.groups() == [current.group]
