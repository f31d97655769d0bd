"""A deployed app gets PODIUM_URL, PODIUM_TOKEN and the SDK; its token reads and writes its own environment only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer
from typer.testing import CliRunner

from podium.cli.main import app
from podium.experiments.evaluate import Evaluator

APP = Path(__file__).resolve().parents[2] / "examples" / "experiment-app"
ENV = "/api/v1/services/shop/environments/production"


def cli(server: LiveServer, *args: str, token: str | None = None) -> Any:
    env = {"PODIUM_URL": server.url, "PODIUM_TOKEN": token or server.admin_token, "XDG_CONFIG_HOME": "/nonexistent"}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.e2e
def test_a_deployed_app_uses_the_sdk_with_its_own_scoped_token(live_server: LiveServer) -> None:
    cli(live_server, "teams", "create", "shop")
    token = cli(live_server, "tokens", "create", "--team", "shop").strip()
    cli(live_server, "services", "create", "shop", "--owner", "shop", token=token)
    cli(live_server, "services", "create", "blog", "--owner", "shop", token=token)
    with live_server.client(token) as team:
        team.post(
            ENV + "/experiments",
            json={"key": "big-button", "variants": ["control", "treatment"], "coverage": 1.0, "metric": "signup",
                  "override_cap": True, "reason": "every user of this test"},
        ).raise_for_status()  # fmt: skip
        team.post(ENV + "/experiments/big-button/start", json={"override_cap": True, "reason": "test"})
        document = team.get(ENV + "/definitions").json()
    release = cli(live_server, "deploy", str(APP), "--service", "shop", "--env", "production", "--json", token=token)
    assert release["status"] == "live"

    [process] = live_server.core.deploys.processes("shop", "production")
    seen = process_environment(process["pid"])
    assert seen["PODIUM_URL"] == live_server.url
    app_token = seen["PODIUM_TOKEN"]
    assert app_token.startswith("pda_")
    assert seen["PYTHONPATH"].startswith(str(live_server.core.settings.data_dir.absolute() / "sdk"))

    # The app answers with the variant the SDK evaluated in its own process.
    router = f"http://127.0.0.1:{live_server.core.settings.router_port}"
    reference = Evaluator(document)
    with httpx.Client(base_url=router, headers={"Host": "shop.production.localhost"}, timeout=10) as users:
        for i in range(20):
            answer = users.get("/", params={"user": f"u{i}"}).json()
            assert answer["variant"] == reference.variant("big-button", f"u{i}")

    # The app's token: its own environment's definitions and events, nothing else.
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {app_token}"}) as as_app:
        assert as_app.get(ENV + "/definitions").status_code == 200
        assert as_app.get(ENV + "/evaluate", params={"user_id": "u1"}).status_code == 200
        accepted = as_app.post("/api/v1/events", json={"service": "shop", "env": "production", "events": [
            {"id": "from-the-app-1", "type": "metric", "user_id": "u1", "name": "signup"}]})  # fmt: skip
        assert accepted.json()["accepted"] == 1
        assert as_app.get("/api/v1/services/shop/environments/staging/definitions").status_code == 403
        assert as_app.get("/api/v1/services/blog/environments/production/definitions").status_code == 403
        refused = as_app.post("/api/v1/events", json={"service": "blog", "env": "production", "events": []})
        assert refused.status_code == 403
        for path in ("/api/v1/services", "/api/v1/services/shop", ENV + "/experiments", "/api/v1/teams/shop"):
            assert as_app.get(path).status_code == 401, path
        assert as_app.post(ENV + "/experiments/big-button/stop", json={"reason": "x"}).status_code == 401
    with live_server.client(token) as team:
        reserved = team.patch(ENV + "/config", json={"set": {"PODIUM_TOKEN": "mine"}})
        assert reserved.status_code == 422
        assert "PODIUM_TOKEN is set by Podium" in reserved.json()["detail"]


@pytest.mark.e2e
def test_a_rotated_token_reaches_the_app_in_the_release_the_rotation_rolls_out(live_server: LiveServer) -> None:
    cli(live_server, "teams", "create", "shop")
    token = cli(live_server, "tokens", "create", "--team", "shop").strip()
    cli(live_server, "services", "create", "shop", "--owner", "shop", token=token)
    cli(live_server, "deploy", str(APP), "--service", "shop", "--env", "production", "--json", token=token)
    [before] = live_server.core.deploys.processes("shop", "production")
    old = process_environment(before["pid"])["PODIUM_TOKEN"]

    shown = cli(live_server, "app-token", "show", "--service", "shop", "--env", "production", "--json", token=token)
    assert old.split("_")[1] == shown["id"]
    assert old not in json.dumps(shown)  # the secret is never shown

    rotated = cli(live_server, "app-token", "rotate", "--service", "shop", "--env", "production", "--json",
                  token=token)  # fmt: skip
    assert rotated["release"]["status"] == "live"
    assert rotated["release"]["description"] == "rotate PODIUM_TOKEN"
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {old}"}) as leaked:
        assert leaked.get(ENV + "/definitions").status_code == 401  # revoked

    [after] = live_server.core.deploys.processes("shop", "production")
    new = process_environment(after["pid"])["PODIUM_TOKEN"]
    assert new != old
    assert new.split("_")[1] == rotated["token"]["id"]
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {new}"}) as app_client:
        assert app_client.get(ENV + "/definitions").status_code == 200
