"""A node switches a live service between releases without dropping a request."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter

from tests.keepalive import KeepAliveClient

from podium.runtime.node import LocalNode

from .conftest import StartApp

HOST = "svc.staging.localhost"
SWITCHES = 6
CLIENTS = 4
MAX_REQUESTS = 50_000  # per client: the load loop's hard caps
MAX_SECONDS = 40.0


def test_local_node_hands_out_fresh_ports(node: LocalNode) -> None:
    node.ensure_running()  # idempotent
    ports = {node.allocate_port() for _ in range(50)}
    assert len(ports) == 50
    assert node.router.port not in ports


def test_switching_releases_under_load_drops_no_request(node: LocalNode, start_app: StartApp) -> None:
    # Keep-alive clients, as browsers are: a switch closes the idle connections of the
    # router's old workers, and a request sent on one at that instant gets no answer; the
    # client sends it once more (RFC 9112 §9.3.1). Nothing else may fail.
    sup, router = node.supervisor, node.router
    current = start_app(sup, "svc-v0", "A", node.allocate_port())
    router.set_route("svc.staging", [HOST], [current.port])

    answers: Counter[str] = Counter()
    failures: list[str] = []
    clients = [KeepAliveClient(router.port, HOST) for _ in range(CLIENTS)]
    lock = threading.Lock()
    done = threading.Event()

    def client_loop(client: KeepAliveClient) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        for _ in range(MAX_REQUESTS):
            if done.is_set() or time.monotonic() > deadline:
                break
            try:
                status, body = client.get("/")
                outcome = body.decode() if status == 200 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as err:
                client.close()
                outcome = f"{type(err).__name__}: {err}"
            with lock:
                answers[outcome] += 1
                if outcome not in ("A", "B"):
                    failures.append(outcome)
        client.close()

    threads = [threading.Thread(target=client_loop, args=(client,)) for client in clients]
    for thread in threads:
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
        for thread in threads:
            thread.join()

    total = sum(answers.values())
    reused = sum(client.reused for client in clients)
    retried = sum(client.retried for client in clients)
    print(f"zero-downtime: {total} requests over {SWITCHES} switches, {len(failures)} failed, "
          f"{reused} on a kept-alive connection, {retried} sent again: {dict(answers)}")
    assert failures == []
    assert answers["A"] > 0
    assert answers["B"] > 0
    assert reused > total // 2  # the router keeps connections open
    # a switch closes each client's connection at most once
    assert retried <= CLIENTS * SWITCHES
    assert sup.groups() == [current.group]
