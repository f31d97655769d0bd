"""Database add-on commands: create, list, info, destroy, credentials rotate, backup, backups list, restore.

A command that sets or changes ``DATABASE_URL`` follows the release it rolled out on
stderr and exits ≠ 0 unless it went live. With ``--json`` stdout gets exactly one JSON
document; ``podium addons backup`` without it prints only the backup's id, so
``id=$(podium addons backup …)`` works.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from podium.cli.common import EnvOpt, JsonFlag, ServiceOpt, connect, env_path, seg
from podium.cli.deploy import fail, went_live
from podium.cli.output import notice, print_fields, print_json, print_table, when
from podium.cli.progress import StageDisplay, err_console, size_text
from podium.errors import PodiumError

addons_app = typer.Typer(help="Database add-ons: PostgreSQL per service environment, DATABASE_URL, backups.",
                         no_args_is_help=True)
credentials_app = typer.Typer(help="An add-on's credentials.", no_args_is_help=True)
backups_app = typer.Typer(help="An add-on's backups.", no_args_is_help=True)
addons_app.add_typer(credentials_app, name="credentials")
addons_app.add_typer(backups_app, name="backups")

RequiredEnvOpt = Annotated[str, typer.Option("--env", "-e", help="The environment: staging or production.")]
LONG = 3600.0  # a backup or restore of a large database takes as long as it takes
ROTATION_WAIT = 60.0

if TYPE_CHECKING:
    from podium.cli.client import ApiClient


def addon_path(service: str, env: str) -> str:
    return f"{env_path(service, env)}/addon"


@contextmanager
def working(text: str) -> Iterator[None]:
    """A spinner on a terminal, one line elsewhere; on stderr either way."""
    console = err_console()
    if console.is_terminal:
        with console.status(text):
            yield
    else:
        notice(f"{text}…")
        yield


def follow_release(api: ApiClient, service: str, env: str, release: dict[str, Any]) -> dict[str, Any]:
    """Show a rollout's stages on stderr until it ends; the final release, or exit 1 when it failed."""
    version = str(release["version"])
    final: dict[str, Any] | None = None
    with StageDisplay(version) as display:
        path = f"{env_path(service, env)}/releases/{seg(version)}/events"
        for event in api.stream_json_lines("GET", path, timeout=None):
            if event.get("final"):
                final = {k: v for k, v in event.items() if k != "final"}
                break
            display.event(event)
    if final is None:
        raise PodiumError(f"the event stream of {version} ended early; see podium releases --service {service}")
    if not went_live(final):
        fail(api, service, env, final)
    return final


def addon_fields(addon: dict[str, Any]) -> list[tuple[str, str]]:
    size = addon["size_bytes"]
    fields = [
        ("add-on", f"{addon['kind']} ({addon['plan']}) in {addon['service']}/{addon['env']}"),
        ("state", addon["state"]),
        ("server", f"{addon['server']} ({addon['server_kind']})"),
        ("database", addon["database"]),
        ("role", addon["role"] + ("  (rotation pending: the old login still works)" if addon["rotation_pending"]
                                  else "")),
        ("connections", f"at most {addon['connection_limit']}"),
        ("size", f"{size_text(size)} of {size_text(addon['storage_quota_bytes'])} "
                 f"(sampled {when(addon['size_sampled_at'])})" if size is not None
         else f"not sampled yet; the plan is sized for {size_text(addon['storage_quota_bytes'])}"),
        ("created", f"{when(addon['created_at'])} by {addon['created_by']}"),
    ]
    if addon["rotated_at"]:
        fields.append(("rotated", when(addon["rotated_at"])))
    if addon["destroyed_at"]:
        fields.append(("destroyed", when(addon["destroyed_at"])))
    fields.append(("DATABASE_URL", addon["url"] or "(hidden: --show-url shows it)"))
    return fields


@addons_app.command("create")
def create(
    kind: Annotated[str, typer.Argument(help="The kind of add-on: postgres.")],
    service: ServiceOpt,
    env: EnvOpt = "staging",
    plan: Annotated[str, typer.Option(help="small (20 connections, 1 GB) or medium (60, 10 GB).")] = "small",
    as_json: JsonFlag = False,
) -> None:
    """Provision a database and set DATABASE_URL; with a live release, roll out a new one and follow it."""
    with connect() as api:
        with working(f"provisioning a {kind} database for {service}/{env}"):
            answer = api.post(addon_path(service, env), json={"kind": kind, "plan": plan}, timeout=LONG)
        if answer["release"] is not None:
            answer["release"] = follow_release(api, service, env, answer["release"])
    if as_json:
        print_json(answer)
        return
    addon, release = answer["addon"], answer["release"]
    where = f"{service}/{env}"
    typer.echo(f"{addon['database']} is ready; DATABASE_URL is set in {where}"
               + (f" and {release['version']} is live" if release else ": the next deploy uses it"))


@addons_app.command("list")
def list_addons(
    service: ServiceOpt,
    all_: Annotated[bool, typer.Option("--all", help="Include destroyed add-ons.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List a service's database add-ons."""
    with connect() as api:
        rows = api.get(f"/api/v1/services/{seg(service)}/addons", params={"all": all_})
    if as_json:
        print_json(rows)
        return
    print_table(
        ["env", "kind", "plan", "state", "database", "size", "created"],
        [[a["env"], a["kind"], a["plan"], a["state"], a["database"],
          size_text(a["size_bytes"]) if a["size_bytes"] is not None else "-", when(a["created_at"])] for a in rows],
        empty=f"{service} has no database add-ons",
    )


@addons_app.command("info")
def info(
    service: ServiceOpt,
    env: EnvOpt = "staging",
    show_url: Annotated[bool, typer.Option("--show-url", help="Show DATABASE_URL, password included.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show an environment's add-on: server, database, role, size; the URL only with --show-url."""
    with connect() as api:
        addon = api.get(addon_path(service, env), params={"show_url": show_url})
    if as_json:
        print_json(addon)
        return
    print_fields(addon_fields(addon))


@addons_app.command("destroy")
def destroy(
    service: ServiceOpt,
    env: RequiredEnvOpt,
    confirm: Annotated[str | None, typer.Option(help="The service's name: destroying deletes the data.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Keep a final backup, unset DATABASE_URL, and drop the database and its roles."""
    with connect() as api:
        with working(f"taking a final backup of {service}/{env}, then dropping the database"):
            answer = api.delete(addon_path(service, env), params={"confirm": confirm} if confirm else {},
                                timeout=LONG)
        if answer["release"] is not None:
            answer["release"] = follow_release(api, service, env, answer["release"])
    if as_json:
        print_json(answer)
        return
    final = answer["final_backup"]
    typer.echo(f"destroyed {answer['addon']['database']}; final backup {final['id']} "
               f"({size_text(final['size'])}) is kept: podium addons backups list --service {service} --env {env}")


@credentials_app.command("rotate")
def rotate(service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """A new login and password in a new release; the old one stops working once that release is live."""
    with connect() as api:
        answer = api.post(f"{addon_path(service, env)}/credentials/rotate")
        if answer["release"] is not None:
            answer["release"] = follow_release(api, service, env, answer["release"])
        answer["addon"] = wait_rotated(api, service, env)
    if as_json:
        print_json(answer)
        return
    typer.echo(f"{service}/{env} now logs in as {answer['addon']['role']}; the old password no longer works")


def wait_rotated(api: ApiClient, service: str, env: str) -> dict[str, Any]:
    """The add-on once the old login is gone: the server drops it right after the release went live."""
    deadline = time.monotonic() + ROTATION_WAIT
    while True:
        addon: dict[str, Any] = api.get(addon_path(service, env))
        if not addon["rotation_pending"]:
            return addon
        if time.monotonic() > deadline:
            raise PodiumError(f"the old login of {service}/{env} still works {ROTATION_WAIT:g}s after the release "
                              "went live; podium addons info shows when it is gone")
        time.sleep(0.2)


@addons_app.command("backup")
def backup(service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """Back the database up now (pg_dump, checksummed); prints the backup's id."""
    with connect() as api, working(f"backing up {service}/{env}"):
        made = api.post(f"{addon_path(service, env)}/backups", timeout=LONG)
    if as_json:
        print_json(made)
        return
    notice(f"backup {made['id']} of {service}/{env}: {size_text(made['size'])} in {made['seconds']:.1f}s, "
           f"sha256 {made['sha256'][:12]}…")
    typer.echo(str(made["id"]))


@backups_app.command("list")
def list_backups(service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """List an environment's backups, newest first (destroyed add-ons' included)."""
    with connect() as api:
        rows = api.get(f"{addon_path(service, env)}/backups")
    if as_json:
        print_json(rows)
        return
    print_table(
        ["id", "kind", "size", "taken", "by", "sha256"],
        [[str(b["id"]), b["kind"], size_text(b["size"]), when(b["created_at"]), b["created_by"], b["sha256"][:12]]
         for b in rows],
        empty=f"no backups of {service}/{env} yet",
    )


@addons_app.command("restore")
def restore(
    service: ServiceOpt,
    env: RequiredEnvOpt,
    backup_id: Annotated[int, typer.Option("--backup", help="The backup's id (podium addons backups list).")],
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup into the environment's database, after a safety backup of what is there now."""
    with connect() as api, working(f"restoring backup {backup_id} into {service}/{env}"):
        done = api.post(f"{addon_path(service, env)}/restore", json={"backup": backup_id}, timeout=LONG)
    if as_json:
        print_json(done)
        return
    typer.echo(f"restored backup {backup_id} into {service}/{env} in {done['seconds']:.1f}s; to undo, restore "
               f"safety backup {done['safety_backup']['id']}")
