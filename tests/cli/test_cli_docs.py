"""docs/cli.md documents every catalog command and each of its options."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from podium.cli import catalog
from podium.cli.main import app

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
GROUPS = {"teams": catalog.teams, "tokens": catalog.tokens, "services": catalog.services,
          "grants": catalog.grants, "catalog": catalog.catalog_app}
TOP_LEVEL = ["login", "whoami", "audit"]


def catalog_commands() -> list[tuple[str, typer.main.TyperCommand]]:
    root = typer.main.get_command(app)
    found = [(name, root.commands[name]) for name in TOP_LEVEL]  # type: ignore[attr-defined]
    for group in GROUPS:
        sub = root.commands[group]  # type: ignore[attr-defined]
        found += [(f"{group} {name}", command) for name, command in sub.commands.items()]
    return found


@pytest.mark.parametrize(("name", "command"), [pytest.param(n, c, id=n) for n, c in catalog_commands()])
def test_each_command_and_option_is_in_docs_cli_md(name: str, command: typer.main.TyperCommand) -> None:
    rows = [line for line in DOC.splitlines() if line.startswith((f"| `{name} ", f"| `podium {name} "))]
    usage = rows[0] if rows else None
    assert usage is not None, f"{name} is not documented in docs/cli.md"
    assert command.help, f"{name} has no docstring"
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert opt in usage, f"{name} {opt} is not documented in docs/cli.md"
