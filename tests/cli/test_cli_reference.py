"""docs/cli.md's command reference is what the command line generates: every command is in it."""

from __future__ import annotations

from pathlib import Path

import typer

from podium.cli.main import app
from podium.cli.reference import BEGIN, END, reference, replace_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_holds_the_generated_reference() -> None:
    document = DOC.read_text()
    assert replace_reference(document, reference(app)) == document, (
        "docs/cli.md drifted from the command line: run python -m podium.cli.reference --write docs/cli.md"
    )


def test_every_command_has_a_row_with_each_option() -> None:
    generated = reference(app)
    root = typer.main.get_command(app)
    for group in ("deploy", "scale", "logs", "ps", "config set", "node stop", "teams delete", "teams rename"):
        assert f"| `podium {group} " in generated, group
    assert len(root.commands) > 20  # type: ignore[attr-defined]


def test_a_new_command_makes_the_check_fail() -> None:
    @app.command("brand-new-for-this-test")
    def brand_new() -> None:
        """Does nothing."""

    try:
        document = DOC.read_text()
        assert replace_reference(document, reference(app)) != document
        assert "podium brand-new-for-this-test" in reference(app)
    finally:
        app.registered_commands.pop()
    assert DOC.read_text().count(BEGIN) == DOC.read_text().count(END) == 1
