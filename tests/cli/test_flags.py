"""``podium flags``: run in-process against a real server, as a product team would."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from podium.cli.main import app
from podium.errors import Forbidden, Invalid, NotFound
from podium.experiments.assign import hash
from podium.runtime.ports import free_port

Invoke = Callable[..., Result]
DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
WHERE = ("--service", "shop", "--env", "production")


def failed_with(result: Result, error: type[Exception]) -> str:
    assert isinstance(result.exception, error), (result.exception, result.stdout, result.stderr)
    return str(result.exception)


@pytest.fixture
def shop(podium_cli: Invoke) -> str:
    """A token of team growth, which owns service shop."""
    podium_cli("teams", "create", "growth")
    token = str(podium_cli("tokens", "create", "--team", "growth").stdout.strip())
    podium_cli("services", "create", "shop", "--owner", "growth", token=token)
    return token


def gets(podium_cli: Invoke, token: str, user: str, *attributes: str) -> object:
    """What the evaluate endpoint answers for one user and flag new-checkout."""
    answer = podium_cli("flags", "evaluate", *WHERE, "--user", user, *attributes, "--json", token=token).stdout
    return json.loads(answer)["flags"]["new-checkout"]


def test_a_flag_round_trip(podium_cli: Invoke, shop: str) -> None:
    made = podium_cli("flags", "create", "new-checkout", *WHERE, "--description", "The one-page checkout",
                      "--value", '"one-page"', "--default", '"classic"', token=shop).stdout
    assert made == ("created flag new-checkout in shop/production is off: \"one-page\" for 100% of users, "
                    "else \"classic\"\n")
    assert gets(podium_cli, shop, "u1") == "classic"

    podium_cli("flags", "enable", "new-checkout", *WHERE, token=shop)
    assert gets(podium_cli, shop, "u1") == "one-page"

    # 10% of users, and everyone in the Netherlands.
    users = [f"u{n}" for n in range(60)]
    inside = next(u for u in users if (hash("new-checkout", u, 2) or 1) < 0.1)
    outside = next(u for u in users if (hash("new-checkout", u, 2) or 0) >= 0.1)
    changed = podium_cli("flags", "set", "new-checkout", *WHERE, "--rollout", "0.1", "--rule",
                         '{"condition": {"country": "NL"}, "value": "dutch"}', token=shop).stdout
    assert changed == ("updated flag new-checkout in shop/production is on: \"one-page\" for 10% of users and "
                       "1 rule, else \"classic\"\n")
    assert gets(podium_cli, shop, inside) == "one-page"
    assert gets(podium_cli, shop, outside) == "classic"
    assert gets(podium_cli, shop, outside, "--attributes", '{"country": "NL"}') == "dutch"

    shown = podium_cli("flags", "show", "new-checkout", *WHERE, token=shop).stdout
    assert re.search(r"state\s+enabled\n", shown)
    assert re.search(r"rollout\s+10% of users\n", shown)
    assert re.search(r'rule 1\s+if \{"country": "NL"\} then "dutch"\n', shown)
    assert re.search(r"description\s+The one-page checkout\n", shown)
    listed = podium_cli("flags", "list", *WHERE, token=shop).stdout
    assert re.search(r'new-checkout\s+on\s+"one-page"\s+"classic"\s+10%\s+1\s+The one-page checkout\n', listed)
    body = json.loads(podium_cli("flags", "show", "new-checkout", *WHERE, "--json", token=shop).stdout)
    assert body["rules"] == [{"condition": {"country": "NL"}, "value": "dutch"}]
    assert body["rollout"] == 0.1

    podium_cli("flags", "set", "new-checkout", *WHERE, "--no-rules", token=shop)
    assert gets(podium_cli, shop, outside, "--attributes", '{"country": "NL"}') == "classic"
    podium_cli("flags", "disable", "new-checkout", *WHERE, token=shop)
    assert gets(podium_cli, shop, inside) == "classic"
    table = podium_cli("flags", "evaluate", *WHERE, "--user", inside, token=shop).stdout
    assert re.search(r'flag\s+new-checkout\s+"classic"\n', table)

    podium_cli("teams", "create", "search")
    other = podium_cli("tokens", "create", "--team", "search").stdout.strip()
    failed_with(podium_cli("flags", "enable", "new-checkout", *WHERE, token=other, expect=1), Forbidden)
    assert podium_cli("flags", "delete", "new-checkout", *WHERE, "--yes", token=shop).stdout == \
        "deleted flag new-checkout from shop/production\n"
    failed_with(podium_cli("flags", "show", "new-checkout", *WHERE, token=shop, expect=1), NotFound)
    assert podium_cli("flags", "list", *WHERE, token=shop).stderr == "no flags in shop/production\n"


def test_a_bad_value_from_the_server_is_one_line(podium_cli: Invoke, shop: str) -> None:
    podium_cli("flags", "create", "new-checkout", *WHERE, token=shop)
    taken = podium_cli("flags", "create", "new-checkout", *WHERE, token=shop, expect=1)
    assert "\n" not in str(taken.exception)
    bad_key = podium_cli("flags", "create", "New Checkout", *WHERE, token=shop, expect=1)
    assert "\n" not in failed_with(bad_key, Invalid)


# Bad input, refused before anything is sent ----------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (("create", "f", *WHERE, "--value", "blue"), "--value is not JSON: 'blue' (a string needs quotes"),
    (("create", "f", *WHERE, "--default", "{"), "--default is not JSON"),
    (("create", "f", *WHERE, "--rollout", "1.5"), "--rollout is the share of users the flag is on for, from 0 to 1"),
    (("create", "f", *WHERE, "--rule", '{"condition": {"country": "NL"}}'), "--rule needs a condition object"),
    (("create", "f", *WHERE, "--rule", "[]"), "--rule must be a JSON object"),
    (("set", "f", *WHERE), "nothing to change"),
    (("set", "f", *WHERE, "--no-rules", "--rule", '{"condition": {}, "value": 1}'), "not both"),
    (("set", "f", *WHERE, "--rollout", "-0.1"), "--rollout is the share"),
    (("evaluate", *WHERE, "--user", "u1", "--attributes", "NL"), "--attributes is not JSON"),
])
def test_bad_input_is_one_readable_line(args: tuple[str, ...], message: str) -> None:
    result = CliRunner().invoke(app, ["flags", *args], env={"PODIUM_URL": f"http://127.0.0.1:{free_port()}",
                                                             "PODIUM_TOKEN": "pdm_000000000000_unused"})
    assert message in failed_with(result, Invalid)
    assert "\n" not in str(result.exception)


def test_each_command_and_option_is_in_docs_cli_md() -> None:
    group = typer.main.get_command(app).commands["flags"]  # type: ignore[attr-defined]
    for name, command in group.commands.items():
        rows = [line for line in DOC.splitlines() if line.startswith(f"| `flags {name} ")]
        assert rows, f"flags {name} is not documented in docs/cli.md"
        assert command.help, f"flags {name} has no docstring"
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert opt in rows[0], f"flags {name} {opt} is not documented in docs/cli.md"
