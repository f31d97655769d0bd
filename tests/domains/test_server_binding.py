"""``podium server --base-domain --bind --router-bind``, as an operator starts it: the API and
the router listen on the addresses given (127.0.0.2 here: loopback, but not 127.0.0.1) and
apps answer at ``<service>.<env>.<base domain>``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.deploy.support import create_service, deploy, poll, probe_app, slug_of

from podium.runtime.node import LocalNode
from podium.runtime.ports import free_port

PODIUM = Path(sys.executable).parent / "podium"
ADDRESS = "127.0.0.2"


@dataclass
class Started:
    api: str  # the API's URL
    router_port: int
    token: str


@pytest.fixture
def server() -> Iterator[Started]:
    """``podium server`` bound to 127.0.0.2 with base domain apps.test, in a process of its own."""
    data_dir = Path(tempfile.mkdtemp(prefix="pd-"))
    port, router_port = free_port(), free_port()
    command = [
        str(PODIUM), "server", "--data-dir", str(data_dir), "--port", str(port), "--router-port", str(router_port),
        "--bind", ADDRESS, "--router-bind", ADDRESS, "--router-tls-port", str(free_port()),
        "--base-domain", "Apps.Test",
    ]
    log = data_dir / "server.log"
    env = {**os.environ, "PODIUM_WATCH_WINDOW": "0", "PODIUM_HEALTH_TIMEOUT": "20", "PODIUM_ACME_DIRECTORY_URL": ""}
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    api = f"http://{ADDRESS}:{port}"

    def answers() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{api}/healthz", timeout=2).status_code == 200
        return False

    try:
        poll(answers, 90, "the server to answer")  # uvicorn gives no readiness signal
        yield Started(api, router_port, (data_dir / "admin-token").read_text().strip())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        with contextlib.suppress(Exception):
            LocalNode(data_dir / "node", router_port, router_host=ADDRESS).shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_api_and_the_router_listen_where_told_and_apps_answer_under_the_base_domain(
    server: Started, tmp_path: Path
) -> None:
    port = int(server.api.rsplit(":", 1)[1])
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)

    with httpx.Client(base_url=server.api, headers={"Authorization": f"Bearer {server.token}"}, timeout=60) as api:
        create_service(api, "probe")
        rollout = deploy(api, "probe", "production", slug_of(probe_app(tmp_path / "app", marker="live")))
        assert rollout.release["status"] == "live", rollout.events

    router = f"http://{ADDRESS}:{server.router_port}/"
    for host in ("probe.production.apps.test", "probe.apps.test"):
        assert httpx.get(router, headers={"Host": host}, timeout=10).json()["marker"] == "live"
    assert httpx.get(router, headers={"Host": "probe.production.localhost"}, timeout=10).status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.router_port}/", headers={"Host": "probe.apps.test"}, timeout=2)


def test_a_base_domain_that_is_not_a_domain_is_refused_in_one_line() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pd-"))
    try:
        ran = subprocess.run(
            [str(PODIUM), "server", "--data-dir", str(data_dir), "--base-domain", "apps test"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    assert ran.returncode != 0
    assert ran.stderr.strip().splitlines()[-1].endswith(
        "base_domain 'apps test' is not a domain name (letters, digits, '-' and dots)"
    ), ran.stderr
