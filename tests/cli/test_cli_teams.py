"""podium teams rename|delete as the platform team types them."""

from __future__ import annotations

from tests.cli.conftest import Invoke

from podium.errors import Conflict


def test_rename_then_delete_a_team_from_the_command_line(podium_cli: Invoke) -> None:
    podium_cli("teams", "create", "checkout")
    podium_cli("services", "create", "cart", "--owner", "checkout")
    assert podium_cli("teams", "rename", "checkout", "payments").stdout == "renamed team checkout to payments\n"

    refused = podium_cli("teams", "delete", "payments", "--yes", expect=1)
    assert isinstance(refused.exception, Conflict)  # run_cli prints its detail and exits with its code
    assert refused.exception.detail == "team 'payments' still owns cart: transfer or delete them first"

    podium_cli("services", "delete", "cart", "--yes")
    assert podium_cli("teams", "delete", "payments", "--yes").stdout == "deleted team payments\n"
    assert "payments" not in podium_cli("teams", "list", "--json").stdout
