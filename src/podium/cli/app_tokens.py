"""App token commands: show and rotate the token deployed apps get as PODIUM_TOKEN.

The token itself is never printed: only the app sees it, in its environment.
"""

from __future__ import annotations

import typer

from podium.cli.addons import follow_release
from podium.cli.common import EnvOpt, JsonFlag, ServiceOpt, connect, env_path
from podium.cli.output import print_fields, print_json, when

app_token_app = typer.Typer(
    help="The token deployed apps get as PODIUM_TOKEN (definitions, evaluate, events of their own environment).",
    no_args_is_help=True,
)


@app_token_app.command("show")
def show(service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """The environment's app token: its id and when it was made (never the secret)."""
    with connect() as api:
        token = api.get(f"{env_path(service, env)}/app-token")
    if as_json:
        print_json(token)
        return
    print_fields([("app token", token["id"]), ("of", f"{service}/{env}"), ("made", when(token["created_at"]))])


@app_token_app.command("rotate")
def rotate(service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """Revoke the app token at once and roll out a release carrying a new one (for a token that leaked)."""
    with connect() as api:
        answer = api.post(f"{env_path(service, env)}/app-token/rotate")
        if answer["release"] is not None:
            answer["release"] = follow_release(api, service, env, answer["release"])
    if as_json:
        print_json(answer)
        return
    release = answer["release"]
    typer.echo(
        f"{service}/{env} has app token {answer['token']['id']}; the old one no longer works"
        + (f"; {release['version']} carries the new one and is live" if release else "; the next deploy carries it")
    )
