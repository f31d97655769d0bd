"""Node commands: the machines releases run on (``list``), and taking one out of service
for maintenance (``drain``) and back (``activate``). One API call each."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from podium.cli.common import connect, seg
from podium.cli.output import print_json, print_table

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer instead of a table.")]
NodeArg = Annotated[str, typer.Argument(help="The node: its id (or a prefix), name, hostname or address.")]

nodes_app = typer.Typer(help="The machines releases run on: list, drain, activate.", no_args_is_help=True)


def _rows(nodes: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [n["id"][:12], n["name"], n["address"], n["role"], n["state"], n["availability"], str(n["tasks"])]
        for n in nodes
    ]


COLUMNS = ["ID", "NAME", "ADDRESS", "ROLE", "STATE", "AVAILABILITY", "TASKS"]


@nodes_app.command("list")
def list_nodes(as_json: JsonFlag = False) -> None:
    """Every node with its state, availability and running tasks."""
    with connect() as api:
        nodes = api.get("/api/v1/nodes")
    if as_json:
        print_json(nodes)
    else:
        print_table(COLUMNS, _rows(nodes), empty="no nodes")


@nodes_app.command("drain")
def drain(node: NodeArg, as_json: JsonFlag = False) -> None:
    """Move every task off the node; the swarm starts them on the others (platform team)."""
    with connect() as api:
        _show(api.post(f"/api/v1/nodes/{seg(node)}/drain"), as_json)


@nodes_app.command("activate")
def activate(node: NodeArg, as_json: JsonFlag = False) -> None:
    """Let a drained node take tasks again (platform team)."""
    with connect() as api:
        _show(api.post(f"/api/v1/nodes/{seg(node)}/activate"), as_json)


def _show(node: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(node)
    else:
        print_table(COLUMNS, _rows([node]))
