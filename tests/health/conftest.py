"""Health fixtures: a local HTTP endpoint that can be told to fail, and store factories.

The checker's HTTP probes go to the router port; here a plain ``http.server`` listens on
that port in place of nginx, so the checker is tested against a real socket without a
deployed app. Releases are made with the store factories in ``support``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.health.support import Endpoint, make_service

from podium.config import Settings
from podium.core import Podium
from podium.runtime.ports import free_port


@pytest.fixture
def endpoint(settings: Settings) -> Iterator[Endpoint]:
    """An HTTP server on the router port answering ``endpoint.status`` with ``endpoint.body``."""
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.hosts.append(self.headers.get("Host", ""))
            if state.delay:
                time.sleep(state.delay)  # a slow app
            body = state.body.encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", settings.router_port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def hello(core: Podium, admin: TestClient) -> str:
    """A service ``hello`` owned by team ``web``."""
    return make_service(admin, "hello", "web")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(data_dir: Path, settings_overrides: dict[str, Any]) -> Settings:
    """Fast checks: new web checks probe every 0.1 s, down after 3 failures, up after 2."""
    values: dict[str, Any] = {
        "data_dir": data_dir, "port": free_port(), "router_port": free_port(), "health_timeout": 15.0,
        "watch_window": 0.0, "check_interval": 0.1, "check_timeout": 1.0, "check_sync_interval": 0.2,
    }
    return Settings(**{**values, **settings_overrides})
