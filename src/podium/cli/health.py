"""Availability commands: incidents, checks and maintenance windows.

Each command parses its options, makes one API call and renders the answer; errors are
left to ``output.run_cli``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from podium.cli.common import EnvOpt, JsonFlag, ServiceOpt, connect, seg
from podium.cli.output import ago, print_fields, print_json, print_table, when
from podium.errors import Invalid

IncidentArg = Annotated[int, typer.Argument(metavar="ID", help="The incident's number.")]
NameOpt = Annotated[str, typer.Option("--name", "-n", help="The check's name.")]
DURATION_RE = re.compile(r"(\d{1,6})([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def moment(option: str, text: str) -> str:
    """An ISO 8601 instant with a timezone, or a span back from now such as ``30d``."""
    span = DURATION_RE.fullmatch(text.strip())
    if span is not None:
        return (datetime.now(UTC) - timedelta(**{UNITS[span.group(2)]: int(span.group(1))})).isoformat()
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Invalid(f"invalid {option} {text!r}: use ISO 8601 with a timezone (2026-12-01T02:00:00Z) or 30m, 2h, 7d")
    return parsed.isoformat()


def instant(option: str, text: str) -> str:
    """An ISO 8601 instant with a timezone, normalised."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise Invalid(f"invalid {option} {text!r}: use ISO 8601 with a timezone, e.g. 2026-12-01T02:00:00Z")
    return parsed.isoformat()


def where(item: dict[str, Any]) -> str:
    return f"{item['service']}/{item['env']}" if item.get("env") else str(item["service"])


# Incidents ---------------------------------------------------------------------------

incidents = typer.Typer(help="Incidents: opened by checks or by hand, acknowledged, resolved.",
                        no_args_is_help=True)


@incidents.command("list")
def list_incidents(
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only this service.")] = None,
    team: Annotated[str | None, typer.Option("--team", "-t", help="Only incidents paging this team.")] = None,
    state: Annotated[str | None, typer.Option(help="triggered, acknowledged or resolved.")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    since: Annotated[str | None, typer.Option(help="Started since: 7d, 24h or an ISO date.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """List incidents, newest first."""
    params: dict[str, Any] = {"service": service, "team": team, "state": state, "env": env, "limit": limit}
    if since is not None:
        params["since"] = moment("--since", since)
    with connect() as api:
        rows = api.get("/api/v1/incidents", params={k: v for k, v in params.items() if v is not None})
    if as_json:
        print_json(rows)
        return
    print_table(
        ["id", "where", "state", "summary", "started", "team", "cause"],
        [[str(i["id"]), where(i), i["state"], i["summary"], ago(i["triggered_at"]), i["team"],
          i["cause_deploy"] or ""] for i in rows],
        empty="no incidents",
    )


@incidents.command("open")
def open_incident(
    service: ServiceOpt,
    summary: Annotated[str, typer.Option(help="What is wrong, in a sentence.")],
    env: EnvOpt = "production",
    as_json: JsonFlag = False,
) -> None:
    """Open an incident by hand; it pages the service's owning team."""
    with connect() as api:
        incident = api.post(f"/api/v1/services/{seg(service)}/incidents", json={"summary": summary, "env": env})
    if as_json:
        print_json(incident)
        return
    cause = f"; likely cause: {incident['cause_deploy']}" if incident["cause_deploy"] else ""
    typer.echo(f"opened incident {incident['id']} on {where(incident)}, paging team {incident['team']}{cause}")


def _act(incident_id: int, verb: str, as_json: bool) -> None:
    with connect() as api:
        incident = api.post(f"/api/v1/incidents/{incident_id}/{verb}")
    if as_json:
        print_json(incident)
        return
    by = incident["acknowledged_by"] if verb == "ack" else incident["resolved_by"]
    typer.echo(f"incident {incident['id']} on {where(incident)} is {incident['state']} (by {by})")


@incidents.command("ack")
def acknowledge(incident_id: IncidentArg, as_json: JsonFlag = False) -> None:
    """Acknowledge a triggered incident: you are on it, paging stops escalating."""
    _act(incident_id, "ack", as_json)


@incidents.command("resolve")
def resolve(incident_id: IncidentArg, as_json: JsonFlag = False) -> None:
    """Resolve an incident."""
    _act(incident_id, "resolve", as_json)


@incidents.command("note")
def note(incident_id: IncidentArg, text: Annotated[str, typer.Argument(help="The note.")]) -> None:
    """Add a note to an incident's timeline."""
    with connect() as api:
        api.post(f"/api/v1/incidents/{incident_id}/notes", json={"text": text})
    typer.echo(f"noted on incident {incident_id}")


@incidents.command("show")
def show(incident_id: IncidentArg, as_json: JsonFlag = False) -> None:
    """Show an incident with its timeline and notes."""
    with connect() as api:
        incident = api.get(f"/api/v1/incidents/{incident_id}")
    if as_json:
        print_json(incident)
        return
    opened = "a check" + (f" ({incident['check']})" if incident["check"] else "") \
        if incident["source"] == "check" else f"team {incident['opened_by']}"
    print_fields([
        ("incident", str(incident["id"])),
        ("where", where(incident)),
        ("summary", incident["summary"]),
        ("state", incident["state"]),
        ("team paged", incident["team"]),
        ("opened by", opened),
        ("triggered", when(incident["triggered_at"])),
        ("acknowledged", _stamp(incident["acknowledged_at"], incident["acknowledged_by"])),
        ("resolved", _stamp(incident["resolved_at"], incident["resolved_by"])),
        ("cause_deploy", incident["cause_deploy"] or "-"),
    ])
    for item in incident.get("notes") or []:
        typer.echo(f"  {when(item['at'])}  {item['team']}: {item['text']}")


def _stamp(at: str | None, by: str | None) -> str:
    return "-" if at is None else f"{when(at)} by {by}"


# Checks ------------------------------------------------------------------------------

checks = typer.Typer(help="Health checks: the web check every deployed app gets, and extra ones.",
                     no_args_is_help=True)


def checks_path(service: str, env: str) -> str:
    return f"/api/v1/services/{seg(service)}/environments/{seg(env)}/checks"


@checks.command("list")
def list_checks(
    service: ServiceOpt,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a service's checks: what each probes, its state, when it last ran, its last error."""
    with connect() as api:
        path = checks_path(service, env) if env else f"/api/v1/services/{seg(service)}/checks"
        rows = api.get(path)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["env", "check", "probes", "state", "every", "down/up after", "last checked", "last error"],
        [[c["env"], c["name"] + ("" if c["enabled"] else " (disabled)"), c["target"], c["state"],
          f"{c['interval']:g}s", f"{c['down_after']}/{c['up_after']}", ago(c["last_checked_at"]),
          c["last_error"] or ""] for c in rows],
        empty=f"no checks on {service} yet: deploy it, or add one with podium checks add",
    )


def check_settings(**options: Any) -> dict[str, Any]:
    """The options given on the command line, by their API names."""
    return {key: value for key, value in options.items() if value is not None}


@checks.command("set")
def set_check(
    service: ServiceOpt,
    env: EnvOpt = "production",
    name: NameOpt = "web",
    path: Annotated[str | None, typer.Option(help="HTTP path to probe, e.g. /health (pins it).")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between probes.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds a probe may take.")] = None,
    down_after: Annotated[int | None, typer.Option(help="Failures in a row before it is down.")] = None,
    up_after: Annotated[int | None, typer.Option(help="Successes in a row before it is up again.")] = None,
    expect_status: Annotated[int | None, typer.Option(help="The HTTP status wanted.")] = None,
    body_contains: Annotated[str | None, typer.Option(help="Text the body must contain.")] = None,
    json_field: Annotated[str | None, typer.Option(help="a.b=value the JSON body must have.")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="Probe it, or stop.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a check (by default ``web``, the one every deployed app has)."""
    changes = check_settings(path=path, interval=interval, timeout=timeout, down_after=down_after,
                             up_after=up_after, expect_status=expect_status, body_contains=body_contains,
                             json_field=json_field, enabled=enabled)
    if not changes:
        raise Invalid("nothing to change: give --path, --interval, --timeout, --down-after, --up-after, ...")
    with connect() as api:
        check = api.patch(f"{checks_path(service, env)}/{seg(name)}", json=changes)
    if as_json:
        print_json(check)
        return
    typer.echo(f"check {check['name']} of {service}/{env}: {check['target']} every {check['interval']:g}s, "
               f"timeout {check['timeout']:g}s, down after {check['down_after']}, up after {check['up_after']}")


@checks.command("add")
def add_check(
    service: ServiceOpt,
    name: NameOpt,
    env: EnvOpt = "production",
    http: Annotated[str | None, typer.Option("--http", help="Probe this path through the router.")] = None,
    tcp: Annotated[str | None, typer.Option("--tcp", help="Connect to host:port.")] = None,
    expect_status: Annotated[int | None, typer.Option(help="The HTTP status wanted.")] = None,
    body_contains: Annotated[str | None, typer.Option(help="Text the body must contain.")] = None,
    json_field: Annotated[str | None, typer.Option(help="a.b=value the JSON body must have.")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between probes.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds a probe may take.")] = None,
    down_after: Annotated[int | None, typer.Option(help="Failures in a row before it is down.")] = None,
    up_after: Annotated[int | None, typer.Option(help="Successes in a row before it is up again.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an HTTP check (--http /path) or a TCP one (--tcp host:port) to a service environment."""
    if (http is None) == (tcp is None):
        raise Invalid("give exactly one of --http /path or --tcp host:port")
    body = {"name": name, **check_settings(
        path=http, tcp=tcp, expect_status=expect_status, body_contains=body_contains, json_field=json_field,
        interval=interval, timeout=timeout, down_after=down_after, up_after=up_after,
    )}
    with connect() as api:
        check = api.post(checks_path(service, env), json=body)
    if as_json:
        print_json(check)
        return
    typer.echo(f"added check {check['name']} to {service}/{env}: {check['target']} every {check['interval']:g}s")


@checks.command("remove")
def remove_check(service: ServiceOpt, name: NameOpt, env: EnvOpt = "production") -> None:
    """Remove an extra check and its results."""
    with connect() as api:
        api.delete(f"{checks_path(service, env)}/{seg(name)}")
    typer.echo(f"removed check {name} from {service}/{env}")


# Maintenance -------------------------------------------------------------------------

maintenance = typer.Typer(help="Maintenance windows: planned downtime opens no incident.", no_args_is_help=True)


@maintenance.command("add")
def add_window(
    service: ServiceOpt,
    end: Annotated[str | None, typer.Option("--end", help="When it ends (ISO 8601 with a timezone).")] = None,
    start: Annotated[str | None, typer.Option("--start", help="When it starts (default now).")] = None,
    duration: Annotated[str | None, typer.Option(help="Or how long it lasts: 30m, 2h.")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment (default: all).")] = None,
    reason: Annotated[str, typer.Option(help="Why, for whoever looks at the service.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Plan a maintenance window for a service (or one environment of it)."""
    if (end is None) == (duration is None):
        raise Invalid("give exactly one of --end or --duration")
    body: dict[str, Any] = {"env": env, "reason": reason, "duration": duration}
    if start is not None:
        body["starts_at"] = instant("--start", start)
    if end is not None:
        body["ends_at"] = instant("--end", end)
    with connect() as api:
        window = api.post(f"/api/v1/services/{seg(service)}/maintenance", json=body)
    if as_json:
        print_json(window)
        return
    typer.echo(f"maintenance window {window['id']} on {where(window)}: {when(window['starts_at'])} "
               f"to {when(window['ends_at'])}")


@maintenance.command("list")
def list_windows(
    service: ServiceOpt,
    include_past: Annotated[bool, typer.Option("--all", help="Include windows that have ended.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List a service's maintenance windows, on now or to come."""
    with connect() as api:
        rows = api.get(f"/api/v1/services/{seg(service)}/maintenance", params={"all": include_past})
    if as_json:
        print_json(rows)
        return
    print_table(
        ["id", "env", "starts", "ends", "reason", "by"],
        [[str(w["id"]), w["env"] or "all", when(w["starts_at"]) + (" (on now)" if w["active"] else ""),
          when(w["ends_at"]), w["reason"], w["created_by"]] for w in rows],
        empty=f"no maintenance planned for {service}",
    )


@maintenance.command("remove")
def remove_window(
    service: ServiceOpt, window_id: Annotated[int, typer.Argument(metavar="ID", help="The window's number.")]
) -> None:
    """Cancel a maintenance window."""
    with connect() as api:
        api.delete(f"/api/v1/services/{seg(service)}/maintenance/{window_id}")
    typer.echo(f"removed maintenance window {window_id} from {service}")
