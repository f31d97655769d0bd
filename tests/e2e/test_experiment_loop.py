"""The whole experiment loop, as a product team would live it, on a real node.

deploy an app that uses the SDK → define an A/B test (a coverage above the exposure cap
is refused, then allowed with a reason) → start it → users come through the router, the
app shows each one its variant and sends exposures and conversions → results with the
sample-ratio check and intervals → a guardrail metric much worse in the treatment stops
the experiment by itself and pages the team → every user gets the control through the
app → the team records its decision.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer
from tests.health.support import wait_for
from tests.support.receiver import Receiver
from typer.testing import CliRunner

from podium.cli.main import app
from podium.errors import Invalid

APP = Path(__file__).resolve().parents[2] / "examples" / "experiment-app"
USERS = 600
FAST = {
    "paging_poll_interval": 0.05, "paging_retry_initial": 0.05,
    "experiments_guardrail_interval": 3600.0,  # the test runs the check itself, once
}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def run(server: LiveServer, *args: str, token: str | None = None) -> Any:
    env = {"PODIUM_URL": server.url, "PODIUM_TOKEN": token or server.admin_token, "XDG_CONFIG_HOME": "/nonexistent"}
    return CliRunner().invoke(app, list(args), env=env)


def cli(server: LiveServer, *args: str, token: str | None = None) -> Any:
    """``podium ARGS`` in-process against the server; stdout parsed as JSON when asked for with --json."""
    result = run(server, *args, token=token)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def signs_up(i: int, variant: str) -> bool:
    """The bigger button converts better: 30% of treatment users sign up, 15% of control users."""
    return i % 20 < (6 if variant == "treatment" else 3)


def hits_an_error(i: int, variant: str) -> bool:
    """...but breaks something: half the treatment users hit an error, one in twenty control users."""
    return i % 20 < (10 if variant == "treatment" else 1)


@pytest.mark.e2e
@pytest.mark.parametrize("settings_overrides", [FAST])
def test_define_run_measure_guardrail_stop_and_decide(
    live_server: LiveServer, receiver: Receiver, settings_overrides: dict[str, Any]
) -> None:
    cli(live_server, "teams", "create", "shop")
    token = cli(live_server, "tokens", "create", "--team", "shop").strip()
    cli(live_server, "services", "create", "shop", "--owner", "shop", token=token)
    cli(live_server, "oncall", "set", "--team", "shop", "--rotation", f"alice={receiver.url('alice')}",
        "--period", "weekly", "--handoff", "mon 09:00", token=token)  # fmt: skip
    # The app picks up definition changes within 0.2 s and sends its events every 0.2 s.
    cli(live_server, "config", "set", "PODIUM_REFRESH_INTERVAL=0.2", "PODIUM_FLUSH_INTERVAL=0.2",
        "--service", "shop", "--env", "production", token=token)  # fmt: skip
    release = cli(live_server, "deploy", str(APP), "--service", "shop", "--env", "production", "--json", token=token)
    assert release["status"] == "live"
    live_server.core.pager.run()  # pages go out as under `podium server`

    # Define: half the users is above the 2% exposure cap, so it needs an override and a reason.
    define = ("experiments", "create", "big-button", "--service", "shop", "--env", "production",
              "--hypothesis", "a bigger button gets more sign-ups", "--variants", "control,treatment",
              "--metric", "signup", "--guardrail", "error", "--coverage", "0.5")  # fmt: skip
    refused = run(live_server, *define, token=token)
    assert isinstance(refused.exception, Invalid)  # the console script prints it as one line, exit 2
    assert "above the exposure cap 0.02" in str(refused.exception)
    created = cli(live_server, *define, "--override-cap", "--reason", "small shop: 2% would take months",
                  "--json", token=token)  # fmt: skip
    assert (created["status"], created["coverage"], created["cap"]) == ("draft", 0.5, 0.02)
    assert created["cap_override"]["reason"] == "small shop: 2% would take months"
    # The override is recorded on the experiment, so starting it needs no second one.
    started = cli(live_server, "experiments", "start", "big-button", "--service", "shop", "--env", "production",
                  "--json", token=token)  # fmt: skip
    assert started["status"] == "running"

    # Users come through the router; the app asks the SDK, which answers in the app's process.
    router = f"http://127.0.0.1:{live_server.core.settings.router_port}"
    served: dict[str, str | None] = {}
    with httpx.Client(base_url=router, headers={"Host": "shop.production.localhost"}, timeout=10) as browser:

        probes: Counter[str] = Counter()  # users who came while the app was picking up the experiment

        def wait_until_running() -> bool:
            for i in range(20):
                variant = browser.get("/", params={"user": f"probe-{i}"}).json()["variant"]
                if variant is not None:
                    probes[variant] += 1
                    return True
            return False

        wait_for(wait_until_running, 10, "the app to see the running experiment")
        for i in range(USERS):
            user = f"user-{i}"
            profession = "marketing" if i % 3 == 0 else "engineering"
            served[user] = browser.get("/", params={"user": user, "profession": profession}).json()["variant"]
            variant = served[user]
            if variant is None:
                continue
            if signs_up(i, variant):
                assert browser.get("/signup", params={"user": user}).json()["signed_up"]
            if hits_an_error(i, variant):
                browser.get("/event", params={"user": user, "name": "error"}).raise_for_status()
        exposed = Counter(v for v in served.values() if v is not None)
        # Coverage 0.5: about half the users see the experiment, split about evenly.
        assert 0.4 * USERS < sum(exposed.values()) < 0.6 * USERS, exposed
        assert set(exposed) == {"control", "treatment"}

        # Results: every exposure and conversion the app sent, counted per variant.
        results_args = ("experiments", "results", "big-button", "--service", "shop", "--env", "production",
                        "--segment", "profession=marketing", "--json")  # fmt: skip

        def all_arrived() -> dict[str, Any] | None:
            found: dict[str, Any] = cli(live_server, *results_args, token=token)
            counted = {v["name"]: v["users"] for v in found["variants"]}
            return found if counted == dict(exposed + probes) else None

        results = wait_for(all_arrived, 20, "every exposure to reach the results")
        by_name = {v["name"]: v for v in results["variants"]}
        expected_signups = {
            variant: sum(1 for u, v in served.items() if v == variant and signs_up(int(u.split("-")[1]), variant))
            for variant in exposed
        }  # fmt: skip
        assert {name: v["conversions"] for name, v in by_name.items()} == expected_signups
        assert results["srm_p_value"] is not None
        assert results["srm_mismatch"] is False
        treatment = by_name["treatment"]
        assert treatment["lift"] > 0
        assert treatment["ci_low"] is not None
        assert treatment["ci_low"] < treatment["lift"] < treatment["ci_high"]
        assert 0 <= treatment["p_value"] <= 1
        [guardrail] = results["guardrails"]
        assert guardrail["metric"] == "error"
        assert results["segment"]["attribute"] == "profession"

        # The guardrail: errors are far more common in the treatment, so the experiment stops itself.
        stopped = live_server.core.guardrails.check()
        assert [(s.service, s.env, s.key) for s in stopped] == [("shop", "production", "big-button")]
        shown = cli(live_server, "experiments", "show", "big-button", "--service", "shop", "--env", "production",
                    "--json", token=token)  # fmt: skip
        assert (shown["status"], shown["stopped_by"]) == ("stopped", "guardrail")
        assert "error" in shown["stop_reason"]
        [page] = receiver.wait_for(1, path="alice")
        assert "big-button" in page.title
        assert "error" in page.message

        # Everyone gets the control through the app, the treatment's users first of all.
        treated = [u for u, v in served.items() if v == "treatment"]

        def everyone_on_control() -> bool:
            return all(browser.get("/", params={"user": u}).json()["variant"] == "control" for u in treated[:50])

        wait_for(everyone_on_control, 10, "the app to give the control to everyone")
        assert browser.get("/", params={"user": "never-seen"}).json()["variant"] == "control"

        # The team records what it learnt; the control stays for everyone.
        decided = cli(live_server, "experiments", "decide", "big-button", "--service", "shop", "--env", "production",
                      "--discard", "--reason", "more sign-ups, but half the users hit errors", "--json",
                      token=token)  # fmt: skip
        assert decided["status"] == "decided"
        assert decided["decision"]["decision"] == "discard"
        assert decided["decision"]["by"] == "shop"
        assert browser.get("/", params={"user": treated[0]}).json()["variant"] == "control"
