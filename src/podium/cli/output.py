"""How the CLI ends: errors become one readable line on stderr and an exit code."""

from __future__ import annotations

import sys

import typer

from podium.errors import Conflict, Forbidden, Invalid, NotFound, PodiumError, Unauthorized

EXIT_CODES: dict[type[PodiumError], int] = {
    Invalid: 2,
    Unauthorized: 3,
    Forbidden: 4,
    NotFound: 5,
    Conflict: 6,
}


def exit_code(error: PodiumError) -> int:
    """The exit code of an error: its class's, or its nearest ancestor's, else 1."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def run_cli(app: typer.Typer) -> None:
    """Run the Typer app, turning a PodiumError into one line on stderr and its exit code.

    Usage errors stay Typer's own (exit 2 with the usage line).
    """
    try:
        app()
    except PodiumError as error:
        typer.echo(f"error: {error.detail}", err=True)
        sys.exit(exit_code(error))
