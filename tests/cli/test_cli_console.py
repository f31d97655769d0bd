"""The ``podium`` console script as a user runs it: exit codes and one readable line on stderr."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

from tests.cli.conftest import Console, Invoke

from podium.runtime.ports import free_port


def one_error_line(stderr: str) -> str:
    """The single ``error: ...`` line a failed command must print, without its prefix."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0].removeprefix("error: ")


def test_tokens_create_output_is_only_the_token_for_shell_capture(console: Console, podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    created = console("tokens", "create", "--team", "checkout")
    assert created.code == 0
    assert re.fullmatch(r"pdm_[0-9a-f]{12}_[A-Za-z0-9_-]+\n", created.stdout)  # what TOKEN=$(...) keeps
    whoami = console("whoami", "--json", token=created.stdout.strip())
    assert json.loads(whoami.stdout)["team"] == "checkout"


def test_a_foreign_team_is_refused_with_the_owner_named(console: Console, podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    podium_cli("teams", "create", "search")
    podium_cli("services", "create", "cart", "--owner", "checkout")
    search = podium_cli("tokens", "create", "--team", "search").stdout.strip()

    refused = console("services", "update", "cart", "--lifecycle", "deprecated", token=search)
    assert refused.code == 4
    assert one_error_line(refused.stderr) == "team 'search' may not change service 'cart' owned by 'checkout'"
    assert refused.stdout == ""


def test_unknown_duplicate_and_invalid_each_have_their_exit_code(console: Console, podium_cli: Invoke) -> None:
    unknown = console("services", "show", "nope")
    assert (unknown.code, one_error_line(unknown.stderr)) == (5, "service 'nope' not found")

    podium_cli("teams", "create", "checkout")
    duplicate = console("teams", "create", "checkout")
    assert (duplicate.code, one_error_line(duplicate.stderr)) == (6, "team 'checkout' already exists")

    invalid = console("services", "create", "Cart_1", "--owner", "checkout")
    assert invalid.code == 2
    assert one_error_line(invalid.stderr).startswith("invalid service name 'Cart_1': use a lower-case letter")

    no_token = console("teams", "list", token=None)
    assert no_token.code == 3
    assert one_error_line(no_token.stderr).startswith("missing token")


def test_an_unreachable_server_is_named_with_a_hint(console: Console) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    unreachable = console("services", "list", url=url)
    assert unreachable.code == 1
    assert one_error_line(unreachable.stderr) == f"cannot reach Podium at {url}: is `podium server` running?"


def test_delete_with_no_answer_and_no_yes_refuses(console: Console, podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    podium_cli("services", "create", "cart", "--owner", "checkout")
    refused = console("services", "delete", "cart")  # stdin is /dev/null
    assert refused.code == 2
    assert one_error_line(refused.stderr) == "not deleting service 'cart' without a confirmation: pass --yes"
    assert console("services", "delete", "cart", stdin="yes\n").stdout == "deleted service cart\n"


def test_login_is_saved_owner_only_and_used_by_later_commands(
    console: Console, podium_cli: Invoke, live_server: Any, tmp_path: Path
) -> None:
    podium_cli("teams", "create", "checkout")
    token = podium_cli("tokens", "create", "--team", "checkout").stdout.strip()

    login = console("login", "--url", live_server.url, url=None, token=None, stdin=token + "\n")
    assert login.code == 0, login.stderr
    saved = tmp_path / "config" / "podium" / "config.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert token not in login.stdout + login.stderr

    created = console("services", "create", "cart", "--owner", "checkout", url=None, token=None)
    assert created.code == 0, created.stderr
    audit = json.loads(podium_cli("audit", "--service", "cart", "--json").stdout)
    assert [(e["team"], e["action"]) for e in audit] == [("checkout", "service.create")]
