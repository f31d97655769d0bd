"""Catalog commands: login, teams, tokens, services, grants, audit, Backstage import.

Each command parses its options, makes one or two API calls through ``ApiClient`` and
renders the answer; errors are left to ``output.run_cli``.
"""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.cli import settings
from podium.cli.common import JsonFlag, ServiceOpt, TeamOpt, YesFlag, confirm_deletion, connect, seg
from podium.cli.output import ago, notice, print_fields, print_json, print_table, when
from podium.errors import Invalid

LIFECYCLES = "experimental | production | deprecated"


# Session ---------------------------------------------------------------------------


def login(
    token: Annotated[str | None, typer.Option(help="A token (pdm_... or pdu_...); default: single sign-on.")] = None,
    url: Annotated[str | None, typer.Option(help="Server URL (default: the current one).")] = None,
) -> None:
    """Sign in through the company's provider (device flow), or check a token; save both for later commands."""
    if url is None:
        try:
            url = settings.load().url
        except Invalid:  # a broken saved login is what this command replaces
            url = settings.environ().get("PODIUM_URL") or settings.DEFAULT_URL
    url = settings.check_url(url)
    if token is None:
        from podium.cli import signin  # talks HTTP: loaded only when signing in

        if signin.offers_sso(url):
            token = signin.device_login(url, f"podium login on {socket.gethostname()}"[:60])
        else:
            token = typer.prompt("Token", hide_input=True)
    from podium.cli.client import ApiClient

    with ApiClient(url, token) as api:
        me = api.get("/api/v1/whoami")
    path = settings.save(url, token)
    who = f"user {me['user']}" if me.get("user") else f"team {me['team']}"
    typer.echo(f"logged in to {url} as {who}; saved to {path}")
    env = settings.environ()
    if env.get("PODIUM_URL") or env.get("PODIUM_TOKEN"):
        notice("note: PODIUM_URL / PODIUM_TOKEN are set in this shell and win over the saved login")


def whoami(as_json: JsonFlag = False) -> None:
    """Show the team the current token acts as, and the server it talks to."""
    login_ = settings.load()
    from podium.cli.client import ApiClient

    with ApiClient.from_login(login_) as api:
        me = api.get("/api/v1/whoami")
    if as_json:
        print_json(me)
        return
    role = " (the platform team)" if me["admin"] else ""
    if me.get("user"):
        typer.echo(f"user {me['user']}, acting as team {me['team'] or '-'}{role}, token {me['token_id']}, "
                   f"at {login_.url}")
        return
    typer.echo(f"team {me['team']}{role}, token {me['token_id']}, at {login_.url}")


# Teams -----------------------------------------------------------------------------

teams = typer.Typer(help="Teams: each service is owned by exactly one.", no_args_is_help=True)


@teams.command("create")
def create_team(
    name: Annotated[str, typer.Argument(help="DNS label, e.g. checkout.")],
    description: Annotated[str, typer.Option(help="What the team does.")] = "",
) -> None:
    """Create a team (platform team only)."""
    with connect() as api:
        team = api.post("/api/v1/teams", json={"name": name, "description": description})
    typer.echo(f"created team {team['name']}")


@teams.command("rename")
def rename_team(
    name: Annotated[str, typer.Argument(help="The team.")],
    new_name: Annotated[str, typer.Argument(help="Its new name, a DNS label.")],
) -> None:
    """Rename a team; its tokens keep working (platform team only)."""
    with connect() as api:
        team = api.patch(f"/api/v1/teams/{seg(name)}", json={"name": new_name})
    typer.echo(f"renamed team {name} to {team['name']}")


@teams.command("delete")
def delete_team(name: Annotated[str, typer.Argument(help="The team.")], yes: YesFlag = False) -> None:
    """Delete a team and its tokens; refused while it owns services (platform team only)."""
    confirm_deletion("team", name, f"Delete team {name!r} and its tokens?", yes)
    with connect() as api:
        api.delete(f"/api/v1/teams/{seg(name)}")
    typer.echo(f"deleted team {name}")


@teams.command("list")
def list_teams(as_json: JsonFlag = False) -> None:
    """List every team."""
    with connect() as api:
        rows = api.get("/api/v1/teams")
    if as_json:
        print_json(rows)
        return
    print_table(["team", "description", "created"], [[t["name"], t["description"], ago(t["created_at"])]
                                                      for t in rows])


@teams.command("show")
def show_team(name: Annotated[str, typer.Argument(help="The team.")], as_json: JsonFlag = False) -> None:
    """Show a team and the services it owns."""
    with connect() as api:
        team = api.get(f"/api/v1/teams/{seg(name)}")
        if as_json:
            print_json(team)
            return
        services = api.get("/api/v1/services", params={"owner": name})
    print_fields([
        ("team", team["name"]),
        ("description", team["description"] or "-"),
        ("created", when(team["created_at"])),
        ("services", ", ".join(s["name"] for s in services) or "-"),
    ])


@teams.command("add-member")
def add_member(
    team: Annotated[str, typer.Argument(help="The team.")],
    user: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str, typer.Option(help="member, or maintainer (manages members, grants, rotations).")] = "member",
) -> None:
    """Make a user a member of a team (or change their role): they get the team's rights at once."""
    with connect() as api:
        added = api.post(f"/api/v1/teams/{seg(team)}/members", json={"user": user, "role": role})
    typer.echo(f"{added['user']} is a {added['role']} of team {added['team']}")


@teams.command("remove-member")
def remove_member(
    team: Annotated[str, typer.Argument(help="The team.")], user: Annotated[str, typer.Argument(help="The user.")]
) -> None:
    """End a membership: the user's tokens and sessions lose the team's rights at once."""
    with connect() as api:
        api.delete(f"/api/v1/teams/{seg(team)}/members/{seg(user)}")
    typer.echo(f"removed {user} from team {team}")


@teams.command("members")
def list_members(team: Annotated[str, typer.Argument(help="The team.")], as_json: JsonFlag = False) -> None:
    """List a team's members and their roles."""
    with connect() as api:
        rows = api.get(f"/api/v1/teams/{seg(team)}/members")
    if as_json:
        print_json(rows)
        return
    print_table(["user", "role", "since"], [[m["user"], m["role"], ago(m["since"])] for m in rows],
                empty=f"team {team} has no members")


# Tokens ----------------------------------------------------------------------------

tokens = typer.Typer(help="Team tokens: what the CLI and API authenticate with.", no_args_is_help=True)


@tokens.command("create")
def create_token(
    team: Annotated[str | None, typer.Option("--team", "-t", help="A team token, for a machine (CI).")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="A personal token of this user.")] = None,
    name: Annotated[str, typer.Option(help="What the token is for, e.g. ci or laptop.")] = "",
    description: Annotated[str, typer.Option(help="What the team token is for (longer).")] = "",
    expires: Annotated[str | None, typer.Option(help="A personal token's lifetime: 12h, 30d (default 30d).")] = None,
    scope_teams: Annotated[list[str] | None, typer.Option(
        "--scope-team", help="A personal token with only this team's rights (repeat for more).")] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="A personal token that only reads.")] = False,
) -> None:
    """Create a token and print only the token, e.g. TOKEN=$(podium tokens create --user ada --expires 30d)."""
    if (team is None) == (user is None):
        raise Invalid("give exactly one of --team (a team token) or --user (a personal token)")
    with connect() as api:
        if user is not None:
            body: dict[str, Any] = {"name": name, "expires": expires or "30d", "read_only": read_only,
                                    "teams": scope_teams or None}
            created = api.post(f"/api/v1/users/{seg(user)}/tokens", json=body)
            notice(f"token {created['id']} of user {created['user']}, until {when(created['expires_at'])}: "
                   "shown this once, keep it secret")
        else:
            assert team is not None
            created = api.post(f"/api/v1/teams/{seg(team)}/tokens", json={"description": description, "name": name})
            notice(f"token {created['id']} for team {created['team']}: shown this once, keep it secret")
    typer.echo(created["token"])


@tokens.command("list")
def list_tokens(
    team: Annotated[str | None, typer.Option("--team", "-t", help="A team's tokens.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="A user's tokens and sessions.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a team's or a user's tokens (ids and names, never the tokens themselves)."""
    if (team is None) == (user is None):
        raise Invalid("give exactly one of --team or --user")
    with connect() as api:
        path = f"/api/v1/users/{seg(user)}/tokens" if user is not None else f"/api/v1/teams/{seg(team or '')}/tokens"
        rows = api.get(path)
    if as_json:
        print_json(rows)
        return
    if user is not None:
        print_table(
            ["id", "kind", "name", "scope", "created", "status"],
            [[t["id"], t["kind"], t["name"], scope(t), ago(t["created_at"]), status(t)] for t in rows],
        )
        return
    print_table(
        ["id", "name", "by", "created", "status"],
        [[t["id"], t["name"], t["created_by"], ago(t["created_at"]), status(t)] for t in rows],
    )


def scope(token: dict[str, Any]) -> str:
    teams = ",".join(token["teams"]) if token["teams"] is not None else "all teams"
    return f"{teams}, read-only" if token["read_only"] else teams


def status(token: dict[str, Any]) -> str:
    if token["revoked_at"]:
        return f"revoked {ago(token['revoked_at'])}"
    if "expires_at" in token and not token["active"]:
        return f"expired {ago(token['expires_at'])}"
    return "live"


@tokens.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token id.")],
    team: Annotated[str | None, typer.Option("--team", "-t", help="A team's token.")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="A user's token or session.")] = None,
) -> None:
    """Revoke a team's or a user's token: requests made with it fail from now on."""
    if (team is None) == (user is None):
        raise Invalid("give exactly one of --team or --user")
    with connect() as api:
        if user is not None:
            api.delete(f"/api/v1/users/{seg(user)}/tokens/{seg(token_id)}")
        else:
            api.delete(f"/api/v1/teams/{seg(team or '')}/tokens/{seg(token_id)}")
    typer.echo(f"revoked token {token_id} of {'user ' + user if user else 'team ' + str(team)}")


# Services --------------------------------------------------------------------------

services = typer.Typer(help="Services: each owned by one team, changed only by it.", no_args_is_help=True)


def service_fields(service: dict[str, Any], grants: list[dict[str, Any]]) -> list[tuple[str, str]]:
    live = [f"{g['team']}: {','.join(g['rights'])} until {when(g['expires_at'])}" for g in grants]
    return [
        ("service", service["name"]),
        ("owner", service["owner"]),
        ("lifecycle", service["lifecycle"]),
        ("description", service["description"] or "-"),
        ("environments", ", ".join(service["environments"])),
        ("created", when(service["created_at"])),
        ("updated", when(service["updated_at"])),
        ("grants", "\n".join(live) or "-"),
    ]


@services.command("create")
def create_service(
    name: Annotated[str, typer.Argument(help="DNS label, e.g. cart.")],
    owner: Annotated[str, typer.Option(help="The owning team.")],
    description: Annotated[str, typer.Option(help="What the service does.")] = "",
    lifecycle: Annotated[str, typer.Option(help=LIFECYCLES)] = "experimental",
) -> None:
    """Create a service owned by a team, with staging and production environments."""
    with connect() as api:
        body = {"name": name, "owner": owner, "description": description, "lifecycle": lifecycle}
        service = api.post("/api/v1/services", json=body)
    typer.echo(f"created service {service['name']} (owner {service['owner']}, {service['lifecycle']})")


@services.command("list")
def list_services(
    owner: Annotated[str | None, typer.Option(help="Only services of this team.")] = None,
    lifecycle: Annotated[str | None, typer.Option(help=f"Only at this stage: {LIFECYCLES}.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List services, optionally by owner or lifecycle."""
    params = {k: v for k, v in {"owner": owner, "lifecycle": lifecycle}.items() if v is not None}
    with connect() as api:
        rows = api.get("/api/v1/services", params=params)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["service", "owner", "lifecycle", "description", "updated"],
        [[s["name"], s["owner"], s["lifecycle"], s["description"], ago(s["updated_at"])] for s in rows],
        empty="no services",
    )


@services.command("show")
def show_service(
    name: Annotated[str, typer.Argument(help="The service.")], as_json: JsonFlag = False
) -> None:
    """Show a service: owner, lifecycle, environments and live grants."""
    with connect() as api:
        service = api.get(f"/api/v1/services/{seg(name)}")
        if as_json:
            print_json(service)
            return
        grants = api.get(f"/api/v1/services/{seg(name)}/grants")
    print_fields(service_fields(service, grants))


@services.command("update")
def update_service(
    name: Annotated[str, typer.Argument(help="The service.")],
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    lifecycle: Annotated[str | None, typer.Option(help=f"New stage: {LIFECYCLES}.")] = None,
) -> None:
    """Change a service's description or lifecycle (owner or platform team)."""
    if description is None and lifecycle is None:
        raise Invalid("nothing to change: give --description or --lifecycle")
    body = {k: v for k, v in {"description": description, "lifecycle": lifecycle}.items() if v is not None}
    with connect() as api:
        service = api.patch(f"/api/v1/services/{seg(name)}", json=body)
    typer.echo(f"updated service {service['name']} ({service['lifecycle']})")


@services.command("delete")
def delete_service(
    name: Annotated[str, typer.Argument(help="The service.")],
    yes: YesFlag = False,
    with_addons: Annotated[
        bool, typer.Option("--with-addons", help="Also delete its databases (a final backup of each is kept).")
    ] = False,
) -> None:
    """Delete a service: stop its processes, remove its routes, checks and schedules; its logs
    and audit trail are archived (asks first unless --yes)."""
    confirm_deletion("service", name, f"Delete service {name!r} and its environments?", yes)
    with connect() as api:
        api.delete(f"/api/v1/services/{seg(name)}", params={"with_addons": "true"} if with_addons else None)
    typer.echo(f"deleted service {name}")


@services.command("transfer")
def transfer_service(
    name: Annotated[str, typer.Argument(help="The service.")],
    to: Annotated[str, typer.Option("--to", help="The team that will own it.")],
) -> None:
    """Hand a service to another team (current owner or platform team)."""
    with connect() as api:
        service = api.post(f"/api/v1/services/{seg(name)}/transfer", json={"to": to})
    typer.echo(f"service {service['name']} is now owned by {service['owner']}")


# Grants ----------------------------------------------------------------------------

grants = typer.Typer(help="Time-boxed rights for another team on a service.", no_args_is_help=True)


def parse_until(text: str) -> str:
    """An ISO 8601 instant with a timezone, normalised; Invalid otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid(f"invalid --until {text!r}: use ISO 8601 with a timezone, e.g. 2026-12-01T00:00:00Z")
    return moment.isoformat()


@grants.command("add")
def add_grant(
    service: ServiceOpt,
    team: TeamOpt,
    rights: Annotated[str, typer.Option(help="Comma-separated: deploy, config.")],
    for_: Annotated[str | None, typer.Option("--for", help="How long: 12h, 7d, 2w.")] = None,
    until: Annotated[str | None, typer.Option(help="Or until when (ISO 8601 with a timezone).")] = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """Let another team deploy or configure a service for a while (owner or platform team)."""
    if (for_ is None) == (until is None):
        raise Invalid("give exactly one of --for (e.g. 7d) or --until (e.g. 2026-12-01T00:00:00Z)")
    body: dict[str, Any] = {
        "team": team, "rights": [r.strip() for r in rights.split(",") if r.strip()], "reason": reason,
        "duration": for_, "expires_at": parse_until(until) if until is not None else None,
    }
    with connect() as api:
        grant = api.post(f"/api/v1/services/{seg(service)}/grants", json=body)
    typer.echo(
        f"grant {grant['id']}: team {grant['team']} may {','.join(grant['rights'])} "
        f"service {grant['service']} until {when(grant['expires_at'])}"
    )


@grants.command("list")
def list_grants(
    service: ServiceOpt,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked and expired grants.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List a service's live grants (or all of them)."""
    with connect() as api:
        rows = api.get(f"/api/v1/services/{seg(service)}/grants", params={"all": all_})
    if as_json:
        print_json(rows)
        return
    print_table(
        ["id", "team", "rights", "ends", "active", "by", "reason"],
        [[str(g["id"]), g["team"], ",".join(g["rights"]), ago(g["expires_at"]),
          "yes" if g["active"] else "no", g["created_by"], g["reason"]] for g in rows],
        empty="no grants",
    )


@grants.command("revoke")
def revoke_grant(grant_id: Annotated[int, typer.Argument(metavar="ID", help="The grant id.")],
                 service: ServiceOpt) -> None:
    """End a grant now."""
    with connect() as api:
        grant = api.delete(f"/api/v1/services/{seg(service)}/grants/{grant_id}")
    typer.echo(f"revoked grant {grant['id']} of team {grant['team']} on {grant['service']}")


# Audit and import ------------------------------------------------------------------


def change(event: dict[str, Any]) -> str:
    """What an audit event changed, in one short line."""
    before, after = event["before"] or {}, event["after"] or {}
    if before and after:
        changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        return ", ".join(f"{k}: {show(before.get(k))} -> {show(after.get(k))}" for k in changed)
    shown = after or before
    return " ".join(f"{k}={show(v)}" for k, v in shown.items() if k not in ("name", "id"))


def actor_name(event: dict[str, Any]) -> str:
    """Who acted: the person (and through which team's rights), else the team."""
    user = event.get("user")
    return f"{user} ({event['team']})" if user and event["team"] else user or event["team"]


def show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def audit(
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only events on this one.")] = None,
    team: Annotated[str | None, typer.Option("--team", "-t", help="Only actions by this team.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000, help="At most this many events.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Show the audit log, newest first: who changed what, when."""
    params: dict[str, Any] = {"limit": limit}
    params.update({k: v for k, v in {"service": service, "team": team}.items() if v is not None})
    with connect() as api:
        rows = api.get("/api/v1/audit", params=params)
    if as_json:
        print_json(rows)
        return
    print_table(
        ["when", "who", "action", "service", "target", "change"],
        [[ago(e["at"]), actor_name(e), e["action"], e["service"] or "", e["target"], change(e)] for e in rows],
        empty="no audit events",
    )


catalog_app = typer.Typer(help="The catalog as a whole: import from Backstage.", no_args_is_help=True)


@catalog_app.command("import")
def import_catalog(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="A Backstage catalog-info.yaml.")],
    as_json: JsonFlag = False,
) -> None:
    """Create or update services from a Backstage catalog-info.yaml (Components; platform team)."""
    try:
        document = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot read {file}: {exc}") from None
    with connect() as api:
        results = api.post("/api/v1/catalog/import", json={"document": document})
    if as_json:
        print_json(results)
        return
    print_table(["service", "owner", "result"], [[r["service"], r["owner"], r["action"]] for r in results],
                empty="no Components in the file")
    counts = {a: sum(r["action"] == a for r in results) for a in ("created", "updated", "unchanged")}
    typer.echo(", ".join(f"{n} {a}" for a, n in counts.items()))
