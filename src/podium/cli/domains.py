"""Custom domain commands: add (with an uploaded certificate, or one issued over ACME), list, remove.

With ``--json`` stdout gets exactly one JSON document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from podium.cli.common import JsonFlag, ServiceOpt, connect, env_path, seg
from podium.cli.output import print_json, print_table, when
from podium.errors import Invalid

domains_app = typer.Typer(help="Custom domains of a service environment, served over HTTPS.", no_args_is_help=True)

RequiredEnvOpt = Annotated[str, typer.Option("--env", "-e", help="The environment: staging or production.")]
NameArg = Annotated[str, typer.Argument(help="The domain, e.g. shop.example.com.")]


def domains_path(service: str, env: str) -> str:
    return f"{env_path(service, env)}/domains"


def read_pem(path: Path, what: str) -> str:
    """A PEM file's text; Invalid naming the file when it cannot be read."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read the {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


def tls_text(domain: dict[str, Any]) -> str:
    """The certificate's state as one short cell."""
    if domain["tls"] in ("issued", "uploaded") and domain["expires_at"]:
        return f"{domain['tls']} (expires {when(domain['expires_at'])})"
    return str(domain["tls"])


@domains_app.command("add")
def add(
    name: NameArg,
    service: ServiceOpt,
    env: RequiredEnvOpt,
    cert: Annotated[Path | None, typer.Option("--cert", help="PEM certificate chain, the leaf first.")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="PEM private key of --cert.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Route a domain to a service environment; HTTPS with --cert/--key, or once a certificate is issued."""
    if (cert is None) != (key is None):
        raise Invalid("--cert and --key go together")
    body: dict[str, Any] = {"name": name}
    if cert is not None and key is not None:
        body |= {"certificate": read_pem(cert, "certificate"), "key": read_pem(key, "key")}
    with connect() as api:
        domain = api.post(domains_path(service, env), json=body)
    if as_json:
        print_json(domain)
        return
    if domain["tls"] == "uploaded":
        typer.echo(f"{domain['name']} routes to {service}/{env} over HTTPS (certificate expires "
                   f"{when(domain['expires_at'])})")
    else:
        typer.echo(f"{domain['name']} routes to {service}/{env}; its certificate is pending: "
                   f"podium domains list --service {service} --env {env} shows when it is issued")


@domains_app.command("list")
def list_domains(service: ServiceOpt, env: RequiredEnvOpt, as_json: JsonFlag = False) -> None:
    """List a service environment's custom domains and their certificates."""
    with connect() as api:
        rows = api.get(domains_path(service, env))
    if as_json:
        print_json(rows)
        return
    print_table(
        ["name", "tls", "error", "added"],
        [[d["name"], tls_text(d), d["error"] or "-", f"{when(d['created_at'])} by {d['created_by']}"] for d in rows],
        empty=f"{service}/{env} has no custom domains",
    )


@domains_app.command("remove")
def remove(name: NameArg, service: ServiceOpt, env: RequiredEnvOpt) -> None:
    """Stop routing a domain and delete its certificate."""
    with connect() as api:
        api.delete(f"{domains_path(service, env)}/{seg(name)}")
    typer.echo(f"{name} no longer routes to {service}/{env}")
