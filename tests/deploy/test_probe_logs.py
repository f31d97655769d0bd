"""Health probes say who they are, and the log views can leave their lines out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from tests.deploy.support import create_service, deploy, env_path, poll, slug_of

from podium.config import Settings
from podium.health.probe import PROBE_USER_AGENT, ProbeTarget, probe_http

# An app that logs each request with its user agent, as common access logs do.
APP = '''
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
        print(f'"GET {self.path}" 200 "{self.headers.get("User-Agent")}"', flush=True)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
'''


def test_probe_lines_are_marked_and_hidden_on_request(admin: TestClient, settings: Settings, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(APP)
    (app / "Procfile").write_text("web: python3 app.py\n")
    create_service(admin, "echo")
    assert deploy(admin, "echo", "staging", slug_of(app)).release["status"] == "live"

    target = ProbeTarget(
        check_id=0, service="echo", env="staging", name="web", kind="http",
        url=f"http://127.0.0.1:{settings.router_port}/health", host_header="echo.staging.localhost", path="/health",
    )

    async def one_probe() -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await probe_http(client, target)).ok

    asyncio.run(one_probe())
    httpx.get(f"http://127.0.0.1:{settings.router_port}/cart", headers={"Host": "echo.staging.localhost",
                                                                      "User-Agent": "curl/8"}).raise_for_status()

    def logs(**params: str) -> str:
        return admin.get(f"{env_path('echo', 'staging')}/logs", params=params).text

    # The app prints its line after answering, and the stamper writes it to the log after that.
    def with_cart() -> str | None:
        text = logs()
        return text if '"GET /cart"' in text else None

    everything = poll(with_cart, 10, "the app's line for /cart")
    assert f'"GET /" 200 "{PROBE_USER_AGENT}"' in everything  # the deploy's health gate
    assert f'"GET /health" 200 "{PROBE_USER_AGENT}"' in everything  # the checker
    assert '"GET /cart" 200 "curl/8"' in everything
    hidden = logs(probes="false")
    assert "Podium-Health/" not in hidden
    assert '"GET /cart" 200 "curl/8"' in hidden
