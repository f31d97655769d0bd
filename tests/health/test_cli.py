"""The availability commands in-process, against a live server: incidents, checks, maintenance."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import LiveServer
from typer.testing import CliRunner

from podium.cli.main import app
from podium.cli.output import exit_code
from podium.errors import PodiumError


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


Invoke = Callable[..., Ran]


@pytest.fixture
def podium_cli(live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``podium_cli(*args, team=..., expect=0)``: the CLI as team ``web`` (or ``team``)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with live_server.client() as admin:
        tokens = {"platform": live_server.admin_token}
        for team in ("web", "outsider"):
            admin.post("/api/v1/teams", json={"name": team}).raise_for_status()
            tokens[team] = admin.post(f"/api/v1/teams/{team}/tokens", json={}).json()["token"]
        admin.post("/api/v1/services", json={"name": "hello", "owner": "web"}).raise_for_status()
    runner = CliRunner()

    def invoke(*args: str, team: str = "web", expect: int = 0) -> Ran:
        env = {"PODIUM_URL": live_server.url, "PODIUM_TOKEN": tokens[team]}
        result = runner.invoke(app, list(args), env=env)
        ran = Ran(result.exit_code, result.stdout, result.stderr)
        if isinstance(result.exception, PodiumError):  # what run_cli makes of it in the console script
            ran = Ran(exit_code(result.exception), result.stdout, f"error: {result.exception.detail}\n")
        assert ran.code == expect, (args, result.exception, ran)
        return ran

    return invoke


def test_incidents_from_the_cli(podium_cli: Invoke) -> None:
    opened = podium_cli("incidents", "open", "--service", "hello", "--summary", "checkout is slow")
    assert opened.stdout == "opened incident 1 on hello/production, paging team web\n"
    rows = json.loads(podium_cli("incidents", "list", "--json").stdout)
    assert len(rows) == 1
    assert {"id", "service", "env", "state", "triggered_at", "acknowledged_at", "resolved_at",
            "cause_deploy"} <= set(rows[0])
    assert (rows[0]["id"], rows[0]["service"], rows[0]["env"], rows[0]["state"]) == (1, "hello", "production",
                                                                                      "triggered")
    refused = podium_cli("incidents", "ack", "1", team="outsider", expect=4)
    assert refused.stderr.startswith("error: team 'outsider' may not act on incidents of service 'hello'")
    acked = podium_cli("incidents", "ack", "1").stdout
    assert acked.startswith("incident 1 on hello/production is acknowledged (by web/")
    podium_cli("incidents", "note", "1", "restarted the cache")
    assert podium_cli("incidents", "resolve", "1").stdout.startswith("incident 1 on hello/production is resolved")
    shown = podium_cli("incidents", "show", "1").stdout
    assert "checkout is slow" in shown
    assert "web: restarted the cache" in shown
    assert json.loads(podium_cli("incidents", "list", "--state", "resolved", "--since", "1h", "--json").stdout)[0][
        "resolved_at"]
    table = podium_cli("incidents", "list", "--team", "web").stdout
    assert "hello/production" in table
    assert "resolved" in table
    assert podium_cli("incidents", "resolve", "1", expect=6).stderr == "error: incident 1 is resolved already\n"
    assert podium_cli("incidents", "show", "99", expect=5).stderr == "error: incident 99 not found\n"
    assert podium_cli("incidents", "list", "--since", "yesterday", expect=2).stderr.startswith("error: invalid --since")


def test_checks_from_the_cli(podium_cli: Invoke) -> None:
    changed = podium_cli("checks", "set", "--service", "hello", "--env", "production", "--path", "/health",
                         "--interval", "30", "--timeout", "3", "--down-after", "4", "--up-after", "1")
    assert changed.stdout == ("check web of hello/production: GET /health every 30s, timeout 3s, down after 4, "
                              "up after 1\n")
    added = podium_cli("checks", "add", "--service", "hello", "--name", "db", "--tcp", "127.0.0.1:5432")
    assert added.stdout == "added check db to hello/production: TCP 127.0.0.1:5432 every 0.1s\n"
    podium_cli("checks", "add", "--service", "hello", "--env", "staging", "--name", "api", "--http", "/api",
               "--expect-status", "204", "--json-field", "status=ok")
    listed = json.loads(podium_cli("checks", "list", "--service", "hello", "--json").stdout)
    assert [(c["env"], c["name"], c["target"], c["state"]) for c in listed] == [
        ("production", "web", "GET /health", "unknown"), ("production", "db", "TCP 127.0.0.1:5432", "unknown"),
        ("staging", "api", "GET /api", "unknown"),
    ]
    assert "TCP 127.0.0.1:5432" in podium_cli("checks", "list", "--service", "hello", "--env", "production").stdout
    podium_cli("checks", "set", "--service", "hello", "--env", "production", "--interval", "5", team="outsider",
               expect=4)
    podium_cli("checks", "remove", "--service", "hello", "--name", "db")
    assert podium_cli("checks", "remove", "--service", "hello", "--name", "web", expect=2).stderr.startswith(
        "error: the 'web' check cannot be removed")
    assert podium_cli("checks", "add", "--service", "hello", "--name", "x", expect=2).stderr == (
        "error: give exactly one of --http /path or --tcp host:port\n")
    podium_cli("checks", "set", "--service", "hello", "--env", "production", "--interval", "0", expect=2)


def test_maintenance_from_the_cli(podium_cli: Invoke) -> None:
    added = podium_cli("maintenance", "add", "--service", "hello", "--start", "2099-01-01T02:00:00Z",
                       "--end", "2099-01-01T04:00:00Z", "--reason", "database upgrade")
    assert added.stdout.startswith("maintenance window 1 on hello: 2099-01-01 02:00 UTC")
    podium_cli("maintenance", "add", "--service", "hello", "--env", "staging", "--duration", "1h")
    listed = json.loads(podium_cli("maintenance", "list", "--service", "hello", "--json").stdout)
    assert [(w["id"], w["env"], w["active"]) for w in listed] == [(2, "staging", True), (1, None, False)]
    assert "database upgrade" in podium_cli("maintenance", "list", "--service", "hello").stdout
    podium_cli("maintenance", "remove", "--service", "hello", "1", team="outsider", expect=4)
    podium_cli("maintenance", "remove", "--service", "hello", "1")
    assert podium_cli("maintenance", "add", "--service", "hello", "--end", "tomorrow", expect=2).stderr.startswith(
        "error: invalid --end")
