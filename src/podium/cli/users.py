"""User commands: the people who act on Podium, their teams and tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from podium.cli.common import JsonFlag, connect, seg
from podium.cli.output import ago, print_fields, print_json, print_table, when

users = typer.Typer(help="People: names, e-mails, contact methods, teams.", no_args_is_help=True)


@users.command("create")
def create_user(
    name: Annotated[str, typer.Argument(help="DNS label, e.g. ada.")],
    email: Annotated[str, typer.Option(help="Their e-mail address.")],
    admin: Annotated[bool, typer.Option("--admin", help="A platform admin: every right.")] = False,
    contact: Annotated[list[str] | None, typer.Option(
        help="An Apprise URL where their pages go (repeat for more).")] = None,
) -> None:
    """Create a user (admins only); add them to teams with `podium teams add-member`."""
    with connect() as api:
        user = api.post("/api/v1/users", json={"name": name, "email": email, "admin": admin,
                                              "contacts": contact or []})
    typer.echo(f"created user {user['name']}{' (admin)' if user['admin'] else ''}")


@users.command("list")
def list_users(as_json: JsonFlag = False) -> None:
    """List every user with their teams."""
    with connect() as api:
        rows = api.get("/api/v1/users")
    if as_json:
        print_json(rows)
        return
    print_table(
        ["user", "email", "teams", "created"],
        [[u["name"] + (" (admin)" if u["admin"] else ""), u["email"],
          ", ".join(f"{t} ({r})" if r != "member" else t for t, r in u["teams"].items()) or "-",
          ago(u["created_at"])] for u in rows],
        empty="no users",
    )


@users.command("show")
def show_user(name: Annotated[str, typer.Argument(help="The user.")], as_json: JsonFlag = False) -> None:
    """Show a user: e-mail, contact methods, teams."""
    with connect() as api:
        user = api.get(f"/api/v1/users/{seg(name)}")
    if as_json:
        print_json(user)
        return
    print_fields([
        ("user", user["name"] + (" (admin)" if user["admin"] else "")),
        ("email", user["email"]),
        ("contacts", ", ".join(user["contacts"]) or "-"),
        ("teams", ", ".join(f"{t} ({r})" for t, r in user["teams"].items()) or "-"),
        ("created", when(user["created_at"])),
    ])


@users.command("update")
def update_user(
    name: Annotated[str, typer.Argument(help="The user.")],
    email: Annotated[str | None, typer.Option(help="A new e-mail address.")] = None,
    contact: Annotated[list[str] | None, typer.Option(
        help="Replace the contact methods with these Apprise URLs (repeat for more).")] = None,
) -> None:
    """Change a user's e-mail or contact methods (themselves or an admin)."""
    body = {k: v for k, v in {"email": email, "contacts": contact}.items() if v is not None}
    with connect() as api:
        user = api.patch(f"/api/v1/users/{seg(name)}", json=body)
    typer.echo(f"updated user {user['name']}")
