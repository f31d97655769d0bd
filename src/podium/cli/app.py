"""The whole ``podium`` Typer app, every command built: for the command reference, the
tests and in-process use. The console script builds only the command it runs instead
(``podium.cli.main``); both come from ``podium.cli.main.TOP_LEVEL``.
"""

from __future__ import annotations

import typer

from podium.cli.main import HELP, TOP_LEVEL


def root() -> None:
    """Podium: deploys, ownership, availability and experiments for product teams."""


def build_app() -> typer.Typer:
    """Every top-level command and group of ``TOP_LEVEL``, in its order."""
    built = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False)
    built.callback()(root)
    for entry in TOP_LEVEL:
        found = entry.load()
        if isinstance(found, typer.Typer):
            built.add_typer(found, name=entry.name)
        else:
            built.command(name=entry.name)(found)
    return built


app = build_app()
