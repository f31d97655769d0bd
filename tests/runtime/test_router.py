"""nginx routes hostnames to ports, switches gracefully and never takes a bad config."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.keepalive import KeepAliveClient

from podium.errors import Conflict, Invalid
from podium.health.models import CheckKind
from podium.health.probe import Outcome, ProbeTarget, probe_http
from podium.runtime import RuntimeFailure
from podium.runtime.router import Router

from .conftest import get

HOST = "svc.staging.localhost"


def test_routes_a_host_to_the_ports_it_is_switched_to(router: Router, thread_app: Callable[[str], int]) -> None:
    a, b = thread_app("A"), thread_app("B")
    router.set_route("svc.staging", [HOST], [a])
    assert get(router.port, HOST).text == "A"

    router.set_route("svc.staging", [HOST], [b])
    assert get(router.port, HOST).text == "B"

    router.set_route("svc.staging", [HOST], [a, b])
    assert {get(router.port, HOST).text for _ in range(8)} == {"A", "B"}
    assert router.routes() == {"svc.staging": [a, b]}


def test_unknown_host_gets_404(router: Router) -> None:
    response = get(router.port, "nobody.staging.localhost")
    assert response.status_code == 404
    assert response.text == "no app is routed at this host\n"


def test_access_log_is_json_lines(router: Router, thread_app: Callable[[str], int]) -> None:
    a = thread_app("A")
    router.set_route("svc.staging", [HOST], [a])
    get(router.port, HOST, "/hello")
    line = _logged(router, "/hello")
    assert line["host"] == HOST
    assert line["route"] == "svc.staging"
    assert line["uri"] == "/hello"
    assert line["status"] == 200
    assert line["upstream_addr"] == f"127.0.0.1:{a}"
    assert isinstance(line["request_time"], float)
    assert line["time"]


def _logged(router: Router, uri: str, timeout: float = 5.0) -> dict[str, object]:
    """The access log's line for ``uri``. nginx writes it once the response has been sent,
    so the client may read the answer first: the line is awaited (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(text) for text in (router.logs_dir / "access.log").read_text().splitlines()]
        found = [line for line in lines if line["uri"] == uri]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, lines
            return found[0]
        time.sleep(0.005)


def test_a_bad_hostname_is_refused_and_the_old_route_serves(router: Router, thread_app: Callable[[str], int]) -> None:
    a, b = thread_app("A"), thread_app("B")
    router.set_route("svc.staging", [HOST], [a])
    with pytest.raises(Invalid):
        router.set_route("svc.staging", ["bad host;}"], [b])
    with pytest.raises(Invalid):
        router.set_route("svc.staging", [HOST], [])
    assert get(router.port, HOST).text == "A"
    assert router.routes() == {"svc.staging": [a]}


def test_a_config_nginx_refuses_never_replaces_the_good_one(router: Router, thread_app: Callable[[str], int]) -> None:
    a, b = thread_app("A"), thread_app("B")
    router.set_route("svc.staging", [HOST], [a])
    good = (router.sites_dir / "svc.staging.conf").read_text()
    broken = router.sites_dir / "zz-broken.conf"
    broken.write_text("this is not nginx;\n")

    with pytest.raises(RuntimeFailure, match="this"):
        router.set_route("svc.staging", [HOST], [b])
    assert (router.sites_dir / "svc.staging.conf").read_text() == good
    with pytest.raises(RuntimeFailure):
        router.set_route("other.staging", ["other.staging.localhost"], [b])
    assert not (router.sites_dir / "other.staging.conf").exists()
    assert get(router.port, HOST).text == "A"

    broken.unlink()
    router.set_route("svc.staging", [HOST], [b])
    assert get(router.port, HOST).text == "B"


def test_a_hostname_belongs_to_one_route(router: Router, thread_app: Callable[[str], int]) -> None:
    a = thread_app("A")
    router.set_route("svc.staging", [HOST], [a])
    with pytest.raises(Conflict):
        router.set_route("other.staging", ["x.localhost", HOST], [a])


def test_removed_routes_get_404_and_routes_survive_a_restart(router: Router, thread_app: Callable[[str], int]) -> None:
    a = thread_app("A")
    router.set_route("svc.staging", [HOST], [a])
    router.set_route("gone.staging", ["gone.staging.localhost"], [a])
    router.remove_route("gone.staging")
    router.remove_route("gone.staging")  # absent: no error
    assert get(router.port, "gone.staging.localhost").status_code == 404

    router.stop()
    router.stop()  # stopped: no error
    router.ensure_running()
    router.ensure_running()  # running: no error
    assert get(router.port, HOST).text == "A"
    assert router.routes() == {"svc.staging": [a]}


def _workers(router: Router) -> set[int]:
    """The nginx master's live children (an exited worker stays a zombie until the master reaps it)."""
    master = int(router.pid_path.read_text())
    listed = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in listed if _state(int(pid)) not in ("Z", "X", None)}


def _all_workers(router: Router) -> set[int]:
    """The live workers once the master has started all it will (``WORKERS``: one per
    CPU); a switch returns as soon as the first new worker runs, before the others are forked."""
    deadline = time.monotonic() + 5.0
    while len(found := _workers(router)) < (os.cpu_count() or 1) and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_a_switch_answers_from_new_workers_and_never_adds_any(router: Router, thread_app: Callable[[str], int]) -> None:
    # Each switch tells the old workers to stop itself, before the nginx master would: the
    # master must still count them as stopping and start no replacement for them.
    a, b = thread_app("A"), thread_app("B")
    router.set_route("svc.staging", [HOST], [a])
    workers = _all_workers(router)
    for n in range(6):
        switch = router.switch_route("svc.staging", [HOST], [b if n % 2 == 0 else a])
        # from here on new connections get the new route, even before the old workers exit
        assert get(router.port, HOST).text == ("B" if n % 2 == 0 else "A")
        switch.wait_drained()
        assert not {pid for pid, _ in switch.old_workers} & _workers(router)
    # the master reaps its old workers after its own 100 ms pause; a replacement would appear then
    time.sleep(0.5)
    assert len(_workers(router)) == len(workers)


@pytest.fixture
def header_app() -> Iterator[tuple[int, list[tuple[int, str, str]]]]:
    """An HTTP/1.1 app (it keeps connections open) that records, for each request, the
    port the router connected from and the ``Connection`` and ``Upgrade`` headers it got."""
    seen: list[tuple[int, str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.append((self.client_address[1], self.headers.get("Connection", ""), self.headers.get("Upgrade", "")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield int(server.server_address[1]), seen
    server.shutdown()
    server.server_close()


def test_clients_keep_their_connection_apps_get_one_per_request_and_upgrades_pass(
    router: Router, header_app: tuple[int, list[tuple[int, str, str]]]
) -> None:
    port, seen = header_app
    router.set_route("svc.staging", [HOST], [port])
    client = KeepAliveClient(router.port, HOST)
    for _ in range(20):
        assert client.get("/") == (200, b"ok")
    client.close()
    assert client.reused == 19  # one connection to the router
    # a new connection to the app for each request, even though the app would keep it open
    assert len({source for source, _, _ in seen}) == 20
    assert {(connection, upgrade) for _, connection, upgrade in seen} == {("close", "")}

    seen.clear()
    response = httpx.get(
        f"http://127.0.0.1:{router.port}/socket",
        headers={"Host": HOST, "Connection": "Upgrade", "Upgrade": "websocket"},
        trust_env=False,
    )
    assert response.status_code == 200
    assert [(connection, upgrade) for _, connection, upgrade in seen] == [("upgrade", "websocket")]


def test_health_probes_through_the_router_never_fail_across_switches(
    router: Router, thread_app: Callable[[str], int]
) -> None:
    # The checker's probes share one client; each asks for its own connection, so the idle
    # connections a switch closes are never under a probe (a failure would count against the app).
    a, b = thread_app("A"), thread_app("B")
    router.set_route("svc.staging", [HOST], [a])
    target = ProbeTarget(
        check_id=1, service="svc", env="staging", name="web", kind=CheckKind.HTTP,
        url=f"http://127.0.0.1:{router.port}/", host_header=HOST,
    )
    outcomes: list[Outcome] = []
    done = threading.Event()

    async def probe_loop() -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            while not done.is_set() and len(outcomes) < 20_000:
                outcomes.append(await probe_http(client, target))

    prober = threading.Thread(target=asyncio.run, args=(probe_loop(),))
    prober.start()
    try:
        for n in range(20):
            router.set_route("svc.staging", [HOST], [b if n % 2 == 0 else a])
    finally:
        done.set()
        prober.join(timeout=30)
    assert len(outcomes) > 20
    assert [o.error for o in outcomes if not o.ok] == []


def test_a_switch_to_a_checked_route_runs_no_test_of_its_own(router: Router, thread_app: Callable[[str], int]) -> None:
    a, b, c = thread_app("A"), thread_app("B"), thread_app("C")
    router.set_route("svc.staging", [HOST], [a])

    tests = router.config_tests
    router.check_route("svc.staging", [HOST], [b])
    assert router.config_tests == tests + 1
    assert get(router.port, HOST).text == "A"  # a check changes nothing live
    router.set_route("svc.staging", [HOST], [b])
    assert router.config_tests == tests + 1
    assert get(router.port, HOST).text == "B"

    router.check_route("svc.staging", [HOST], [a])
    router.set_route("svc.staging", [HOST], [c])  # not what was checked: tested on the way
    assert router.config_tests == tests + 3
    assert get(router.port, HOST).text == "C"


def test_a_route_nginx_refuses_at_its_check_never_goes_live(router: Router, thread_app: Callable[[str], int]) -> None:
    a, b = thread_app("A"), thread_app("B")
    router.set_route("svc.staging", [HOST], [a])
    good = (router.sites_dir / "svc.staging.conf").read_text()
    broken = router.sites_dir / "zz-broken.conf"
    broken.write_text("this is not nginx;\n")

    with pytest.raises(RuntimeFailure, match='unknown directive "this"'):
        router.check_route("svc.staging", [HOST], [b])
    with pytest.raises(RuntimeFailure, match='unknown directive "this"'):
        router.set_route("svc.staging", [HOST], [b])
    assert (router.sites_dir / "svc.staging.conf").read_text() == good
    assert get(router.port, HOST).text == "A"
    assert not list(router.run_dir.glob("check-*"))  # no scratch copy is left behind


def test_a_change_after_a_check_is_tested_at_the_switch(router: Router, thread_app: Callable[[str], int]) -> None:
    a, b = thread_app("A"), thread_app("B")
    router.set_route("svc.staging", [HOST], [a])
    router.check_route("svc.staging", [HOST], [b])
    (router.sites_dir / "zz-broken.conf").write_text("this is not nginx;\n")

    with pytest.raises(RuntimeFailure, match='unknown directive "this"'):
        router.set_route("svc.staging", [HOST], [b])
    assert get(router.port, HOST).text == "A"
    assert router.routes() == {"svc.staging": [a]}


def test_a_switch_right_after_another_leaves_no_worker_of_the_one_between(
    router: Router, thread_app: Callable[[str], int]
) -> None:
    a, b = thread_app("A"), thread_app("B")
    router.set_route("svc.staging", [HOST], [a])
    for _ in range(8):  # checked routes: the second reload follows the first within milliseconds
        router.check_route("svc.staging", [HOST], [b])
        router.switch_route("svc.staging", [HOST], [b])
        router.set_route("svc.staging", [HOST], [a])
        assert {get(router.port, HOST).text for _ in range(6)} == {"A"}
