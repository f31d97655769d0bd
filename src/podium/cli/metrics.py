"""Metrics commands: availability, DORA keys, SLOs, hour-of-week weights, CSV exports.

Each command makes one API call and renders the answer: percentages with three decimals,
durations the way people say them (``38m 12s``), ``no data`` where there is none.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.cli.common import JsonFlag, connect, seg
from podium.cli.output import print_fields, print_json, print_table
from podium.errors import Invalid

ServiceOpt = Annotated[str | None, typer.Option("--service", "-s", help="One service.")]
TeamOpt = Annotated[str | None, typer.Option("--team", "-t", help="Every service of a team.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every service of every team.")]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="staging or production.")]
NO_DATA = "no data"
SinceOpt = Annotated[str, typer.Option("--since", help="How far back: 24h, 30d, 12w or an ISO date.")]

metrics_app = typer.Typer(help="Availability, MTTR, MTBF, SLOs and DORA keys, per service or team.",
                          no_args_is_help=True)
slo_app = typer.Typer(help="Service level objectives: availability targets and their error budgets.",
                      no_args_is_help=True)


def duration(seconds: float | None) -> str:
    """``38m 12s``, ``2h 5m``, ``3d 4h``, ``45s``: the two largest units; ``no data`` for none."""
    if seconds is None:
        return NO_DATA
    left = round(seconds)
    if left < 60:
        return f"{left}s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, left = divmod(left, size)
        if amount or parts:
            parts.append(f"{amount}{unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)


def percent(fraction: float | None) -> str:
    """``99.957%``, rounded down (99.9996% is not 100%); ``no data`` for none."""
    if fraction is None:
        return NO_DATA
    if fraction >= 1:
        return "100%"
    return f"{math.floor(fraction * 100_000) / 1000:.3f}%"


def number(value: float | None, digits: int = 2) -> str:
    return NO_DATA if value is None else f"{value:.{digits}f}"


def scope_params(service: str | None, team: str | None, everything: bool, env: str) -> dict[str, Any]:
    """The query naming one of a service, a team or everything; Invalid unless exactly one is given."""
    if (service is not None) + (team is not None) + everything != 1:
        raise Invalid("give one of --service, --team or --all")
    params: dict[str, Any] = {"env": env}
    if service is not None:
        params["service"] = service
    if team is not None:
        params["team"] = team
    if everything:
        params["all"] = "true"
    return params


def scope_label(answer: dict[str, Any]) -> str:
    if answer.get("service"):
        return f"service {answer['service']} ({answer['environment']})"
    if answer.get("team"):
        return f"team {answer['team']} ({answer['environment']})"
    return f"every service ({answer['environment']})"


def period_label(answer: dict[str, Any]) -> str:
    return f"{answer['period_start'][:16].replace('T', ' ')} to {answer['period_end'][:16].replace('T', ' ')} UTC"


@metrics_app.command("availability")
def availability(
    service: ServiceOpt = None, team: TeamOpt = None, everything: AllOpt = False, env: EnvOpt = "production",
    since: SinceOpt = "30d", as_json: JsonFlag = False,
) -> None:
    """Availability, weighted availability, MTTR, MTTA and MTBF, with a row per ISO week."""
    params = scope_params(service, team, everything, env) | {"since": since}
    with connect() as api:
        answer = api.get("/api/v1/metrics/availability", params=params)
    if as_json:
        print_json(answer)
        return
    print_fields([
        ("scope", scope_label(answer)),
        ("period", period_label(answer)),
        ("availability", percent(answer["availability"])),
        ("weighted", percent(answer["weighted_availability"])),
        ("downtime", duration(answer["downtime_seconds"])),
        ("incidents", str(answer["incidents"])),
        ("MTTR", f"{duration(answer['mttr_seconds'])} (median {duration(answer['mttr_median_seconds'])})"),
        ("MTTA", duration(answer["mtta_seconds"])),
        ("MTBF", duration(answer["mtbf_seconds"])),
    ])
    print_table(
        ["week", "incidents", "availability", "weighted", "downtime", "MTTR", "MTBF"],
        [[w["week"], str(w["incidents"]), percent(w["availability"]), percent(w["weighted_availability"]),
          duration(w["downtime_seconds"]), duration(w["mttr_seconds"]), duration(w["mtbf_seconds"])]
         for w in answer["weekly"]],
        empty="no whole or partial week in the period",
    )


@metrics_app.command("dora")
def dora(team: TeamOpt = None, everything: AllOpt = False, since: SinceOpt = "30d", as_json: JsonFlag = False) -> None:
    """The DORA four keys of a team's production deploys, with a row per ISO week."""
    if (team is not None) + everything != 1:
        raise Invalid("give one of --team or --all")
    params: dict[str, Any] = {"since": since, **({"team": team} if team else {"all": "true"})}
    with connect() as api:
        answer = api.get("/api/v1/metrics/dora", params=params)
    if as_json:
        print_json(answer)
        return
    print_fields([
        ("team", answer["team"] or "every team"),
        ("period", period_label(answer)),
        ("deploys", str(answer["deploys"])),
        ("deploys per day", number(answer["deployment_frequency_per_day"])),
        ("lead time", duration(answer["lead_time_seconds"]) if answer["lead_time_seconds"] is not None
         else f"{NO_DATA}: {answer.get('lead_time_reason') or 'no commit time known'}"),
        ("upload to live", duration(answer.get("upload_to_live_seconds"))),
        ("change failure rate", percent(answer["change_failure_rate"])),
        ("time to restore", duration(answer["time_to_restore_seconds"])),
    ])
    print_table(
        ["week", "deploys", "per day", "lead time", "failure rate", "time to restore"],
        [[w["week"], str(w["deploys"]), number(w["deployment_frequency_per_day"]), duration(w["lead_time_seconds"]),
          percent(w["change_failure_rate"]), duration(w["time_to_restore_seconds"])] for w in answer["weekly"]],
        empty="no whole or partial week in the period",
    )


@metrics_app.command("slo")
def slo(
    service: Annotated[str, typer.Option("--service", "-s", help="The service.")], env: EnvOpt = "production",
    as_json: JsonFlag = False,
) -> None:
    """Error budget and burn rates of a service against its SLO."""
    with connect() as api:
        answer = api.get("/api/v1/metrics/slo", params={"service": service, "env": env})
    if as_json:
        print_json(answer)
        return
    print_fields([
        ("service", f"{answer['service']} ({answer['environment']})"),
        ("objective", f"{percent(answer['objective'])} over {answer['window_days']}d"),
        ("availability", percent(answer["availability"])),
        ("error budget", duration(answer["error_budget_seconds"])),
        ("consumed", duration(answer["budget_consumed_seconds"])),
        ("remaining", percent(answer["budget_remaining_fraction"])),
        ("burn rate", f"{number(answer['burn_rate'])} (1h {number(answer['burn_rate_1h'])}, "
                      f"6h {number(answer['burn_rate_6h'])})"),
    ])


@metrics_app.command("export")
def export(
    kind: Annotated[str, typer.Argument(help="incidents (one row each) or availability (per month and service).")],
    service: ServiceOpt = None, team: TeamOpt = None, env: EnvOpt = "production",
    since: Annotated[str | None, typer.Option("--since", help="How far back (default 90d for incidents, "
                                                               "365d for availability).")] = None,
) -> None:
    """Write a CSV export to stdout, e.g. podium metrics export incidents --team T > incidents.csv."""
    if kind not in ("incidents", "availability"):
        raise Invalid(f"unknown export {kind!r}: use incidents or availability")
    params = scope_params(service, team, False, env) | ({"since": since} if since else {})
    with connect() as api:
        text = api.get(f"/api/v1/metrics/export/{kind}.csv", params=params)
    sys.stdout.write(text)


@metrics_app.command("weights")
def weights(
    team: Annotated[str, typer.Option("--team", "-t", help="The team.")],
    flat: Annotated[bool, typer.Option("--flat", help="Set every hour to weigh the same.")] = False,
    table: Annotated[Path | None, typer.Option("--table", help="Set from a JSON file: a list of 168 weights, "
                                                              "Monday 00h UTC first.")] = None,
    counts: Annotated[Path | None, typer.Option("--counts", help="Derive from a JSON file of 168 request counts "
                                                                "per hour of the week.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a team's hour-of-week weights, or set them (--flat, --table or --counts)."""
    chosen = [name for name, value in (("--flat", flat), ("--table", table), ("--counts", counts)) if value]
    if len(chosen) > 1:
        raise Invalid(f"give one of --flat, --table or --counts, not {' and '.join(chosen)}")
    body: dict[str, Any] | None = None
    if flat:
        body = {"source": "flat"}
    elif table is not None:
        body = {"weights": read_numbers(table)}
    elif counts is not None:
        body = {"counts": read_numbers(counts)}
    with connect() as api:
        path = f"/api/v1/teams/{seg(team)}/availability-weights"
        answer = api.get(path) if body is None else api.request("PUT", path, json=body)
    if as_json:
        print_json(answer)
        return
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    values = answer["weights"]
    typer.echo(f"team {answer['team']}: {answer['source']} weights (1 is an average hour)", err=True)
    print_table(["day", *(f"{h:02d}" for h in range(24))],
                [[day, *(f"{values[d * 24 + h]:.2f}" for h in range(24))] for d, day in enumerate(days)])


def read_numbers(path: Path) -> list[float]:
    """A JSON list of numbers from a file; Invalid with the reason otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Invalid(f"cannot read {path}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in data):
        raise Invalid(f"{path} must hold a JSON list of numbers")
    return [float(v) for v in data]


@slo_app.command("set")
def set_slo(
    service: Annotated[str, typer.Option("--service", "-s", help="The service.")],
    objective: Annotated[float, typer.Option(help="Between 0 and 1: 0.999 is 99.9%.")],
    window: Annotated[int, typer.Option(help="Rolling window in days.")] = 30,
    env: EnvOpt = "production",
) -> None:
    """Set a service's availability objective (its owning team or the platform team)."""
    body = {"objective": objective, "window_days": window, "environment": env}
    with connect() as api:
        answer = api.request("PUT", f"/api/v1/services/{seg(service)}/slo", json=body)
    typer.echo(f"SLO of {answer['service']} ({answer['environment']}): {percent(answer['objective'])} "
               f"over {answer['window_days']}d")


@slo_app.command("show")
def show_slo(
    service: Annotated[str, typer.Option("--service", "-s", help="The service.")], env: EnvOpt = "production",
    as_json: JsonFlag = False,
) -> None:
    """Error budget and burn rates of a service against its SLO (as ``podium metrics slo``)."""
    slo(service, env, as_json)
