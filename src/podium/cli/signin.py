"""``podium login`` through the company's provider: the device authorization grant.

As ``gh auth login`` does: the CLI shows a short code and a link, the person approves it
in any browser, and the CLI, polling Podium meanwhile, gets a login token it saves.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import typer

from podium.cli.client import ApiClient
from podium.cli.output import notice
from podium.errors import PodiumError


def offers_sso(url: str) -> bool:
    """Whether the server at ``url`` has single sign-on set up."""
    with ApiClient(url) as api:
        try:
            config = api.get("/api/auth/config")
        except PodiumError:  # an older server, or none: tokens only
            return False
    return bool(config.get("oidc"))


def device_login(url: str, name: str) -> str:
    """Run the device flow against the server at ``url``; the login token once approved."""
    with ApiClient(url) as api:
        device: dict[str, Any] = api.post("/api/auth/device")
    link = device["verification_uri_complete"] or device["verification_uri"]
    notice(f"open {link}")
    notice(f"and confirm the code {device['user_code']} (it ends in {device['expires_in'] // 60} minutes)")
    deadline = time.monotonic() + device["expires_in"]
    interval = max(1, int(device["interval"]))
    with httpx.Client(base_url=url.rstrip("/"), timeout=30) as http:
        while time.monotonic() < deadline:
            # The provider tells how often it may be asked; waiting is the protocol here.
            time.sleep(interval)
            try:
                body = {"device_code": device["device_code"], "name": name}
                response = http.post("/api/auth/device/token", json=body)
            except httpx.HTTPError as exc:
                raise PodiumError(f"talking to Podium at {url} failed: {exc}") from None
            if response.status_code == 428:
                continue
            answer = response.json()
            if response.is_error:
                raise PodiumError(f"sign-in failed: {answer.get('detail', response.text)}")
            typer.echo(f"approved: signed in as {answer['user']}", err=True)
            return str(answer["token"])
    raise PodiumError("the code expired before it was approved: run podium login again")
