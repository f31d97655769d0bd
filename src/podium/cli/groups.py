"""Saved group commands: create, list, show, set, delete.

A saved group is a team's named list of attribute values; conditions name it with
``{"id": {"$inGroup": "beta-testers"}}``. Values are given as text (``--value u1 --value u2``,
or ``--values-file`` with one per line) or as a JSON list when numbers matter
(``--values-json '[1, 2, "3"]'``: ``2`` and ``"2"`` differ, as in GrowthBook).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.cli.common import JsonFlag, TeamOpt, YesFlag, confirm_deletion, connect, seg
from podium.cli.output import print_fields, print_json, print_table, when
from podium.errors import Invalid

groups_app = typer.Typer(help="Saved groups: a team's named lists of user ids (or other attribute values) "
                              "that conditions name with $inGroup.", no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The group's key, as conditions name it.")]
ValueOpt = Annotated[list[str] | None, typer.Option("--value", help="A value (text); repeat it.")]
ValuesFileOpt = Annotated[Path | None, typer.Option("--values-file", help="A file of values, one per line.",
                                                     exists=True, dir_okay=False)]
ValuesJsonOpt = Annotated[str | None, typer.Option("--values-json", help="The values as a JSON list: '[1, \"u2\"]'.")]
AttributeOpt = Annotated[str | None, typer.Option(help="The user attribute its values are of (default: id).")]
DescriptionOpt = Annotated[str | None, typer.Option(help="What the group is for.")]
PREVIEW = 10  # values shown by ``show`` before "and N more"


def group_path(team: str, key: str | None = None) -> str:
    base = f"/api/v1/teams/{seg(team)}/saved-groups"
    return base if key is None else f"{base}/{seg(key)}"


def read_values(value: list[str] | None, values_file: Path | None, values_json: str | None) -> list[Any] | None:
    """The values given by one of the three options, or None when none was."""
    given = [name for name, v in (("--value", value), ("--values-file", values_file), ("--values-json", values_json))
             if v]
    if len(given) > 1:
        raise Invalid(f"give the values one way, not with {' and '.join(given)}")
    if value:
        return list(value)
    if values_file is not None:
        try:
            text = values_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Invalid(f"cannot read {values_file}: {exc}") from None
        return [line.strip() for line in text.splitlines() if line.strip()]
    if values_json is not None:
        try:
            parsed = json.loads(values_json)
        except ValueError:
            raise Invalid(f"--values-json must be a JSON list, e.g. '[1, \"u2\"]', not {values_json!r}") from None
        if not isinstance(parsed, list):
            raise Invalid(f"--values-json must be a JSON list, e.g. '[1, \"u2\"]', not {values_json!r}")
        return parsed
    return None


def shown_values(values: list[Any]) -> str:
    head = ", ".join(json.dumps(v, ensure_ascii=False) for v in values[:PREVIEW])
    return head + (f" and {len(values) - PREVIEW} more" if len(values) > PREVIEW else "") if values else "-"


def summary(group: dict[str, Any]) -> str:
    count = len(group["values"])
    return f"{group['key']} of team {group['team']}: {count} value{'s' if count != 1 else ''} of {group['attribute']}"


@groups_app.command("create")
def create(
    key: KeyArg,
    team: TeamOpt,
    attribute: AttributeOpt = None,
    value: ValueOpt = None,
    values_file: ValuesFileOpt = None,
    values_json: ValuesJsonOpt = None,
    description: DescriptionOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a saved group; a condition names it as {"id": {"$inGroup": KEY}}."""
    body: dict[str, Any] = {"key": key, "values": read_values(value, values_file, values_json) or []}
    if attribute is not None:
        body["attribute"] = attribute
    if description is not None:
        body["description"] = description
    with connect() as api:
        made = api.post(group_path(team), json=body)
    if as_json:
        print_json(made)
        return
    typer.echo(f"created saved group {summary(made)}")


@groups_app.command("list")
def list_groups(team: TeamOpt, as_json: JsonFlag = False) -> None:
    """List a team's saved groups."""
    with connect() as api:
        rows = api.get(group_path(team))
    if as_json:
        print_json(rows)
        return
    print_table(
        ["group", "attribute", "values", "updated", "description"],
        [[g["key"], g["attribute"], str(len(g["values"])), when(g["updated_at"]), g.get("description") or ""]
         for g in rows],
        empty=f"no saved groups in team {team}",
    )


@groups_app.command("show")
def show(key: KeyArg, team: TeamOpt, as_json: JsonFlag = False) -> None:
    """Show a saved group: its attribute, values, and the experiments and flags that name it."""
    with connect() as api:
        group = api.get(group_path(team, key))
    if as_json:
        print_json(group)
        return
    print_fields([
        ("group", f"{group['key']} of team {group['team']}"),
        ("attribute", group["attribute"]),
        ("values", f"{len(group['values'])}: {shown_values(group['values'])}"),
        ("description", group.get("description") or "-"),
        ("used by", ", ".join(group.get("used_by") or []) or "-"),
        ("created", f"{when(group['created_at'])} by {group['created_by']}"),
        ("updated", when(group.get("updated_at"))),
    ])


@groups_app.command("set")
def set_group(
    key: KeyArg,
    team: TeamOpt,
    value: ValueOpt = None,
    values_file: ValuesFileOpt = None,
    values_json: ValuesJsonOpt = None,
    add: Annotated[list[str] | None, typer.Option("--add", help="Add a value (text); repeat it.")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="Remove a value (text); repeat it.")] = None,
    attribute: AttributeOpt = None,
    description: DescriptionOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a group: replace its values, --add or --remove some, or change its attribute or description."""
    values = read_values(value, values_file, values_json)
    if values is not None and (add or remove):
        raise Invalid("give new values, or --add / --remove, not both")
    body: dict[str, Any] = {}
    if attribute is not None:
        body["attribute"] = attribute
    if description is not None:
        body["description"] = description
    with connect() as api:
        if add or remove:
            current = api.get(group_path(team, key))["values"]
            gone = set(remove or [])
            values = [v for v in current if not (isinstance(v, str) and v in gone)]
            values += [v for v in dict.fromkeys(add or []) if v not in values]
        if values is not None:
            body["values"] = values
        if not body:
            raise Invalid("nothing to change: give --value, --values-file, --values-json, --add, --remove, "
                          "--attribute or --description")
        changed = api.patch(group_path(team, key), json=body)
    if as_json:
        print_json(changed)
        return
    typer.echo(f"updated saved group {summary(changed)}")


@groups_app.command("delete")
def delete(key: KeyArg, team: TeamOpt, yes: YesFlag = False) -> None:
    """Delete a saved group no condition names any more; asks first unless --yes."""
    confirm_deletion("saved group", key, f"Delete saved group {key!r} of team {team}?", yes)
    with connect() as api:
        api.delete(group_path(team, key))
    typer.echo(f"deleted saved group {key} of team {team}")
