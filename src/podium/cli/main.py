"""``podium``: the command line entry point; each command group lives in its own module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from podium.cli import (
    addons,
    app_tokens,
    billing,
    catalog,
    deploy,
    domains,
    experiments,
    flags,
    health,
    metrics,
    node,
    nodes,
    oncall,
)
from podium.cli import users as users_cli
from podium.cli.output import run_cli
from podium.cli.secrets import secrets_app
from podium.errors import Invalid

app = typer.Typer(help="Podium: deploys, ownership, availability and experiments for product teams.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def root() -> None:
    """Podium: deploys, ownership, availability and experiments for product teams."""


@app.command()
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


app.command()(catalog.login)
app.command()(catalog.whoami)
app.add_typer(catalog.teams, name="teams")
app.add_typer(catalog.tokens, name="tokens")
app.add_typer(users_cli.users, name="users")
app.add_typer(catalog.services, name="services")
app.add_typer(catalog.grants, name="grants")
app.command()(catalog.audit)
app.add_typer(catalog.catalog_app, name="catalog")
app.command()(deploy.deploy)
app.command()(deploy.releases)
app.command()(deploy.rollback)
app.command()(deploy.promote)
app.add_typer(deploy.config_app, name="config")
app.command()(deploy.scale)
app.command()(deploy.ps)
app.command()(deploy.logs)
app.add_typer(health.incidents, name="incidents")
app.add_typer(health.checks, name="checks")
app.add_typer(health.maintenance, name="maintenance")
app.add_typer(oncall.oncall_app, name="oncall")
app.add_typer(metrics.metrics_app, name="metrics")
app.add_typer(metrics.slo_app, name="slo")
app.add_typer(billing.billing_app, name="billing")
app.add_typer(addons.addons_app, name="addons")
app.add_typer(domains.domains_app, name="domains")
app.add_typer(experiments.experiments_app, name="experiments")
app.add_typer(flags.flags_app, name="flags")
app.add_typer(app_tokens.app_token_app, name="app-token")
app.add_typer(nodes.nodes_app, name="nodes")
app.add_typer(secrets_app, name="secrets")
app.add_typer(node.node_app, name="node")


def main() -> None:
    """Console script entry point: builds only the command it runs (``podium.cli.lazy``)."""
    from podium.cli.lazy import LazyRoot

    run_cli(LazyRoot(app))
