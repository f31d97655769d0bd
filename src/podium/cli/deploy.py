"""Deploy commands: deploy, releases, rollback, promote, config, scale, ps, logs.

Every command that makes a release (deploy, rollback, promote, config set/unset, scale)
ends in :func:`follow`: it shows the rollout's stages as they happen and exits 0 only
when the release is live. Errors from the API are left to ``output.run_cli``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from podium.cli.common import EnvOpt, JsonFlag, ServiceOpt, connect, env_path, seg
from podium.cli.output import ago, notice, parse_time, print_json, print_table
from podium.cli.progress import StageDisplay, UploadBar
from podium.errors import Invalid, PodiumError

FAILED_EXIT = 1
INTERRUPTED_EXIT = 130
UPLOAD_TIMEOUT = 300.0  # the server checks the slug and may start the node before it answers

if TYPE_CHECKING:
    from podium.cli.client import ApiClient


# Following a release -----------------------------------------------------------------


def follow(api: ApiClient, service: str, env: str, release: dict[str, Any], *, as_json: bool) -> None:
    """Follow a release's rollout until it is live or failed; exit ≠ 0 unless it went live.

    Progress goes to stderr. On success stdout gets one line, or the final release JSON
    with ``as_json``; on failure stderr gets ``error: vN failed at <stage>: <reason>``
    and the app's last log lines, and the command exits 1.
    """
    version = str(release["version"])
    final: dict[str, Any] | None = None
    try:
        with StageDisplay(version) as display:
            events = api.stream_json_lines(
                "GET", f"{env_path(service, env)}/releases/{seg(version)}/events", timeout=None
            )
            for event in events:
                if event.get("final"):
                    final = {k: v for k, v in event.items() if k != "final"}
                    break
                display.event(event)
    except KeyboardInterrupt:
        notice(f"stopped following; the rollout of {version} goes on: podium releases --service {service}"
               f" --env {env}")
        raise typer.Exit(INTERRUPTED_EXIT) from None
    if final is None:
        raise PodiumError(f"the event stream of {version} ended early; see podium releases --service {service}")
    if as_json:
        print_json(final)
    if went_live(final):
        if not as_json:
            typer.echo(f"{version} is live in {service}/{env}{took(final)}")
        return
    if final["status"] != "failed":  # the server stopped sending events before the end
        raise PodiumError(f"{version} is still {final['status']} at {final['stage']}; "
                          f"check on it with podium releases --service {service} --env {env}")
    fail(api, service, env, final)


def went_live(release: dict[str, Any]) -> bool:
    """Live now, or live and already replaced by a newer release while we followed."""
    return release["status"] == "live" or (release["status"] == "superseded" and bool(release.get("live_at")))


def took(release: dict[str, Any]) -> str:
    """`` (2.3s)``: how long the rollout took from its first stage to live, when known."""
    if not release.get("started_at") or not release.get("live_at"):
        return ""
    seconds = (parse_time(release["live_at"]) - parse_time(release["started_at"])).total_seconds()
    return f" ({seconds:.1f}s)"


def failure_line(release: dict[str, Any]) -> str:
    """``vN failed at <stage>: <reason>``; the API's reason already starts with the stage."""
    stage = str(release.get("stage") or "?")
    reason = str(release.get("failure_reason") or release["status"])
    reason = reason.removeprefix(f"{stage}: ")
    return f"{release['version']} failed at {stage}: {reason}"


def fail(api: ApiClient, service: str, env: str, release: dict[str, Any]) -> NoReturn:
    """Explain a failed release on stderr and exit 1; say what still serves."""
    notice(f"error: {failure_line(release)}")
    for line in (release.get("log_tail") or "").splitlines():
        notice(f"    {line}")
    live = live_version(api, service, env)
    notice(f"{live} is still live" if live else f"nothing is live in {service}/{env}")
    raise typer.Exit(FAILED_EXIT)


def live_version(api: ApiClient, service: str, env: str) -> str | None:
    try:
        releases = api.get(f"{env_path(service, env)}/releases", params={"limit": 50})
    except PodiumError:
        return None  # the failure itself was reported; this is only a hint
    return next((str(r["version"]) for r in releases if r["status"] == "live"), None)


# Deploy ------------------------------------------------------------------------------


def deploy(
    path: Annotated[Path, typer.Argument(help="An app directory (with a Procfile) or a slug (.tgz).")],
    service: ServiceOpt,
    env: EnvOpt = "staging",
    commit: Annotated[str | None, typer.Option(help="The commit the app was built from.")] = None,
    description: Annotated[str, typer.Option(help="What this deploy changes.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Deploy a directory or slug: upload, roll out with a health check, follow until live."""
    if not path.exists():
        raise Invalid(f"{path}: no such file or directory")
    with tempfile.TemporaryDirectory(prefix="podium-") as scratch:
        if path.is_dir():
            from podium.artifacts.pack import pack_directory  # pydantic: only when packing

            slug, label = pack_directory(path, Path(scratch) / "slug.tgz"), f"{path.resolve().name}.tgz"
        else:
            slug, label = path, path.name
        params = {k: v for k, v in {"commit": commit, "description": description}.items() if v}
        with connect() as api:
            # A wrong service or environment fails here, before a large upload is sent.
            api.get(f"{env_path(service, env)}/releases", params={"limit": 1})
            with UploadBar(label, slug.stat().st_size) as bar:
                release = api.upload(
                    f"{env_path(service, env)}/deploys", slug, bar.update, content_type="application/gzip",
                    params=params, timeout=UPLOAD_TIMEOUT,
                )
            follow(api, service, env, release, as_json=as_json)


# Releases, rollback, promote ---------------------------------------------------------


def releases(
    service: ServiceOpt,
    env: EnvOpt = "staging",
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many releases.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """List releases, newest first: status, what changed, who, when, and why one failed."""
    with connect() as api:
        rows = api.get(f"{env_path(service, env)}/releases", params={"limit": limit})
    if as_json:
        print_json(rows)
        return
    print_table(
        ["version", "status", "description", "by", "when", "failure reason"],
        [[r["version"], r["status"], r["description"], r["created_by"], ago(r["created_at"]),
          r["failure_reason"] or ""] for r in rows],
        empty=f"no releases in {service}/{env} yet",
    )


def rollback(
    service: ServiceOpt,
    env: EnvOpt = "staging",
    to: Annotated[str | None, typer.Option("--to", help="The release to go back to, e.g. v3 (default: the "
                                                         "one before the live one).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make a new release from an older one's artifact and config, and follow it."""
    with connect() as api:
        release = api.post(f"{env_path(service, env)}/rollback", json={"to": to})
        follow(api, service, env, release, as_json=as_json)


def promote(service: ServiceOpt, as_json: JsonFlag = False) -> None:
    """Roll staging's live artifact out to production, with production's own config."""
    with connect() as api:
        release = api.post(f"/api/v1/services/{seg(service)}/promote",
                           json={"from": "staging", "to": "production"})
        follow(api, service, "production", release, as_json=as_json)


# Config ------------------------------------------------------------------------------

config_app = typer.Typer(help="Config vars: a change makes and rolls out a new release.", no_args_is_help=True)


def parse_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a dict; Invalid for one without ``=``."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise Invalid(f"invalid argument {pair!r}: use KEY=VALUE")
        parsed[key] = value
    return parsed


@config_app.command("get")
def config_get(service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """Show the config vars of a service environment as KEY=VALUE lines."""
    with connect() as api:
        config = api.get(f"{env_path(service, env)}/config")
    if as_json:
        print_json(config)
        return
    if not config:
        notice(f"no config vars in {service}/{env}")
    for key, value in sorted(config.items()):
        typer.echo(f"{key}={value}")


def change_config(service: str, env: str, body: dict[str, Any], *, as_json: bool) -> None:
    with connect() as api:
        answer = api.patch(f"{env_path(service, env)}/config", json=body)
        if answer["release"] is None:
            if as_json:
                print_json(answer)
            else:
                typer.echo(f"config of {service}/{env} saved; nothing is live yet, so the next deploy uses it")
            return
        follow(api, service, env, answer["release"], as_json=as_json)


@config_app.command("set")
def config_set(
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", help="Config vars to set.")],
    service: ServiceOpt,
    env: EnvOpt = "staging",
    as_json: JsonFlag = False,
) -> None:
    """Set config vars; with a live release, roll out a new one and follow it."""
    change_config(service, env, {"set": parse_pairs(pairs), "unset": []}, as_json=as_json)


@config_app.command("unset")
def config_unset(
    keys: Annotated[list[str], typer.Argument(metavar="KEY...", help="Config vars to remove.")],
    service: ServiceOpt,
    env: EnvOpt = "staging",
    as_json: JsonFlag = False,
) -> None:
    """Remove config vars; with a live release, roll out a new one and follow it."""
    change_config(service, env, {"set": {}, "unset": keys}, as_json=as_json)


# Scale, processes, logs --------------------------------------------------------------


def parse_quantities(pairs: Iterable[str]) -> dict[str, int]:
    """``web=2 worker=1`` as ``{"web": 2, "worker": 1}``; Invalid for anything else."""
    quantities = {}
    for kind, text in parse_pairs(pairs).items():
        try:
            quantities[kind] = int(text)
        except ValueError:
            raise Invalid(f"invalid quantity {kind}={text!r}: use TYPE=COUNT, e.g. web=2") from None
    return quantities


def scale(
    quantities: Annotated[list[str], typer.Argument(metavar="TYPE=COUNT...", help="e.g. web=2 worker=1")],
    service: ServiceOpt,
    env: EnvOpt = "staging",
    as_json: JsonFlag = False,
) -> None:
    """Set how many processes of each type run; rolled out as a new release."""
    formation = parse_quantities(quantities)
    with connect() as api:
        release = api.post(f"{env_path(service, env)}/scale", json=formation)
        follow(api, service, env, release, as_json=as_json)


def duration(seconds: int | None) -> str:
    """An uptime the way people say it: ``45s``, ``12m 3s``, ``5h 2m``, ``3d 4h``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def ps(service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """Show the live release's processes: state, port, pid, uptime, restarts."""
    with connect() as api:
        rows = api.get(f"{env_path(service, env)}/ps")
    if as_json:
        print_json(rows)
        return
    print_table(
        ["process", "state", "port", "pid", "uptime", "restarts", "release"],
        [[p["process"], p["state"], str(p["port"] or "-"), str(p["pid"] or "-"), duration(p["uptime_seconds"]),
          str(p["restarts"]), p["release"]] for p in rows],
        empty=f"nothing is running in {service}/{env}",
    )


def logs(
    service: ServiceOpt,
    env: EnvOpt = "staging",
    process: Annotated[str | None, typer.Option("--process", "-p", help="Only this process (web-1) or "
                                                                          "type (web).")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=10_000, help="How many past lines.")] = 100,
    follow_: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    probes: Annotated[bool, typer.Option("--probes", help="Also the lines about Podium's health probes "
                                                          "(hidden by default).")] = False,
) -> None:
    """Print the logs of every process, oldest first; --follow keeps streaming."""
    params: dict[str, Any] = {"lines": lines, "follow": follow_, "probes": probes}
    if process is not None:
        params["process"] = process
    try:
        with connect() as api, api.stream("GET", f"{env_path(service, env)}/logs", params=params,
                                          timeout=None if follow_ else 30.0) as response:
            for text in response.iter_text():
                sys.stdout.write(text)
                sys.stdout.flush()
    except KeyboardInterrupt:
        return  # Ctrl-C is how a follow ends
