"""People from the command line, as the platform team and a person would type it."""

from __future__ import annotations

import json

from tests.people.conftest import Invoke
from typer.testing import Result


def said(result: Result) -> str:
    """What a failed command tells its user (in-process, the error is left in ``exception``)."""
    return f"{result.stderr}{result.exception}"


def test_a_person_made_by_the_admin_acts_and_the_audit_names_them(podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    podium_cli("users", "create", "ada", "--email", "ada@example.com")
    podium_cli("users", "create", "root", "--email", "root@example.com", "--admin")
    podium_cli("teams", "add-member", "checkout", "ada", "--role", "maintainer")

    users = {u["name"]: u for u in json.loads(podium_cli("users", "list", "--json").stdout)}
    assert users["ada"]["teams"] == {"checkout": "maintainer"}
    assert (users["ada"]["email"], users["root"]["admin"]) == ("ada@example.com", True)

    token = podium_cli("tokens", "create", "--user", "ada", "--name", "laptop", "--expires", "30d").stdout.strip()
    assert token.startswith("pdu_")
    assert "\n" not in token
    assert "user ada" in podium_cli("whoami", token=token).stdout
    podium_cli("services", "create", "cart", "--owner", "checkout", token=token)

    events = json.loads(podium_cli("audit", "--json").stdout)
    created = next(e for e in events if e["action"] == "service.create")
    assert created["actor"]["user"] == "ada"
    assert created["actor"]["token_id"] == token.split("_")[1]
    assert "ada (checkout)" in podium_cli("audit").stdout

    podium_cli("teams", "remove-member", "checkout", "ada")
    refused = podium_cli("services", "update", "cart", "--description", "x", token=token, expect=None)
    assert refused.exit_code != 0
    assert "may not change service 'cart'" in said(refused)


def test_bad_input_is_one_readable_line(podium_cli: Invoke) -> None:
    result = podium_cli("users", "create", "Bad Name", "--email", "x@example.com", expect=None)
    assert result.exit_code != 0
    assert "invalid user name" in said(result)
    result = podium_cli("teams", "add-member", "platform", "nobody", expect=None)
    assert result.exit_code != 0
    assert "user 'nobody' not found" in said(result)
    result = podium_cli("tokens", "create", expect=None)
    assert result.exit_code != 0
    assert "--team" in said(result)
