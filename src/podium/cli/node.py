"""``podium node stop|status``: this machine's node (apps, router, embedded PostgreSQL, supervisor).

These read the data dir directly, like ``podium server``: they are run on the node's own
machine, usually while the server is stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from podium.core import Podium

node_app = typer.Typer(help="This machine's node: stop it, or see what runs on it.", no_args_is_help=True)

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="The server's data dir (default ./.podium).")]


def _core(data_dir: Path | None) -> Podium:
    from podium.config import Settings
    from podium.core import Podium
    from podium.errors import NotFound

    given: dict[str, Any] = {"data_dir": data_dir} if data_dir is not None else {}
    settings = Settings(**given)
    if not settings.data_dir.is_dir():
        raise NotFound(f"no Podium data dir at {settings.data_dir}: pass the server's --data-dir")
    return Podium(settings)


@node_app.command("stop")
def stop(data_dir: DataDirOpt = None) -> None:
    """Stop every app, the router, the embedded PostgreSQL and supervisord (the server must be stopped)."""
    from podium.node_control import stop_node

    core = _core(data_dir)
    try:
        stop_node(core)
    finally:
        core.close()
    typer.echo(f"stopped the node of {core.settings.data_dir}")


@node_app.command("status")
def status(data_dir: DataDirOpt = None) -> None:
    """What runs on the node: each live release's processes and the embedded PostgreSQL."""
    from podium.cli.output import print_table
    from podium.node_control import node_status, server_answers

    core = _core(data_dir)
    try:
        now, server = node_status(core), server_answers(core)
    finally:
        core.close()
    typer.echo(f"server: {'answers on ' + core.settings.base_url if server else 'not running'}")
    if not now.running:
        typer.echo("node: stopped")
        return
    typer.echo(f"node: running ({len(now.processes)} processes)")
    rows = [[f"{p.service}/{p.env}" if p.service else "platform", f"v{p.version}" if p.version else "-", p.name,
             p.state, str(p.pid or "-")] for p in now.processes]
    if rows:
        print_table(["service", "release", "process", "state", "pid"], rows)
