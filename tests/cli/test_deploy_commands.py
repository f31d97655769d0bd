"""Deploy commands against a real server, supervisord and nginx: the CLI as a team uses it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console as RichConsole
from tests.cli.conftest import Console, Invoke

from podium.cli.deploy import duration, failure_line, parse_pairs, parse_quantities
from podium.cli.progress import StageDisplay
from podium.errors import Invalid

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"


@pytest.fixture
def hello(live_server: Any) -> str:
    """Service ``hello`` owned by team ``web``, nothing deployed yet."""
    with live_server.client() as admin:
        admin.post("/api/v1/teams", json={"name": "web"}).raise_for_status()
        admin.post("/api/v1/services", json={"name": "hello", "owner": "web"}).raise_for_status()
    return "hello"


def app_says(live_server: Any, host: str) -> dict[str, Any]:
    """What the app answers through the router for ``host``."""
    port = live_server.core.settings.router_port
    response = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": host}, timeout=5)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def released(podium_cli: Invoke, *args: str) -> dict[str, Any]:
    """Run a command that makes a release, with --json, and return the final release."""
    result = podium_cli(*args, "--json")
    release: dict[str, Any] = json.loads(result.stdout)
    return release


def broken_app(tmp_path: Path) -> Path:
    app = tmp_path / "broken"
    app.mkdir()
    (app / "Procfile").write_text(
        "web: python3 -c \"import sys; print('cannot start: no database', flush=True); sys.exit(3)\"\n"
    )
    return app


def test_deploy_a_directory_goes_live_and_answers_through_the_router(
    podium_cli: Invoke, live_server: Any, hello: str
) -> None:
    result = podium_cli("deploy", str(HELLO), "--service", hello, "--commit", "abc123", "--description", "first")
    assert "v1 is live in hello/staging" in result.stdout
    assert "health_check" in result.stderr  # the stages, as plain lines when not on a terminal
    assert app_says(live_server, "hello.staging.localhost") == {
        "message": "Hello from Podium", "service": "hello", "env": "staging", "release": "v1",
    }

    rows = json.loads(podium_cli("releases", "--service", hello, "--json").stdout)
    assert [(r["version"], r["status"], r["commit"], r["description"]) for r in rows] == [
        ("v1", "live", "abc123", "first")
    ]
    table = podium_cli("releases", "--service", hello).stdout
    assert "v1" in table
    assert "live" in table


def test_deploy_json_prints_the_final_release_and_only_that(podium_cli: Invoke, hello: str) -> None:
    release = released(podium_cli, "deploy", str(HELLO), "--service", hello)
    assert release["version"] == "v1"
    assert release["status"] == "live"
    assert release["stage"] == "done"
    assert "final" not in release


def test_config_set_makes_a_release_and_rollback_brings_back_the_old_config(
    podium_cli: Invoke, live_server: Any, hello: str
) -> None:
    saved = podium_cli("config", "set", "GREETING=early", "--service", hello)
    assert "nothing is live yet" in saved.stdout
    podium_cli("config", "unset", "GREETING", "--service", hello)
    podium_cli("deploy", str(HELLO), "--service", hello)

    v2 = released(podium_cli, "config", "set", "GREETING=hi", "--service", hello)
    assert (v2["version"], v2["status"], v2["config_keys"]) == ("v2", "live", ["GREETING"])
    assert app_says(live_server, "hello.staging.localhost")["message"] == "hi"
    assert "GREETING=hi" in podium_cli("config", "get", "--service", hello).stdout
    assert json.loads(podium_cli("config", "get", "--service", hello, "--json").stdout) == {"GREETING": "hi"}

    v3 = released(podium_cli, "rollback", "--service", hello)
    assert (v3["version"], v3["status"], v3["rollback_of"], v3["config_keys"]) == ("v3", "live", "v1", [])
    assert app_says(live_server, "hello.staging.localhost") == {
        "message": "Hello from Podium", "service": "hello", "env": "staging", "release": "v3",
    }
    statuses = [(r["version"], r["status"]) for r in json.loads(
        podium_cli("releases", "--service", hello, "--json").stdout)]
    assert statuses == [("v3", "live"), ("v2", "superseded"), ("v1", "superseded")]


def test_promote_rolls_stagings_artifact_out_to_production(
    podium_cli: Invoke, live_server: Any, hello: str
) -> None:
    podium_cli("deploy", str(HELLO), "--service", hello)
    result = podium_cli("promote", "--service", hello)
    assert "v1 is live in hello/production" in result.stdout
    assert app_says(live_server, "hello.localhost") == {
        "message": "Hello from Podium", "service": "hello", "env": "production", "release": "v1",
    }
    rows = json.loads(podium_cli("releases", "--service", hello, "--env", "production", "--json").stdout)
    assert [(r["version"], r["status"], r["description"]) for r in rows] == [
        ("v1", "live", "Promote staging v1")
    ]


def test_scale_then_ps_and_logs(podium_cli: Invoke, live_server: Any, hello: str) -> None:
    podium_cli("deploy", str(HELLO), "--service", hello)
    v2 = released(podium_cli, "scale", "web=2", "--service", hello)
    assert (v2["version"], v2["status"], v2["formation"]) == ("v2", "live", {"web": 2})

    processes = json.loads(podium_cli("ps", "--service", hello, "--json").stdout)
    web = [p for p in processes if p["type"] == "web"]
    assert [(p["process"], p["release"]) for p in web] == [("web-1", "v2"), ("web-2", "v2")]
    # Healthy already; supervisord says RUNNING once a process has been up for its startsecs (1 s).
    assert {p["state"] for p in web} <= {"STARTING", "RUNNING"}
    assert len({p["port"] for p in web}) == 2
    table = podium_cli("ps", "--service", hello).stdout
    assert "web-2" in table
    assert "v2" in table

    app_says(live_server, "hello.staging.localhost")  # a request the app logs
    lines = podium_cli("logs", "--service", hello, "--lines", "5").stdout.splitlines()
    assert 0 < len(lines) <= 5
    assert all(" v2 web-" in line or " v1 web-" in line for line in lines), lines


def test_a_failing_release_exits_non_zero_and_the_previous_one_keeps_serving(
    podium_cli: Invoke, console: Console, live_server: Any, hello: str, tmp_path: Path
) -> None:
    podium_cli("deploy", str(HELLO), "--service", hello)

    ran = console("deploy", str(broken_app(tmp_path)), "--service", hello)
    assert ran.code == 1
    error_lines = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert error_lines[0].startswith("error: v2 failed at health_check: process web-1 is ")
    # The app's own last words, indented under the error line.
    assert any(line.startswith("    ") and line.endswith("cannot start: no database")
               for line in ran.stderr.splitlines()), ran.stderr
    assert "v1 is still live" in ran.stderr
    assert "Traceback" not in ran.stderr

    assert app_says(live_server, "hello.staging.localhost")["release"] == "v1"
    rows = json.loads(podium_cli("releases", "--service", hello, "--json").stdout)
    assert [(r["version"], r["status"]) for r in rows] == [("v2", "failed"), ("v1", "live")]
    assert "failed" in podium_cli("releases", "--service", hello).stdout


def test_a_directory_without_a_procfile_is_refused_before_anything_is_sent(
    podium_cli: Invoke, live_server: Any, hello: str, tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text("print('no Procfile here')\n")
    result = podium_cli("deploy", str(tmp_path), "--service", hello, expect=None)
    assert result.exit_code != 0
    assert isinstance(result.exception, Invalid)
    assert "no Procfile" in result.exception.detail
    assert json.loads(podium_cli("releases", "--service", hello, "--json").stdout) == []
    assert not live_server.core.deploys.runtime_started


def test_bad_arguments_fail_with_one_line(console: Console, hello: str) -> None:
    ran = console("config", "set", "GREETING", "--service", hello)
    assert (ran.code, ran.stderr) == (2, "error: invalid argument 'GREETING': use KEY=VALUE\n")
    ran = console("scale", "web=two", "--service", hello)
    assert (ran.code, ran.stderr) == (2, "error: invalid quantity web='two': use TYPE=COUNT, e.g. web=2\n")
    ran = console("deploy", "/nonexistent/app", "--service", hello)
    assert (ran.code, ran.stderr) == (2, "error: /nonexistent/app: no such file or directory\n")


def test_parsing_and_rendering_helpers() -> None:
    assert parse_pairs(["A=1", "B=x=y", "C="]) == {"A": "1", "B": "x=y", "C": ""}
    assert parse_quantities(["web=2", "worker=0"]) == {"web": 2, "worker": 0}
    with pytest.raises(Invalid):
        parse_pairs(["=1"])
    assert [duration(s) for s in (None, 5, 725, 7320, 273600)] == ["-", "5s", "12m 5s", "2h 2m", "3d 4h"]
    release = {"version": "v4", "status": "failed", "stage": "releasing",
               "failure_reason": "releasing: release command exited with status 1"}
    assert failure_line(release) == "v4 failed at releasing: release command exited with status 1"


def test_stages_are_plain_lines_when_not_on_a_terminal() -> None:
    sink = io.StringIO()
    with StageDisplay("v2", RichConsole(file=sink, width=200)) as display:
        display.event({"stage": "starting", "status": "deploying", "message": "1 process(es)"})
        display.event({"stage": "health_check", "status": "failed", "message": "process web-1 is FATAL"})
    assert sink.getvalue() == (
        "v2 starting     1 process(es)\n"
        "v2 health_check failed process web-1 is FATAL\n"
    )
