"""``podium groups``: saved groups from the command line, against a real server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from podium.errors import Conflict, Invalid

Invoke = Callable[..., Result]


def test_groups_from_create_to_a_refused_then_accepted_delete(podium_cli: Invoke, tmp_path: Path) -> None:
    podium_cli("teams", "create", "growth")
    podium_cli("services", "create", "shop", "--owner", "growth")
    made = podium_cli("groups", "create", "beta", "--team", "growth", "--value", "u1", "--value", "u2")
    assert made.stdout == "created saved group beta of team growth: 2 values of id\n"
    ids = tmp_path / "ids.txt"
    ids.write_text("u3\n\nu4\n", encoding="utf-8")
    podium_cli("groups", "set", "beta", "--team", "growth", "--values-file", str(ids))
    podium_cli("groups", "set", "beta", "--team", "growth", "--add", "u5", "--remove", "u3")
    shown = json.loads(podium_cli("groups", "show", "beta", "--team", "growth", "--json").stdout)
    assert shown["values"] == ["u4", "u5"]
    typed = podium_cli("groups", "create", "numbers", "--team", "growth", "--values-json", '[1, "2"]', "--json")
    assert json.loads(typed.stdout)["values"] == [1, "2"]
    listed = podium_cli("groups", "list", "--team", "growth").stdout
    assert "beta" in listed
    assert "numbers" in listed

    podium_cli("flags", "create", "new-ui", "--service", "shop", "--rule",
               '{"condition": {"id": {"$inGroup": "beta"}}, "value": true}')
    assert "flag shop/staging/new-ui" in podium_cli("groups", "show", "beta", "--team", "growth").stdout
    refused = podium_cli("groups", "delete", "beta", "--team", "growth", "--yes", expect=None)
    assert refused.exit_code != 0
    assert isinstance(refused.exception, Conflict)
    assert "used by flag shop/staging/new-ui" in str(refused.exception)
    podium_cli("flags", "delete", "new-ui", "--service", "shop", "--yes")
    deleted = podium_cli("groups", "delete", "beta", "--team", "growth", "--yes")
    assert deleted.stdout == "deleted saved group beta of team growth\n"

    both = podium_cli("groups", "create", "x", "--team", "growth", "--value", "a", "--values-json", "[1]", expect=None)
    assert isinstance(both.exception, Invalid)
    assert "not with --value and --values-json" in str(both.exception)
