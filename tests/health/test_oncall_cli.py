"""``podium oncall``: the CLI against a live server, in-process, and once as the installed script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from podium.catalog.auth import Actor
from podium.cli.main import app
from podium.cli.oncall import parse_moment, parse_rotation
from podium.cli.output import exit_code
from podium.errors import Invalid, PodiumError

SECRET = "hunter2-token"
ALICE = f"json://127.0.0.1:9/alice?token={SECRET}"
BOB = "json://127.0.0.1:9/bob"
CAROL = "json://127.0.0.1:9/carol"



@dataclass
class Ran:
    """What ``podium`` would have done: its exit code, stdout, and stderr as ``run_cli`` writes it."""

    code: int
    stdout: str
    stderr: str


Invoke = Callable[..., Ran]


@pytest.fixture(autouse=True)
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config dir of the test's own, and no login from the environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PODIUM_URL", raising=False)
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)


@pytest.fixture
def tokens(live_server: Any) -> dict[str, str]:
    """Tokens of the platform team and of teams checkout and search."""
    found = {"platform": live_server.admin_token}
    with live_server.client() as admin:
        for team in ("checkout", "search"):
            admin.post("/api/v1/teams", json={"name": team}).raise_for_status()
            found[team] = admin.post(f"/api/v1/teams/{team}/tokens", json={}).json()["token"]
    return found


@pytest.fixture
def podium(live_server: Any, tokens: dict[str, str]) -> Invoke:
    """``podium("oncall", "show", "--team", "x", as_team="checkout", expect=0)``."""
    runner = CliRunner()

    def invoke(*args: str, as_team: str = "checkout", expect: int = 0) -> Ran:
        env = {"PODIUM_URL": live_server.url, "PODIUM_TOKEN": tokens[as_team]}
        result = runner.invoke(app, list(args), env=env)
        ran = Ran(result.exit_code, result.stdout, result.stderr)
        if isinstance(result.exception, PodiumError):  # what run_cli makes of it
            ran = Ran(exit_code(result.exception), result.stdout, f"error: {result.exception.detail}\n")
        assert ran.code == expect, (args, result.exception, result.stdout, result.stderr)
        return ran

    return invoke


def set_rotation(podium: Invoke, *extra: str, **kw: Any) -> Ran:
    return podium("oncall", "set", "--team", "checkout", "--rotation", f"alice={ALICE},bob={BOB},carol={CAROL}",
                  "--period", "weekly", "--handoff", "mon 09:00", *extra, **kw)


def test_set_then_show_who_is_on_call(podium: Invoke) -> None:
    said = set_rotation(podium, "--escalate-after", "10")
    assert said.stdout.startswith("rotation of checkout set: alice is on call, bob next at ")
    shown = podium("oncall", "show", "--team", "checkout", as_team="search").stdout
    for line in ("on call    alice", "rotation   alice, bob, carol", "handoff    weekly, mon 09:00 UTC",
                 "escalation after 10 min unacknowledged"):
        assert " ".join(line.split()) in " ".join(shown.split()), line
    assert SECRET not in shown


def test_show_json_names_people_and_never_their_urls(podium: Invoke) -> None:
    set_rotation(podium)
    data = json.loads(podium("oncall", "show", "--team", "checkout", "--json").stdout)
    assert {"team", "current", "next", "next_handoff_at", "escalate_after_minutes", "members"} <= set(data)
    assert (data["team"], data["current"], data["next"]) == ("checkout", {"name": "alice"}, {"name": "bob"})
    assert data["members"] == ["alice", "bob", "carol"]
    assert data["escalate_after_minutes"] == 15
    assert datetime.fromisoformat(data["next_handoff_at"]).strftime("%a %H:%M") == "Mon 09:00"
    assert "://" not in json.dumps(data)


def test_a_daily_rotation(podium: Invoke) -> None:
    podium("oncall", "set", "--team", "checkout", "--rotation", f"alice={ALICE}", "--period", "daily",
           "--handoff", "07:30")
    data = json.loads(podium("oncall", "show", "--team", "checkout", "--json").stdout)
    assert (data["current"], data["next"], data["handoff"]) == ({"name": "alice"}, {"name": "alice"}, "07:30")


def test_another_team_is_refused_in_one_line(podium: Invoke) -> None:
    refused = set_rotation(podium, as_team="search", expect=4)
    assert refused.stderr == "error: team 'search' may not change the on-call rotation of team 'checkout'\n"


def test_a_url_apprise_does_not_understand_is_refused_with_the_reason(podium: Invoke) -> None:
    refused = podium("oncall", "set", "--team", "checkout", "--rotation", f"alice=nope://{SECRET}",
                     "--period", "weekly", "--handoff", "mon 09:00", expect=2)
    assert "not one Apprise understands" in refused.stderr
    assert SECRET not in refused.stderr
    assert podium("oncall", "show", "--team", "checkout", expect=5).stderr.startswith(
        "error: team 'checkout' has no on-call rotation"
    )


def test_a_bad_handoff_is_refused(podium: Invoke) -> None:
    refused = podium("oncall", "set", "--team", "checkout", "--rotation", f"alice={ALICE}",
                     "--period", "weekly", "--handoff", "noon", expect=2)
    assert "invalid handoff 'noon'" in refused.stderr


def test_an_override_then_its_removal(podium: Invoke) -> None:
    set_rotation(podium)
    now = datetime.now(UTC).replace(microsecond=0)
    start = (now - timedelta(minutes=5)).replace(tzinfo=None).isoformat()  # no zone: UTC
    end = (now + timedelta(hours=2)).isoformat()
    said = podium("oncall", "override", "--team", "checkout", "--name", "dave", "--url", CAROL,
                  "--start", start, "--end", end).stdout
    assert said.startswith("override #")
    override_id = said.split("#")[1].split(":")[0]
    data = json.loads(podium("oncall", "show", "--team", "checkout", "--json").stdout)
    assert data["current"] == {"name": "dave"}
    assert datetime.fromisoformat(data["overrides"][0]["starts_at"]) == now - timedelta(minutes=5)
    assert f"#{override_id} dave" in podium("oncall", "show", "--team", "checkout").stdout
    podium("oncall", "remove-override", "--team", "checkout", override_id)
    data = json.loads(podium("oncall", "show", "--team", "checkout", "--json").stdout)
    assert (data["current"], data["overrides"]) == ({"name": "alice"}, [])


def test_pages_show_what_was_sent_and_what_was_not(podium: Invoke, live_server: Any) -> None:
    set_rotation(podium)
    core = live_server.core
    with live_server.client() as admin:
        admin.post("/api/v1/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    team = core.catalog.get_team("checkout")
    core.incidents.open(Actor("checkout", team.id, None), "cart", summary="cart is down")
    table = podium("oncall", "pages", "--team", "checkout").stdout
    assert table.splitlines()[-1].split()[2:6] == ["trigger", "alice", "pending", "0"]
    rows = json.loads(podium("oncall", "pages", "--team", "checkout", "--json").stdout)
    assert [(r["kind"], r["recipient"], r["state"]) for r in rows] == [("trigger", "alice", "pending")]
    assert podium("oncall", "pages", "--team", "search", as_team="search").stderr == "no pages for search yet\n"


def test_the_installed_script(live_server: Any, tokens: dict[str, str], tmp_path: Path) -> None:
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {tokens['checkout']}"}) as api:
        body = {"members": [{"name": "alice", "url": ALICE}], "period": "weekly", "handoff": "fri 17:00"}
        api.put("/api/v1/teams/checkout/oncall", json=body).raise_for_status()
    script = Path(sys.executable).parent / "podium"
    command = str(script) if script.exists() else shutil.which("podium")
    assert command, "the podium console script is not installed: pip install -e ."
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "PODIUM_URL": live_server.url, "PODIUM_TOKEN": tokens["search"]}
    done = subprocess.run([command, "oncall", "show", "--team", "checkout", "--json"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["handoff"] == "fri 17:00"


# Parsing what people type ------------------------------------------------------------------


def test_a_rotation_is_split_between_people_not_inside_urls() -> None:
    text = "alice=mailto://a:pw@example.com?to=x@example.com,y@example.com, bob = json://h/b?a=1,b=2"
    assert parse_rotation(text) == [
        {"name": "alice", "url": "mailto://a:pw@example.com?to=x@example.com,y@example.com"},
        {"name": "bob", "url": "json://h/b?a=1,b=2"},
    ]


@pytest.mark.parametrize("text", ["", "alice", "=json://h/a", "alice=", "alice=json://h/a, =json://h/b"])
def test_a_rotation_that_cannot_be_read(text: str) -> None:
    with pytest.raises(Invalid, match="alice=URL,bob=URL"):
        parse_rotation(text)


def test_times_without_a_zone_are_utc() -> None:
    assert parse_moment("--start", "2026-03-01T09:00") == "2026-03-01T09:00:00+00:00"
    assert parse_moment("--start", "2026-03-01T09:00+01:00") == "2026-03-01T09:00:00+01:00"
    assert parse_moment("--start", "2026-03-01T09:00Z") == "2026-03-01T09:00:00+00:00"
    with pytest.raises(Invalid, match="ISO 8601"):
        parse_moment("--start", "tomorrow")
