"""``podium experiments``: run in-process against a real server, as a product team would."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from podium.cli import experiments
from podium.cli.main import app
from podium.errors import Conflict, Invalid, NotFound
from podium.runtime.ports import free_port

Invoke = Callable[..., Result]
DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
WHERE = ("--service", "shop", "--env", "production")
BASIC = ("--hypothesis", "a larger button gets more sign-ups", "--variants", "control,treatment",
         "--metric", "signup")


def failed_with(result: Result, error: type[Exception]) -> str:
    """The detail of the Podium error a command let out (``run_cli`` turns it into one line)."""
    assert isinstance(result.exception, error), (result.exception, result.stdout, result.stderr)
    return str(result.exception)


@pytest.fixture
def shop(podium_cli: Invoke) -> str:
    """A token of team growth, which owns service shop."""
    podium_cli("teams", "create", "growth")
    token = str(podium_cli("tokens", "create", "--team", "growth").stdout.strip())
    podium_cli("services", "create", "shop", "--owner", "growth", token=token)
    return token


def send_events(live_server: Any, events: list[dict[str, Any]]) -> None:
    """What apps send through the SDK: exposures and metric events, by the HTTP API."""
    with live_server.client() as http:
        for start in range(0, len(events), 5000):
            answer = http.post("/api/v1/events", json={"service": "shop", "env": "production",
                                                      "events": events[start:start + 5000]})
            assert answer.status_code == 200, answer.text
            assert answer.json()["rejected"] == []


def exposures(experiment: str, variant: str, users: range, attributes: dict[str, Any] | None = None
              ) -> list[dict[str, Any]]:
    return [{"id": uuid.uuid4().hex, "type": "exposure", "user_id": f"u{n}", "experiment": experiment,
             "variant": variant, "attributes": attributes or {}} for n in users]


def conversions(name: str, users: range) -> list[dict[str, Any]]:
    return [{"id": uuid.uuid4().hex, "type": "metric", "user_id": f"u{n}", "name": name, "value": 1.0}
            for n in users]


# Against the server --------------------------------------------------------------------


def test_above_the_cap_is_refused_and_an_override_with_a_reason_is_shown(
    podium_cli: Invoke, console: Any, shop: str
) -> None:
    refused = podium_cli("experiments", "create", "big-button", *WHERE, *BASIC, "--coverage", "0.1",
                         token=shop, expect=1)
    detail = failed_with(refused, Invalid)
    assert "cap 0.02" in detail
    assert "--override-cap --reason" in detail
    # As a console script: one line on stderr, exit 2 (invalid input), nothing created.
    ran = console("experiments", "create", "big-button", *WHERE, *BASIC, "--coverage", "0.1", token=shop)
    assert ran.code == 2
    assert ran.stdout == ""
    assert re.fullmatch(r"error: coverage 0\.1 is above the exposure cap 0\.02: .*\n", ran.stderr)
    assert podium_cli("experiments", "list", *WHERE, token=shop).stderr == "no experiments in shop/production\n"

    made = podium_cli("experiments", "create", "big-button", *WHERE, *BASIC, "--coverage", "0.1",
                      "--override-cap", "--reason", "too few sign-ups to learn anything at 2%", token=shop).stdout
    assert made.startswith("created experiment big-button in shop/production (draft): 10% of users, "
                           "control 50%, treatment 50%")
    shown = podium_cli("experiments", "show", "big-button", *WHERE, token=shop).stdout
    assert re.search(r"coverage\s+10% of users \(cap 2%\): above the cap\n", shown)
    assert re.search(r"cap override\s+by growth .* UTC \(just now\): too few sign-ups to learn anything at 2%\n",
                     shown)
    assert re.search(r"status\s+draft\n", shown)
    assert json.loads(podium_cli("experiments", "show", "big-button", *WHERE, "--json", token=shop).stdout)[
        "cap_override"]["reason"] == "too few sign-ups to learn anything at 2%"
    listed = podium_cli("experiments", "list", *WHERE, token=shop).stdout
    assert re.search(r"big-button\s+shop/production\s+draft\s+10% \(override\)\s+signup", listed)
    # The override was given with that coverage; starting needs no second one.
    assert podium_cli("experiments", "start", "big-button", *WHERE, token=shop).stdout.startswith(
        "big-button is running in shop/production: 10% of users")


def test_start_stop_and_decide_record_who_and_why(podium_cli: Invoke, shop: str) -> None:
    podium_cli("experiments", "create", "big-button", *WHERE, *BASIC, "--coverage", "0.02", "--weights", "0.4,0.6",
               "--guardrail", "error", "--guardrail", "latency,refund", "--condition", '{"country": "NL"}',
               "--namespace", "checkout:0:0.5", "--seed", "s1", "--hash-version", "1", token=shop)
    shown = podium_cli("experiments", "show", "big-button", *WHERE, token=shop).stdout
    assert re.search(r"variants\s+control 40%, treatment 60%\n", shown)
    assert re.search(r"guardrails\s+error, latency, refund\n", shown)
    assert re.search(r"assignment\s+seed s1, hash version 1\n", shown)
    assert re.search(r"namespace\s+checkout 0 to 0.5\n", shown)
    assert re.search(r'conditions\s+\{"country": "NL"\}\n', shown)

    early = podium_cli("experiments", "decide", "big-button", *WHERE, "--discard", "--reason", "x", token=shop,
                       expect=1)
    failed_with(early, Conflict)
    podium_cli("experiments", "start", "big-button", *WHERE, token=shop)
    assert re.search(r"started\s+.* UTC \(just now\) by growth\n",
                     podium_cli("experiments", "show", "big-button", *WHERE, token=shop).stdout)
    again = podium_cli("experiments", "start", "big-button", *WHERE, token=shop, expect=1)
    failed_with(again, Conflict)

    stopped = podium_cli("experiments", "stop", "big-button", *WHERE, "--reason", "checkout errors", token=shop)
    assert stopped.stdout.startswith("stopped big-button in shop/production: everyone gets control")
    decided = podium_cli("experiments", "decide", "big-button", *WHERE, "--ship", "treatment",
                         "--reason", "+12% sign-ups, interval above 0", token=shop)
    assert decided.stdout == "decided big-button in shop/production: ship treatment; everyone gets treatment\n"
    shown = podium_cli("experiments", "show", "big-button", *WHERE, token=shop).stdout
    assert re.search(r"status\s+decided\n", shown)
    assert re.search(r"stopped\s+.* by growth: checkout errors\n", shown)
    assert re.search(r"decision\s+ship treatment, .* by growth: \+12% sign-ups, interval above 0\n", shown)
    body = json.loads(podium_cli("experiments", "show", "big-button", *WHERE, "--json", token=shop).stdout)
    assert body["decision"]["variant"] == "treatment"
    assert body["stopped_by"] == "growth"

    # Another team may not change it; a draft can go, a decided one stays.
    podium_cli("teams", "create", "search")
    other = podium_cli("tokens", "create", "--team", "search").stdout.strip()
    podium_cli("experiments", "create", "other", *WHERE, *BASIC, "--coverage", "0.01", token=other, expect=1)
    podium_cli("experiments", "delete", "big-button", *WHERE, "--yes", token=shop, expect=1)
    podium_cli("experiments", "create", "tiny", *WHERE, *BASIC, "--coverage", "0.01", token=shop)
    assert podium_cli("experiments", "delete", "tiny", *WHERE, "--yes", token=shop).stdout == \
        "deleted experiment tiny from shop/production\n"
    failed_with(podium_cli("experiments", "show", "tiny", *WHERE, token=shop, expect=1), NotFound)


def test_edit_a_draft_then_a_running_experiment(podium_cli: Invoke, shop: str) -> None:
    podium_cli("experiments", "create", "big-button", *WHERE, *BASIC, token=shop)
    assert re.search(r"coverage\s+2% of users \(cap 2%\)\n",
                     podium_cli("experiments", "show", "big-button", *WHERE, token=shop).stdout)
    edited = podium_cli("experiments", "edit", "big-button", *WHERE, "--variants", "control,small,large",
                        "--weights", "0.5,0.25,0.25", "--coverage", "0.01", token=shop).stdout
    assert edited == ("updated experiment big-button in shop/production (draft): 1% of users, "
                      "control 50%, small 25%, large 25%\n")
    podium_cli("experiments", "start", "big-button", *WHERE, token=shop)
    refused = podium_cli("experiments", "edit", "big-button", *WHERE, "--coverage", "0.05", token=shop, expect=1)
    assert "--override-cap --reason TEXT" in failed_with(refused, Invalid)
    podium_cli("experiments", "edit", "big-button", *WHERE, "--coverage", "0.05", "--override-cap",
               "--reason", "the large button needs more users", token=shop)
    shown = podium_cli("experiments", "show", "big-button", *WHERE, token=shop).stdout
    assert re.search(r"cap override\s+by growth .*: the large button needs more users\n", shown)
    frozen = podium_cli("experiments", "edit", "big-button", *WHERE, "--metric", "purchase", token=shop, expect=1)
    assert "metric" in str(frozen.exception)


def test_stop_without_a_reason_and_discard(podium_cli: Invoke, shop: str) -> None:
    podium_cli("experiments", "create", "big-button", *WHERE, *BASIC, "--coverage", "0.02", token=shop)
    podium_cli("experiments", "start", "big-button", *WHERE, token=shop)
    podium_cli("experiments", "stop", "big-button", *WHERE, token=shop)
    done = podium_cli("experiments", "decide", "big-button", *WHERE, "--discard", "--reason", "no effect",
                      token=shop).stdout
    assert done == "decided big-button in shop/production: discard; everyone gets control\n"


def test_results_json_and_table(live_server: Any, podium_cli: Invoke, shop: str) -> None:
    podium_cli("experiments", "create", "big-button", *WHERE, *BASIC, "--coverage", "0.02", token=shop)
    podium_cli("experiments", "start", "big-button", *WHERE, token=shop)
    marketing = {"profession": "marketing"}
    send_events(live_server, [
        *exposures("big-button", "control", range(0, 1000), marketing),
        *exposures("big-button", "treatment", range(1000, 2010)),
        *conversions("signup", range(0, 100)), *conversions("signup", range(1000, 1130)),
    ])

    answer = json.loads(podium_cli("experiments", "results", "big-button", *WHERE, "--json", token=shop).stdout)
    assert answer["srm_p_value"] > 0.001
    assert answer["srm_mismatch"] is False
    control, treatment = answer["variants"]
    for row in (control, treatment):
        assert {"users", "conversions", "rate", "lift", "ci_low", "ci_high", "p_value",
                "chance_to_beat_control"} <= row.keys()
    assert (control["users"], control["conversions"]) == (1000, 100)
    assert (treatment["users"], treatment["conversions"]) == (1010, 130)
    assert treatment["lift"] == pytest.approx(130 / 1010 / 0.1 - 1)
    assert treatment["ci_low"] < treatment["lift"] < treatment["ci_high"]

    table = podium_cli("experiments", "results", "big-button", *WHERE, token=shop).stdout
    assert table.startswith("big-button in shop/production: signup (binomial), running\n")
    assert re.search(r"control\s+1000\s+100\s+10\.00%\s+-\s+-\s+-\s+-\n", table)
    interval = re.escape(f"{treatment['ci_low'] * 100:+.1f}% to {treatment['ci_high'] * 100:+.1f}%")
    chance = re.escape(f"{treatment['chance_to_beat_control'] * 100:.1f}%")
    assert re.search(rf"treatment\s+1010\s+130\s+12\.87%\s+\+28\.7%\s+{interval}\s+"
                     rf"{treatment['p_value']:.3f}\s+{chance}\n", table)
    assert f"sample ratio check: p = {answer['srm_p_value']:.3g}, users are split as configured\n" in table

    segmented = json.loads(podium_cli("experiments", "results", "big-button", *WHERE, "--segment",
                                      "profession=marketing", "--json", token=shop).stdout)
    assert segmented["segment"]["attribute"] == "profession"
    assert segmented["segment"]["segment"]["variants"][0]["users"] == 1000
    assert "profession = marketing\n" in podium_cli("experiments", "results", "big-button", *WHERE, "--segment",
                                                   "profession=marketing", token=shop).stdout

    # Over time: every event was sent today, so one day, whose figures are today's results.
    daily = json.loads(podium_cli("experiments", "results", "big-button", *WHERE, "--daily", "--json",
                                  token=shop).stdout)
    (today,) = daily["days"]
    assert [(v["name"], v["users"], v["conversions"]) for v in today["variants"]] == [
        ("control", 1000, 100), ("treatment", 1010, 130)]
    assert today["variants"][1]["p_value"] == pytest.approx(treatment["p_value"])
    table = podium_cli("experiments", "results", "big-button", *WHERE, "--daily", token=shop).stdout
    assert table.startswith("big-button in shop/production: signup (binomial) at the end of each day (UTC), "
                            "cumulative\n")
    assert re.search(r"day\s+variant\s+users\s+rate\s+lift\s+95% interval\s+p-value\s+chance to beat control\n",
                     table)
    assert re.search(rf"{today['day']}\s+control\s+1000\s+10\.00%\s+-\s+-\s+-\s+-\n", table)
    assert re.search(rf"{today['day']}\s+treatment\s+1010\s+12\.87%\s+\+28\.7%\s+{interval}\s+"
                     rf"{treatment['p_value']:.3f}\s+{chance}\n", table)
    both = podium_cli("experiments", "results", "big-button", *WHERE, "--daily", "--segment", "profession=marketing",
                      token=shop, expect=1)
    assert "--daily and --segment" in str(both.exception)


def test_numeric_results_and_guardrails(live_server: Any, podium_cli: Invoke, shop: str) -> None:
    podium_cli("experiments", "create", "free-shipping", *WHERE, "--hypothesis", "free shipping raises revenue",
               "--variants", "control,treatment", "--metric", "revenue", "--metric-kind", "numeric",
               "--guardrail", "error", "--coverage", "0.02", token=shop)
    podium_cli("experiments", "start", "free-shipping", *WHERE, token=shop)
    revenue = [{"id": uuid.uuid4().hex, "type": "metric", "user_id": f"u{n}", "name": "revenue",
                "value": float(10 + n % 7 + (3 if n >= 300 else 0))} for n in range(600)]
    send_events(live_server, [*exposures("free-shipping", "control", range(0, 300)),
                              *exposures("free-shipping", "treatment", range(300, 600)), *revenue,
                              *conversions("error", range(0, 600, 50))])
    answer = json.loads(podium_cli("experiments", "results", "free-shipping", *WHERE, "--json", token=shop).stdout)
    control, treatment = answer["variants"]
    assert control["mean"] == pytest.approx(sum(10 + n % 7 for n in range(300)) / 300)
    assert treatment["lift"] > 0
    assert answer["guardrails"][0]["metric"] == "error"
    table = podium_cli("experiments", "results", "free-shipping", *WHERE, token=shop).stdout
    assert re.search(r"variant\s+users\s+mean\s+lift\s+95% interval\s+p-value\s+chance to beat control\n", table)
    assert re.search(rf"control\s+300\s+{control['mean']:.4g}\s+-", table)
    assert re.search(r"\nguardrail error \(more is worse: the chance to beat control is the chance of fewer\)\n"
                     r"variant\s+users\s+conversions\s+rate", table)


def test_results_show_a_sample_ratio_mismatch(live_server: Any, podium_cli: Invoke, shop: str) -> None:
    podium_cli("experiments", "create", "big-button", *WHERE, *BASIC, "--coverage", "0.02", token=shop)
    podium_cli("experiments", "start", "big-button", *WHERE, token=shop)
    send_events(live_server, [*exposures("big-button", "control", range(0, 1000)),
                              *exposures("big-button", "treatment", range(1000, 1700)),
                              *conversions("signup", range(0, 50)), *conversions("signup", range(1000, 1040))])
    answer = json.loads(podium_cli("experiments", "results", "big-button", *WHERE, "--json", token=shop).stdout)
    assert answer["srm_mismatch"] is True
    assert answer["srm_p_value"] < 0.001
    table = podium_cli("experiments", "results", "big-button", *WHERE, token=shop).stdout
    assert re.search(r"\nWARNING: sample ratio mismatch \(p = .*\): users are not split as configured", table)


@pytest.mark.parametrize("settings_overrides", [{"experiments_stale_days": 0.0}])
def test_a_teams_stale_experiments(podium_cli: Invoke, shop: str) -> None:
    podium_cli("experiments", "create", "old-button", *WHERE, *BASIC, "--coverage", "0.02", token=shop)
    podium_cli("experiments", "create", "draft-button", *WHERE, *BASIC, "--coverage", "0.02", token=shop)
    podium_cli("experiments", "start", "old-button", *WHERE, token=shop)
    stale = podium_cli("experiments", "list", "--team", "growth", "--stale", token=shop).stdout
    assert re.search(r"old-button \(stale\)\s+shop/production\s+running", stale)
    assert "draft-button" not in stale
    every = podium_cli("experiments", "list", "--team", "growth", "--json", token=shop).stdout
    assert sorted(e["key"] for e in json.loads(every)) == ["draft-button", "old-button"]
    assert re.search(r"status\s+running  \(stale: ",
                     podium_cli("experiments", "show", "old-button", *WHERE, token=shop).stdout)


# Bad input, refused before anything is sent ----------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (("--coverage", "0.02", "--weights", "half,half"), "--weights must be numbers separated by commas"),
    (("--coverage", "0.02", "--weights", "0.5,0.3,0.2"), "--weights gives 3 weights for 2 variants"),
    (("--coverage", "0.02", "--weights", "-0.5,1.5"), "--weights must not be negative"),
    (("--coverage", "0"), "--coverage is the share of users exposed: above 0 and at most 1"),
    (("--coverage", "1.5"), "--coverage is the share of users exposed: above 0 and at most 1"),
    (("--coverage", "0.5", "--override-cap"), "--override-cap needs --reason"),
    (("--coverage", "0.5", "--override-cap", "--reason", " "), "--override-cap needs --reason"),
    (("--coverage", "0.02", "--namespace", "ns:0"), "--namespace must be NAME:START:END"),
    (("--coverage", "0.02", "--namespace", "ns:a:b"), "--namespace must be NAME:START:END"),
    (("--coverage", "0.02", "--condition", "country=NL"), "--condition is not JSON"),
    (("--coverage", "0.02", "--condition", "[1]"), "--condition must be a JSON object"),
    (("--coverage", "0.02", "--metric-kind", "ratio"), "--metric-kind must be binomial or numeric"),
])
def test_bad_create_input_is_one_readable_line(args: tuple[str, ...], message: str) -> None:
    result = offline("experiments", "create", "big-button", *WHERE, *BASIC, *args)
    assert message in failed_with(result, Invalid)
    assert "\n" not in str(result.exception)


@pytest.mark.parametrize(("args", "message"), [
    (("decide", "k", *WHERE, "--reason", "r"), "give exactly one of --ship VARIANT or --discard"),
    (("decide", "k", *WHERE, "--ship", "treatment", "--discard", "--reason", "r"), "give exactly one of"),
    (("decide", "k", *WHERE, "--discard", "--reason", ""), "--reason must say why"),
    (("start", "k", *WHERE, "--override-cap"), "--override-cap needs --reason"),
    (("edit", "k", *WHERE), "nothing to change"),
    (("edit", "k", *WHERE, "--weights", "1,x"), "--weights must be numbers"),
    (("results", "k", *WHERE, "--segment", "marketing"), "--segment must be ATTRIBUTE=VALUE"),
    (("list",), "give --service (and --env) for one service environment, or --team"),
    (("list", "--service", "shop", "--stale"), "--stale lists a team's stale experiments: give --team"),
])
def test_bad_input_to_other_commands(args: tuple[str, ...], message: str) -> None:
    assert message in failed_with(offline("experiments", *args), Invalid)


def test_a_usage_error_is_typers_own() -> None:
    result = offline("experiments", "create", "big-button", *WHERE, *BASIC, "--coverage", "lots")
    assert result.exit_code == 2
    assert "Invalid value for '--coverage'" in result.stderr


def offline(*args: str) -> Result:
    """The CLI pointed at a port nothing listens on: whatever it refuses, it refuses before sending."""
    result = CliRunner().invoke(app, list(args), env={"PODIUM_URL": f"http://127.0.0.1:{free_port()}",
                                                      "PODIUM_TOKEN": "pdm_000000000000_unused"})
    assert result.exit_code != 0
    return result


@pytest.mark.parametrize(("share", "text"), [(0.02, "2%"), (0.0125, "1.25%"), (1.0, "100%"), (0.5, "50%")])
def test_shares_read_as_percentages(share: float, text: str) -> None:
    assert experiments.percent(share, 2) == text


def test_each_command_and_option_is_in_docs_cli_md() -> None:
    group = typer.main.get_command(app).commands["experiments"]  # type: ignore[attr-defined]
    for name, command in group.commands.items():
        rows = [line for line in DOC.splitlines() if line.startswith(f"| `experiments {name} ")]
        assert rows, f"experiments {name} is not documented in docs/cli.md"
        assert command.help, f"experiments {name} has no docstring"
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in rows[0], f"experiments {name} {opt} is not documented in docs/cli.md"
