"""What the deploy tests share: fixture apps, slugs, following rollouts over the API, load."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from tests.keepalive import KeepAliveClient

from podium.artifacts.pack import pack_directory

APPS = Path(__file__).parent / "apps"
HELLO = Path(__file__).parents[2] / "examples" / "hello"
TEAM = "web"


class Client(Protocol):
    """What the tests need of a client: the in-process TestClient and httpx.Client both fit."""

    def get(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def post(self, url: str, **kwargs: Any) -> httpx.Response: ...
    def patch(self, url: str, **kwargs: Any) -> httpx.Response: ...


def probe_app(
    where: Path,
    *,
    release: bool = False,
    app_json: dict[str, Any] | None = None,
    **behaviour: Any,
) -> Path:
    """The probe app in ``where``, told how to behave; ``release`` adds a release command."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(APPS / "probe" / "app.py", where / "app.py")
    procfile = "web: python3 app.py\n"
    if release:
        shutil.copy(APPS / "probe" / "release.py", where / "release.py")
        procfile += "release: python3 release.py\n"
    (where / "Procfile").write_text(procfile)
    (where / "behaviour.json").write_text(json.dumps(behaviour))
    if app_json is not None:
        (where / "app.json").write_text(json.dumps(app_json))
    return where


def slug_of(src: Path) -> bytes:
    """The slug of a directory, as ``podium`` would upload it."""
    out = src.parent / f"{src.name}.tgz"
    pack_directory(src, out)
    return out.read_bytes()


def env_path(service: str, env: str) -> str:
    return f"/api/v1/services/{service}/environments/{env}"


def create_service(client: Client, name: str, owner: str = TEAM) -> None:
    if client.get(f"/api/v1/teams/{owner}").status_code == 404:
        client.post("/api/v1/teams", json={"name": owner}).raise_for_status()
    client.post("/api/v1/services", json={"name": name, "owner": owner}).raise_for_status()


def upload(client: Client, service: str, env: str, slug: bytes) -> httpx.Response:
    return client.post(
        f"{env_path(service, env)}/deploys", content=slug, headers={"Content-Type": "application/gzip"}
    )


@dataclass
class Rollout:
    """A rollout as its events stream told it: each event, then the release record."""

    events: list[dict[str, Any]] = field(default_factory=list)
    release: dict[str, Any] = field(default_factory=dict)

    @property
    def stages(self) -> list[str]:
        return list(dict.fromkeys(event["stage"] for event in self.events))

    def messages(self, stage: str) -> list[str]:
        return [event["message"] for event in self.events if event["stage"] == stage]


def follow(client: Client, service: str, env: str, version: str) -> Rollout:
    """Read ``.../events`` until it ends: the stream closes when the rollout is done."""
    response = client.get(f"{env_path(service, env)}/releases/{version}/events")
    assert response.status_code == 200, response.text
    rollout = Rollout()
    for line in response.text.splitlines():
        item = json.loads(line)
        if item.get("final"):
            rollout.release = item
        else:
            rollout.events.append(item)
    assert rollout.release, f"the events of {version} ended without the release record"
    return rollout


def deploy(client: Client, service: str, env: str, slug: bytes) -> Rollout:
    """Upload a slug and follow its rollout to the end."""
    response = upload(client, service, env, slug)
    assert response.status_code == 202, response.text
    return follow(client, service, env, response.json()["version"])


def await_change(response: httpx.Response, client: Client, service: str, env: str) -> Rollout:
    """Follow the rollout a 202 answer (config, rollback, promote, scale) started."""
    assert response.status_code == 202, response.text
    body = response.json()
    release = body.get("release", body) if "config" in body else body
    return follow(client, service, env, release["version"])


def through_router(port: int, host: str, path: str = "/") -> httpx.Response:
    """A request to an app through the node's nginx."""
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host}, timeout=10)


def poll(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; used only where no event exists."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


MAX_REQUESTS_PER_CLIENT = 20_000
MAX_SECONDS = 90.0


@dataclass
class Load:
    """Clients looping GET / through the router until told to stop, or their caps are reached."""

    port: int
    host: str
    clients: int = 2
    pause: float = 0.0  # between a client's requests, to leave the machine to the system under test
    markers: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    requests: int = 0
    retried: int = 0  # requests sent again on a new connection (see KeepAliveClient)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for index in range(self.clients):
            thread = threading.Thread(target=self._loop, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _loop(self) -> None:
        # A keep-alive client that sends a GET again when the router closed its idle
        # connection before any answer (RFC 9112 section 9.3.1): a switch does that.
        deadline = time.monotonic() + MAX_SECONDS
        client = KeepAliveClient(self.port, self.host)
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if self._stop.is_set() or time.monotonic() > deadline:
                break
            try:
                status, body = client.get("/")
                failure = None if status == 200 else f"HTTP {status}"
                marker = json.loads(body)["marker"] if failure is None else ""
            except (OSError, http.client.HTTPException) as exc:
                client.close()
                failure, marker = f"{type(exc).__name__}: {exc}", ""
            with self._lock:
                self.requests += 1
                self.retried += client.retried
                client.retried = 0
                if failure is None:
                    self.markers[marker] += 1
                else:
                    self.failures.append(failure)
            if self.pause:
                self._stop.wait(self.pause)
        client.close()
