"""The add-ons' HTTP API and CLI: status codes, one-line errors, and what is printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import LiveServer
from typer.testing import CliRunner

from podium.cli.main import app
from podium.cli.output import exit_code
from podium.errors import PodiumError

pytestmark = pytest.mark.postgres

CART = "/api/v1/services/cart/environments/staging/addon"


@pytest.fixture
def shop(admin: TestClient, team_client: Callable[[str], TestClient]) -> TestClient:
    """A client of team ``shop``, owner of services ``cart`` and ``search``."""
    client = team_client("shop")
    for name in ("cart", "search"):
        admin.post("/api/v1/services", json={"name": name, "owner": "shop"}).raise_for_status()
    return client


def test_the_api_answers_each_verb_and_each_mistake(
    shop: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    made = shop.post(CART, json={"kind": "postgres"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["release"] is None
    assert body["addon"]["plan"] == "small"
    assert body["addon"]["url"] is None
    assert shop.post(CART, json={"plan": "small"}).status_code == 409
    wrong = shop.post("/api/v1/services/search/environments/staging/addon", json={"plan": "tiny"})
    assert (wrong.status_code, wrong.json()["detail"]) == (422, "unknown plan 'tiny': use one of small, medium")

    ads = team_client("ads")
    assert ads.get(CART).json()["database"] == body["addon"]["database"]  # who has what is no secret
    assert ads.get(CART, params={"show_url": True}).status_code == 403  # the password is
    url = shop.get(CART, params={"show_url": True}).json()["url"]
    assert url == shop.get("/api/v1/services/cart/environments/staging/config").json()["DATABASE_URL"]

    backup = shop.post(f"{CART}/backups")
    assert backup.status_code == 201, backup.text
    assert shop.get(f"{CART}/backups").json() == [backup.json()]
    restored = shop.post(f"{CART}/restore", json={"backup": backup.json()["id"]})
    assert restored.status_code == 200, restored.text
    assert restored.json()["safety_backup"]["kind"] == "safety"

    assert shop.delete(CART).status_code == 422  # no confirmation
    gone = shop.delete(CART, params={"confirm": "cart"})
    assert gone.status_code == 200, gone.text
    assert gone.json()["final_backup"]["kind"] == "final"
    assert shop.post(f"{CART}/backups").status_code == 409
    assert shop.get(CART).status_code == 409
    assert [a["state"] for a in shop.get("/api/v1/services/cart/addons", params={"all": True}).json()] == ["destroyed"]
    assert shop.get("/api/v1/services/cart/addons").json() == []

    shop.post("/api/v1/services/search/environments/staging/addon", json={}).raise_for_status()
    other = shop.post("/api/v1/services/search/environments/staging/addon/restore",
                      json={"backup": backup.json()["id"]})
    assert other.status_code == 422
    assert "is of service 'cart'" in other.json()["detail"]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def run(server: LiveServer, *args: str) -> Outcome:
    """``podium ARGS`` in-process; a Podium error ends it as ``output.run_cli`` ends the real one."""
    env = {"PODIUM_URL": server.url, "PODIUM_TOKEN": server.admin_token, "XDG_CONFIG_HOME": "/nonexistent"}
    result = CliRunner().invoke(app, list(args), env=env)
    if isinstance(result.exception, PodiumError):
        return Outcome(exit_code(result.exception), result.stdout, f"error: {result.exception.detail}\n")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def ok(server: LiveServer, *args: str) -> Any:
    result = run(server, *args)
    assert result.code == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_the_cli_prints_what_a_script_needs_and_one_line_per_mistake(live_server: LiveServer) -> None:
    ok(live_server, "teams", "create", "shop")
    ok(live_server, "services", "create", "cart", "--owner", "shop")
    where = ("--service", "cart", "--env", "staging")

    refused = run(live_server, "addons", "create", "postgres", *where, "--plan", "huge")
    assert (refused.code, refused.stderr) == (2, "error: unknown plan 'huge': use one of small, medium\n")
    made = ok(live_server, "addons", "create", "postgres", *where, "--json")
    assert made["addon"]["state"] == "active"
    again = run(live_server, "addons", "create", "postgres", *where)
    assert again.code == 6
    assert again.stderr.startswith("error: cart/staging has a database add-on already")

    shown = ok(live_server, "addons", "info", *where)
    assert made["addon"]["database"] in shown
    assert "hidden" in shown
    url = ok(live_server, "addons", "info", *where, "--show-url", "--json")["url"]
    assert url.split("@")[0] not in shown  # the password is printed only when asked for
    assert url in ok(live_server, "addons", "info", *where, "--show-url")

    backup_id = ok(live_server, "addons", "backup", *where).strip()
    assert backup_id.isdigit()
    listed = ok(live_server, "addons", "backups", "list", *where, "--json")
    assert [str(b["id"]) for b in listed] == [backup_id]
    assert backup_id in ok(live_server, "addons", "backups", "list", *where)
    restored = ok(live_server, "addons", "restore", *where, "--backup", backup_id)
    assert restored.startswith(f"restored backup {backup_id} into cart/staging")
    assert "cart" in ok(live_server, "addons", "list", "--service", "cart")

    unconfirmed = run(live_server, "addons", "destroy", *where)
    assert unconfirmed.code == 2
    assert "--confirm cart" in unconfirmed.stderr
    gone = ok(live_server, "addons", "destroy", *where, "--confirm", "cart", "--json")
    assert gone["addon"]["state"] == "destroyed"
    late = run(live_server, "addons", "backup", *where)
    assert late.code == 6
    assert late.stderr.count("\n") == 1
    assert "was destroyed" in late.stderr
