"""Helpers of the web tests: reading a form's CSRF token, signing in, deploying through the API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from podium.artifacts.pack import pack_directory

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in the first form of a page."""
    match = CSRF_RE.search(html)
    assert match is not None, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: httpx.Client, token: str, next: str = "/") -> httpx.Response:
    """Sign in as a browser would: open the form (its token and nonce cookie), then post it."""
    form = client.get("/login")
    data = {"token": token, "next": next, "csrf": csrf_of(form.text)}
    return client.post("/login", data=data, follow_redirects=False)


def pack(src: Path, out: Path) -> bytes:
    """A directory packed into a slug, as bytes to upload."""
    return pack_directory(src, out).read_bytes()


def failing_slug(tmp_path: Path) -> bytes:
    """hello with a release command that fails, saying why on stderr."""
    src = tmp_path / "failing"
    src.mkdir()
    release = "echo migrating; echo 'no database at db:5432' >&2; exit 3"
    (src / "Procfile").write_text(f"web: python3 app.py\nrelease: {release}\n")
    return pack(src, tmp_path / "failing.tgz")


def deploy(client: httpx.Client, service: str, env: str, slug: bytes) -> dict[str, Any]:
    """Upload a slug and follow its rollout to the end; the release as the last event tells it."""
    response = client.post(f"/api/v1/services/{service}/environments/{env}/deploys", content=slug)
    assert response.status_code == 202, response.text
    return follow(client, service, env, response.json()["version"])


def follow(client: httpx.Client, service: str, env: str, version: str) -> dict[str, Any]:
    """Wait for a release to be live or failed: the events stream ends when it is."""
    events = client.get(f"/api/v1/services/{service}/environments/{env}/releases/{version}/events")
    assert events.status_code == 200, events.text
    final: dict[str, Any] = json.loads(events.text.splitlines()[-1])
    assert final["final"] is True
    return final
