"""Fixtures shared by the whole suite: settings, the core, API clients, a live server."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from tests.support.pebble import Pebble, pebble_in_tmp
from tests.support.postgres import postgres_cluster

from podium.api.app import create_app
from podium.config import Settings
from podium.core import Podium
from podium.runtime.ports import free_port


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A superuser URL of a throwaway PostgreSQL cluster, shared by the session.

    It lives outside pytest's temporary directories: those are private to root (mode
    0700), and the cluster runs as ``postgres`` when the tests run as root.
    """
    base = Path(tempfile.mkdtemp(prefix="podium-pg-"))
    base.chmod(0o755)
    try:
        with postgres_cluster(base / "cluster") as url:
            yield url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pebble() -> Iterator[Pebble]:
    """Let's Encrypt's test ACME server (with its mock DNS: every name is 127.0.0.1), shared
    by the session. It validates HTTP-01 on ``pebble.http_port`` only: a test runs the
    router it issues through on that port (one at a time) and trusts ``pebble.ca_bundle``."""
    with pebble_in_tmp() as server:
        yield server


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A short data dir: supervisord's unix socket path must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Parametrize this to change settings for one test: ``{"health_timeout": 3.0}``."""
    return {}


@pytest.fixture
def settings(data_dir: Path, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir, "port": free_port(), "router_port": free_port(),
        "health_timeout": 15.0, "watch_window": 0.0,
    }
    return Settings(**{**values, **settings_overrides})


@pytest.fixture
def core(settings: Settings) -> Iterator[Podium]:
    """The core; if a test started the node (supervisord, nginx), it is shut down after."""
    podium = Podium(settings)
    podium.start()
    yield podium
    podium.close()
    if podium.deploys.runtime_started:
        podium.runtime.shutdown()


@pytest.fixture
def admin_token(core: Podium) -> str:
    return core.settings.admin_token_path.read_text().strip()


@pytest.fixture
def api(core: Podium) -> Iterator[TestClient]:
    """An in-process client with no token."""
    with TestClient(create_app(core)) as client:
        yield client


@pytest.fixture
def admin(core: Podium, admin_token: str) -> Iterator[TestClient]:
    """An in-process client acting as the platform team."""
    with TestClient(create_app(core), headers={"Authorization": f"Bearer {admin_token}"}) as client:
        yield client


@pytest.fixture
def team_client(core: Podium, admin: TestClient) -> Iterator[Callable[[str], TestClient]]:
    """Factory: ``team_client("checkout")`` creates the team and returns a client acting as it."""
    clients: list[TestClient] = []

    def make(name: str) -> TestClient:
        if admin.get(f"/api/v1/teams/{name}").status_code == 404:
            admin.post("/api/v1/teams", json={"name": name}).raise_for_status()
        token = admin.post(f"/api/v1/teams/{name}/tokens", json={}).json()["token"]
        client = TestClient(create_app(core), headers={"Authorization": f"Bearer {token}"})
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


class LiveServer:
    """A real Podium server on a loopback port, in a thread of the test process."""

    def __init__(self, core: Podium) -> None:
        self.core = core
        self.url = f"http://127.0.0.1:{core.settings.port}"
        config = uvicorn.Config(
            create_app(core), host="127.0.0.1", port=core.settings.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def admin_token(self) -> str:
        return self.core.settings.admin_token_path.read_text().strip()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        # uvicorn offers a flag, not an event, for "listening": poll it briefly.
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Podium server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def live_server(core: Podium) -> Iterator[LiveServer]:
    server = LiveServer(core)
    server.start()
    yield server
    server.stop()
