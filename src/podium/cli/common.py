"""What every command group shares: the client of the current login, the usual options,
URL path segments, and asking before a deletion."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

import typer

from podium.cli import settings
from podium.cli.output import notice
from podium.errors import Invalid

if TYPE_CHECKING:  # httpx is imported by the first command that talks to the server
    from podium.cli.client import ApiClient

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer instead of a table.")]
TeamOpt = Annotated[str, typer.Option("--team", "-t", help="The team.")]
ServiceOpt = Annotated[str, typer.Option("--service", "-s", help="The service.")]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="The environment: staging or production.")]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def connect() -> ApiClient:
    """A client for the server and token of the current login (env vars, else saved file)."""
    from podium.cli.client import ApiClient

    return ApiClient.from_login(settings.load())


def confirm(question: str) -> bool | None:
    """Ask on a terminal, or read one answer line from piped stdin; None when nobody answers."""
    if sys.stdin is None or not sys.stdin.isatty():
        answer = sys.stdin.readline() if sys.stdin is not None else ""
        return answer.strip().lower() in ("y", "yes") if answer else None
    try:
        return typer.confirm(question, err=True)
    except typer.Abort:
        return None


def confirm_deletion(kind: str, name: str, question: str, yes: bool) -> None:
    """Return when ``yes`` or the user says yes; Invalid when nobody answers, exit 1 on a no."""
    if yes:
        return
    answer = confirm(question)
    if answer is None:
        raise Invalid(f"not deleting {kind} {name!r} without a confirmation: pass --yes")
    if not answer:
        notice(f"kept {kind} {name}")
        raise typer.Exit(1)


def seg(name: str) -> str:
    """A name as one URL path segment: a ``?`` or ``#`` in it stays part of the name."""
    return quote(name, safe="")


def env_path(service: str, env: str) -> str:
    """The API path of a service environment."""
    return f"/api/v1/services/{seg(service)}/environments/{seg(env)}"
