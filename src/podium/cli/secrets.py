"""``podium secrets rotate-key``: one API call, its answer shown."""

from __future__ import annotations

from typing import Annotated

import typer

from podium.cli.common import connect
from podium.cli.output import print_json, print_table

secrets_app = typer.Typer(help="The key that seals config vars in the store.", no_args_is_help=True)


@secrets_app.command("rotate-key")
def rotate_key(
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
) -> None:
    """Seal every stored config var with a new key and drop the old one (platform team only)."""
    with connect() as api:
        answer = api.post("/api/v1/secrets/rotate-key")
    if as_json:
        print_json(answer)
        return
    print_table(["sealed again", "values"], [(where, str(count)) for where, count in answer["resealed"].items()])
    typer.echo(f"The key in force: {answer['key']}")
