"""On-call commands: set and show a team's rotation, override it for a while, see its pages.

Handoff times are UTC. Apprise URLs go to the server and never come back: ``show`` and
``pages`` print names only.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from podium.cli.common import JsonFlag, TeamOpt, connect, seg
from podium.cli.output import ago, print_fields, print_json, print_table, when
from podium.errors import Invalid

# A rotation is 'name=URL,name=URL'; a comma starts a new person only where 'name=scheme://' follows,
# so commas inside a URL (mailto://…?to=a,b) stay in it.
# '@ada' names a Podium user, paged at their contact methods.
PERSON_SPLIT = re.compile(r",\s*(?=[^,=]+=\s*[A-Za-z][A-Za-z0-9+.-]*://|@)")

oncall_app = typer.Typer(help="On-call rotations: who is paged when an incident opens.", no_args_is_help=True)


def parse_rotation(text: str) -> list[dict[str, str]]:
    """``'alice=URL,@ada'`` as ``[{"name": "alice", "url": URL}, {"name": "ada"}]``, in order."""
    people: list[dict[str, str]] = []
    for part in PERSON_SPLIT.split(text.strip()):
        if part.strip().startswith("@") and len(part.strip()) > 1:
            people.append({"name": part.strip()[1:]})
            continue
        name, sep, url = part.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise Invalid("invalid --rotation: write the people in order as 'alice=URL,bob=URL'")
        people.append({"name": name.strip(), "url": url.strip()})
    return people


def parse_moment(option: str, text: str) -> str:
    """An ISO 8601 time as the API wants it; without a timezone it is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f"invalid {option} {text[:40]!r}: use ISO 8601, e.g. 2026-03-01T09:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def schedule(rotation: dict[str, Any]) -> str:
    if rotation["period"] == "daily":
        return f"daily at {rotation['handoff']} UTC"
    return f"weekly, {rotation['handoff']} UTC"


@oncall_app.command("set")
def set_rotation(
    team: TeamOpt,
    rotation: Annotated[str, typer.Option("--rotation", help="People in order: 'alice=URL,@ada' (@: a user).")],
    period: Annotated[str, typer.Option("--period", help="daily | weekly")],
    handoff: Annotated[str, typer.Option("--handoff", help="When it hands off, UTC: 'mon 09:00' ('09:00' if daily).")],
    escalate_after: Annotated[
        int, typer.Option("--escalate-after", help="Minutes unacknowledged before the next person is paged.")
    ] = 15,
) -> None:
    """Set a team's rotation (a member or the platform team): the first person is on call from now."""
    body = {"members": parse_rotation(rotation), "period": period, "handoff": handoff,
            "escalate_after_minutes": escalate_after}
    with connect() as api:
        shown = api.request("PUT", f"/api/v1/teams/{seg(team)}/oncall", json=body)
    typer.echo(f"rotation of {shown['team']} set: {shown['current']['name']} is on call, "
               f"{shown['next']['name']} next at {when(shown['next_handoff_at'])}")


@oncall_app.command("show")
def show(team: TeamOpt, as_json: JsonFlag = False) -> None:
    """Who is on call for a team now, who is next and when, and the rotation."""
    with connect() as api:
        shown = api.get(f"/api/v1/teams/{seg(team)}/oncall")
    if as_json:
        print_json(shown)
        return
    overrides = [
        f"#{o['id']} {o['name']}: {when(o['starts_at'])} to {when(o['ends_at'])}" for o in shown["overrides"]
    ]
    print_fields([
        ("team", shown["team"]),
        ("on call", shown["current"]["name"]),
        ("next", f"{shown['next']['name']}, from {when(shown['next_handoff_at'])}"),
        ("rotation", ", ".join(shown["members"])),
        ("handoff", schedule(shown)),
        ("escalation", f"after {shown['escalate_after_minutes']} min unacknowledged: "
                       "the next person, then the whole team"),
        ("overrides", "\n".join(overrides) or "-"),
    ])


@oncall_app.command("override")
def override(
    team: TeamOpt,
    name: Annotated[str, typer.Option("--name", help="Who is on call instead.")],
    url: Annotated[str, typer.Option("--url", help="Their Apprise URL.")],
    start: Annotated[str, typer.Option("--start", help="ISO 8601 time; UTC unless it says otherwise.")],
    end: Annotated[str, typer.Option("--end", help="ISO 8601 time; the rotation takes over again.")],
) -> None:
    """Put someone else on call for a time range; prints the override's id."""
    body = {"name": name, "url": url, "starts_at": parse_moment("--start", start),
            "ends_at": parse_moment("--end", end)}
    with connect() as api:
        created = api.post(f"/api/v1/teams/{seg(team)}/oncall/overrides", json=body)
    typer.echo(f"override #{created['id']}: {created['name']} on call for {team} "
               f"from {when(created['starts_at'])} to {when(created['ends_at'])}")


@oncall_app.command("remove-override")
def remove_override(
    team: TeamOpt, override_id: Annotated[int, typer.Argument(help="The override's id (see `oncall show`).")]
) -> None:
    """Remove an override: the rotation decides again."""
    with connect() as api:
        removed = api.delete(f"/api/v1/teams/{seg(team)}/oncall/overrides/{override_id}")
    typer.echo(f"removed override #{removed['id']} ({removed['name']})")


@oncall_app.command("pages")
def pages(
    team: TeamOpt,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """The pages sent for a team's incidents: sent, waiting for a retry, or given up, with the last error."""
    with connect() as api:
        rows = api.get(f"/api/v1/teams/{seg(team)}/oncall/pages", params={"limit": limit})
    if as_json:
        print_json(rows)
        return
    print_table(
        ["id", "incident", "kind", "to", "state", "attempts", "created", "last error"],
        [[str(r["id"]), f"#{r['incident_id']}" if r["incident_id"] else "-", r["kind"], r["recipient"],
          r["state"], str(r["attempts"]), ago(r["created_at"]), r["last_error"] or "-"] for r in rows],
        empty=f"no pages for {team} yet",
    )
