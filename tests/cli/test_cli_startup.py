"""A CLI command starts without the server's heavy modules, and builds only itself.

Timing is measured by bench/cli.py; here the test asserts what decides it: which modules
``podium --help`` and a simple command import, checked in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import typer

from podium.cli.lazy import LazyRoot
from podium.cli.main import app

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


def imported_by(*args: str) -> set[str]:
    env = {"PATH": "/usr/bin:/bin", "PODIUM_URL": "http://127.0.0.1:9", "PODIUM_TOKEN": "pdm_x"}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    last = done.stderr.strip().splitlines()[-1]
    return {name.split(".")[0] if not name.startswith("podium.") else ".".join(name.split(".")[:2])
            for name in json.loads(last)}


def test_help_imports_nothing_of_the_server_nor_the_http_client() -> None:
    loaded = imported_by("--help")
    assert not loaded & {*SERVER_SIDE, "httpx", "pydantic"}, loaded & {*SERVER_SIDE, "httpx", "pydantic"}


def test_a_simple_command_imports_nothing_of_the_server() -> None:
    loaded = imported_by("services", "list")  # fails to connect, after importing what it needs
    assert "httpx" in loaded
    assert not loaded & set(SERVER_SIDE), loaded & set(SERVER_SIDE)


def test_the_lazy_root_lists_what_the_full_app_lists() -> None:
    full = typer.main.get_command(app)
    lazy = LazyRoot(app)
    assert set(lazy.list_commands(None)) == set(full.commands)  # type: ignore[attr-defined]
    for name, command in full.commands.items():  # type: ignore[attr-defined]
        assert lazy.helps()[name] == (command.help or "").strip().split("\n\n")[0].replace("\n", " "), name
        assert lazy.get_command(None, name).name == name
