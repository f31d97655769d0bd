"""A CLI command starts without the server's heavy modules, and builds only itself.

Timing is measured by bench/cli.py; here the test asserts what decides it: which modules
``podium --help`` and a simple command import, checked in a fresh interpreter, and that
the shortcuts taken for it say and do what the whole app does.
"""

from __future__ import annotations

import enum
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer

from podium.cli.app import app
from podium.cli.lazy import LazyRoot, defer_coercion
from podium.cli.main import HELP, TOP_LEVEL, root_help

SERVER_SIDE = ("sqlalchemy", "fastapi", "starlette", "uvicorn", "alembic", "jinja2", "scipy", "numpy", "apprise",
               "cryptography", "psycopg", "podium.core", "podium.store", "podium.config")

PROBE = """
import json, sys
sys.argv = ["podium", *sys.argv[1:]]
from podium.cli.main import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
ENV = {"PATH": "/usr/bin:/bin", "PODIUM_URL": "http://127.0.0.1:9", "PODIUM_TOKEN": "pdm_x"}


def imported_by(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=ENV, capture_output=True, text=True,
                          timeout=60, check=False)
    last = done.stderr.strip().splitlines()[-1]
    return {name.split(".")[0] if not name.startswith("podium.") else ".".join(name.split(".")[:2])
            for name in json.loads(last)}


def test_help_imports_nothing_but_the_table_of_commands() -> None:
    loaded = imported_by("--help")
    heavy = {*SERVER_SIDE, "httpx", "pydantic", "typer", "click", "rich"}
    assert not loaded & heavy, loaded & heavy
    assert {name for name in loaded if name.startswith("podium.")} == {"podium.cli"}


def test_a_simple_command_imports_nothing_of_the_server_nor_pydantic() -> None:
    loaded = imported_by("services", "list")  # fails to connect, after importing what it needs
    assert "httpx" in loaded
    heavy = {*SERVER_SIDE, "pydantic", "click", "pygments"}  # click: httpx's own command line
    assert not loaded & heavy, loaded & heavy
    assert {name for name in loaded if name.startswith("podium.cli.")} <= {
        "podium.cli.main", "podium.cli.lazy", "podium.cli.output", "podium.cli.catalog", "podium.cli.common",
        "podium.cli.settings", "podium.cli.client",
    }


def test_the_table_of_commands_lists_what_the_full_app_lists() -> None:
    full = typer.main.get_command(app)
    lazy = LazyRoot(HELP, TOP_LEVEL)
    assert lazy.list_commands(None) == list(full.commands)  # type: ignore[attr-defined]
    assert full.help == HELP
    for name, command in full.commands.items():  # type: ignore[attr-defined]
        assert lazy.helps()[name] == (command.help or "").strip().split("\n\n")[0].replace("\n", " "), name
        assert lazy.get_command(None, name).name == name


@pytest.mark.parametrize("columns", [20, 52, 79, 80, 81, 200])
def test_help_without_typer_is_what_the_root_command_writes(
    columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))  # read by Click's help formatter, as by root_help's caller
    with pytest.raises(SystemExit) as done:
        LazyRoot(HELP, TOP_LEVEL).main(["--help"], prog_name="podium")
    assert done.value.code == 0
    assert root_help(columns) == capsys.readouterr().out


def test_the_console_script_prints_that_help() -> None:
    script = Path(sys.executable).parent / "podium"
    done = subprocess.run([str(script), "--help"], env={**ENV, "COLUMNS": "100"}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == root_help(100)
    assert "  services     Services: each owned by one team, changed only by it.\n" in done.stdout


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def tiny() -> typer.Typer:
    """Options of every kind a command may have, each echoed back as Python sees it."""
    built = typer.Typer()

    @built.command()
    def echo(
        name: Annotated[str, typer.Argument()],
        team: Annotated[str | None, typer.Option()] = None,
        limit: Annotated[int, typer.Option(min=1, max=10)] = 5,
        count: Annotated[int, typer.Option()] = 3,
        ratio: Annotated[float, typer.Option()] = 0.5,
        color: Annotated[Color, typer.Option()] = Color.RED,
        tags: Annotated[list[str] | None, typer.Option("--tag")] = None,
        where: Annotated[Path | None, typer.Option()] = None,
        flag: Annotated[bool, typer.Option("--flag/--no-flag")] = False,
    ) -> None:
        values = [name, team, limit, count, ratio, color, tags, where, flag]
        typer.echo(repr([(type(v).__name__, v) for v in values]))

    @built.command()
    def other() -> None:
        """A second command, so the first is a subcommand of a group."""

    return built


@pytest.mark.parametrize("args", [
    ["echo", "x"],
    ["echo", "x", "--team", "web", "--limit", "7", "--count", "12", "--ratio", "2", "--color", "blue",
     "--tag", "a", "--tag", "b", "--where", "/tmp", "--flag"],
    ["echo", "x", "--limit", "11"],
    ["echo", "x", "--count", "many"],
    ["echo", "x", "--ratio", "half"],
    ["echo", "x", "--color", "green"],
    ["echo", "--help"],
    ["echo"],
])
def test_deferred_coercion_gives_what_typer_gives(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    def run(defer: bool) -> Any:
        command = typer.main.get_command(tiny())
        if defer:
            defer_coercion(command)
        with pytest.raises(SystemExit) as done:
            command.main(args, prog_name="tiny")
        written = capsys.readouterr()
        return done.value.code, written.out, written.err

    assert run(defer=True) == run(defer=False)
