"""The whole availability loop, as a team would live it, through the CLI on a real node.

deploy → the app goes down and stays down → an incident opens by itself → the on-call
person's page arrives at a real local receiver → they acknowledge → the app comes back →
the incident resolves by itself → MTTR and availability count it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import LiveServer
from tests.health.support import wait_for
from tests.support.receiver import Receiver
from typer.testing import CliRunner

from podium.cli.main import app
from podium.runtime.naming import group_name

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
FAST = {
    "check_interval": 0.2, "check_timeout": 1.0, "check_sync_interval": 0.2,
    "paging_poll_interval": 0.05, "paging_retry_initial": 0.05,
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def cli(server: LiveServer, *args: str, token: str | None = None) -> Any:
    """Run ``podium ARGS`` in-process against the server; parse stdout as JSON when asked for it."""
    env = {"PODIUM_URL": server.url, "PODIUM_TOKEN": token or server.admin_token, "XDG_CONFIG_HOME": "/nonexistent"}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


@pytest.mark.e2e
@pytest.mark.parametrize("settings_overrides", [FAST])
def test_down_incident_page_ack_resolve_and_mttr(
    live_server: LiveServer, receiver: Receiver, settings_overrides: dict[str, Any]
) -> None:
    cli(live_server, "teams", "create", "shop")
    token = cli(live_server, "tokens", "create", "--team", "shop").strip()
    cli(live_server, "services", "create", "hello", "--owner", "shop", token=token)
    cli(live_server, "oncall", "set", "--team", "shop", "--rotation", f"alice={receiver.url('alice')}",
        "--period", "weekly", "--handoff", "mon 09:00", token=token)
    release = cli(live_server, "deploy", str(HELLO), "--service", "hello", "--env", "production", "--json",
                  token=token)
    assert release["status"] == "live"
    live_server.core.start_runtime()  # checks, paging and watches run as under `podium server`

    def web_check() -> dict[str, Any]:
        [check] = cli(live_server, "checks", "list", "--service", "hello", "--json")
        return dict(check)

    wait_for(lambda: web_check()["state"] == "up", 20, "the web check to say up")
    group = group_name("hello", "production", 1)
    live_server.core.runtime.supervisor.stop_process(group, "web-1")  # down, and it stays down

    def open_incidents() -> list[dict[str, Any]]:
        found = cli(live_server, "incidents", "list", "--service", "hello", "--json")
        return [i for i in found if i["state"] != "resolved"]

    [incident] = wait_for(open_incidents, 20, "an incident to open")
    assert (incident["env"], incident["state"], incident["cause_deploy"]) == ("production", "triggered", "v1")

    [page] = receiver.wait_for(1, path="alice")
    assert "hello/production is down" in page.title
    assert f"podium incidents ack {incident['id']}" in page.message

    cli(live_server, "incidents", "ack", str(incident["id"]), token=token)
    live_server.core.runtime.supervisor.start_process(group, "web-1")

    def resolved() -> dict[str, Any] | None:
        [shown] = [i for i in cli(live_server, "incidents", "list", "--service", "hello", "--json")
                   if i["id"] == incident["id"]]
        return shown if shown["state"] == "resolved" else None

    done = wait_for(resolved, 20, "the incident to resolve by itself")
    assert done["acknowledged_at"] is not None
    receiver.wait_for(2, path="alice")  # the "resolved" notice to whoever was paged

    metrics = cli(live_server, "metrics", "availability", "--service", "hello", "--env", "production",
                  "--since", "1d", "--json")
    assert metrics["incidents"] == 1
    assert metrics["mttr_seconds"] is not None
    assert metrics["mttr_seconds"] > 0
    assert metrics["mtta_seconds"] is not None
    assert metrics["mtta_seconds"] <= metrics["mttr_seconds"]
    assert metrics["mtbf_seconds"] is None  # one outage: no time *between* failures yet
    assert 0 < metrics["availability"] < 1
