"""``podium server``: the API, the web pages and the local node, in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from podium.errors import Invalid


def server(
    data_dir: Annotated[Path | None, typer.Option(help="Directory for all state (default ./.podium).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    router_port: Annotated[int | None, typer.Option(help="Port of the app router (default 8080).")] = None,
    bind: Annotated[str | None, typer.Option(
        help="Address the API listens on (default 127.0.0.1), like --host.")] = None,
    router_bind: Annotated[str | None, typer.Option(
        help="Address the app router listens on (default 127.0.0.1).")] = None,
    router_tls_port: Annotated[int | None, typer.Option(
        help="Port the router serves custom domains' HTTPS on (default 8443).")] = None,
    base_domain: Annotated[str | None, typer.Option(
        help="Domain apps are served under: <service>.<env>.<base domain> (default localhost).")] = None,
    runtime: Annotated[str | None, typer.Option(
        help="Where releases run: local (default) or swarm (the Docker Swarm at DOCKER_HOST).")] = None,
) -> None:
    """Start the Podium server (API, web pages, and the local node)."""
    import uvicorn
    from pydantic import ValidationError

    from podium.api.app import create_app
    from podium.config import Settings
    from podium.core import Podium

    given: dict[str, Any] = {
        "data_dir": data_dir, "host": bind or host, "port": port, "router_port": router_port, "runtime": runtime,
        "router_host": router_bind, "router_tls_port": router_tls_port, "base_domain": base_domain,
    }
    if runtime not in (None, "local", "swarm"):
        raise Invalid(f"invalid --runtime {runtime!r}: local or swarm")
    if bind is not None and host is not None and bind != host:
        raise Invalid("--bind and --host say the same thing: give one")
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise Invalid("; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())) from None
    core = Podium(settings)
    core.start()
    for line in core.start_runtime():
        typer.echo(f"recovered: {line}", err=True)
    store = settings.store_url.split("://")[0]
    typer.echo(f"Podium {settings.base_url}  (store: {store}, admin token in {settings.admin_token_path.resolve()})",
               err=True)
    typer.echo(f"Apps at http://<service>.<env>.{settings.base_domain}:{settings.router_port}/ "
               f"(router on {settings.router_host})", err=True)
    try:
        uvicorn.run(create_app(core), host=settings.host, port=settings.port, log_level="warning")
    finally:
        core.close()  # apps keep running under the node's supervisord
