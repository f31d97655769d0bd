"""Helpers of the deploy tests: fixture apps, slugs, and following rollouts over the API."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

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
