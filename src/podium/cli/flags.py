"""Flag commands: create, list, show, set, enable, disable, delete, evaluate.

Values are JSON (``true``, ``3``, ``'"blue"'``, ``'{"limit": 5}'``), rules are JSON
objects ``{"condition": {...}, "value": ...}``; each command makes one API call and
renders the answer.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from podium.cli.common import EnvOpt, JsonFlag, ServiceOpt, connect, env_path, seg
from podium.cli.experiments import delete_confirmed, parse_json, parse_object, percent
from podium.cli.output import print_fields, print_json, print_table, when
from podium.errors import Invalid

flags_app = typer.Typer(help="Feature flags: on, off or a value, with targeting rules and a gradual rollout.",
                        no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The flag's key.")]
ValueOpt = Annotated[str | None, typer.Option(help="What users get when the flag is on for them, as JSON: true, 3, "
                                                   "'\"blue\"'.")]
DefaultOpt = Annotated[str | None, typer.Option("--default", help="What everyone else gets, as JSON.")]
RolloutOpt = Annotated[float | None, typer.Option(help="Share of users the flag is on for, 0 to 1 (0.1 is 10%).")]
RuleOpt = Annotated[list[str] | None, typer.Option(
    "--rule", help="A targeting rule, '{\"condition\": {\"country\": \"NL\"}, \"value\": true}'; repeat it, the first "
                   "match wins.")]


def flag_path(service: str, env: str, key: str | None = None) -> str:
    base = f"{env_path(service, env)}/flags"
    return base if key is None else f"{base}/{seg(key)}"


def check_rollout(rollout: float) -> float:
    if not 0 <= rollout <= 1:
        raise Invalid(f"--rollout is the share of users the flag is on for, from 0 to 1 (0.1 is 10%), not {rollout:g}")
    return rollout


def parse_rule(text: str) -> dict[str, Any]:
    rule = parse_object("--rule", text)
    if not isinstance(rule.get("condition"), dict) or "value" not in rule:
        raise Invalid(f"--rule needs a condition object and a value: '{{\"condition\": {{\"country\": \"NL\"}}, "
                      f"\"value\": true}}', not {text!r}")
    return rule


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def flag_fields(flag: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [
        ("flag", f"{flag['key']} in {flag['service']}/{flag['env']}"),
        ("state", "enabled" if flag["enabled"] else "disabled: everyone gets the default"),
        ("description", flag.get("description") or "-"),
        ("value", compact(flag["value"])),
        ("default", compact(flag["default_value"])),
        ("rollout", f"{percent(flag['rollout'], 2)} of users"),
    ]
    for number, rule in enumerate(flag.get("rules") or [], 1):
        fields.append((f"rule {number}", f"if {compact(rule['condition'])} then {compact(rule['value'])}"))
    fields += [("created", f"{when(flag['created_at'])} by {flag['created_by']}"),
               ("updated", when(flag.get("updated_at")))]
    return fields


def summary(flag: dict[str, Any]) -> str:
    rules = len(flag.get("rules") or [])
    state = "on" if flag["enabled"] else "off"
    return (f"{flag['key']} in {flag['service']}/{flag['env']} is {state}: {compact(flag['value'])} for "
            f"{percent(flag['rollout'], 2)} of users"
            + (f" and {rules} rule{'s' if rules != 1 else ''}" if rules else "")
            + f", else {compact(flag['default_value'])}")


@flags_app.command("create")
def create(
    key: KeyArg,
    service: ServiceOpt,
    env: EnvOpt = "staging",
    description: Annotated[str, typer.Option(help="What the flag switches.")] = "",
    value: ValueOpt = None,
    default: DefaultOpt = None,
    rollout: RolloutOpt = None,
    rule: RuleOpt = None,
    enabled: Annotated[bool, typer.Option("--enabled/--disabled", help="On from the start (default: off).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a flag (off unless --enabled); value true and default false unless given."""
    body: dict[str, Any] = {"key": key, "description": description, "enabled": enabled}
    if value is not None:
        body["value"] = parse_json("--value", value)
    if default is not None:
        body["default_value"] = parse_json("--default", default)
    if rollout is not None:
        body["rollout"] = check_rollout(rollout)
    if rule:
        body["rules"] = [parse_rule(text) for text in rule]
    with connect() as api:
        made = api.post(flag_path(service, env), json=body)
    if as_json:
        print_json(made)
        return
    typer.echo(f"created flag {summary(made)}")


@flags_app.command("list")
def list_flags(service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """List a service environment's flags."""
    with connect() as api:
        rows = api.get(flag_path(service, env))
    if as_json:
        print_json(rows)
        return
    print_table(
        ["flag", "state", "value", "default", "rollout", "rules", "description"],
        [[f["key"], "on" if f["enabled"] else "off", compact(f["value"]), compact(f["default_value"]),
          percent(f["rollout"], 2), str(len(f.get("rules") or [])), f.get("description") or ""] for f in rows],
        empty=f"no flags in {service}/{env}",
    )


@flags_app.command("show")
def show(key: KeyArg, service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """Show a flag: state, value, default, rollout and rules in the order they are tried."""
    with connect() as api:
        flag = api.get(flag_path(service, env, key))
    if as_json:
        print_json(flag)
        return
    print_fields(flag_fields(flag))


@flags_app.command("set")
def set_flag(
    key: KeyArg,
    service: ServiceOpt,
    env: EnvOpt = "staging",
    value: ValueOpt = None,
    default: DefaultOpt = None,
    rollout: RolloutOpt = None,
    rule: RuleOpt = None,
    no_rules: Annotated[bool, typer.Option("--no-rules", help="Remove every rule.")] = False,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a flag's value, default, rollout, rules (--rule replaces them all) or description."""
    if rule and no_rules:
        raise Invalid("give --rule or --no-rules, not both")
    body: dict[str, Any] = {}
    if value is not None:
        body["value"] = parse_json("--value", value)
    if default is not None:
        body["default_value"] = parse_json("--default", default)
    if rollout is not None:
        body["rollout"] = check_rollout(rollout)
    if rule or no_rules:
        body["rules"] = [parse_rule(text) for text in rule or []]
    if description is not None:
        body["description"] = description
    if not body:
        raise Invalid("nothing to change: give --value, --default, --rollout, --rule, --no-rules or --description")
    with connect() as api:
        changed = api.patch(flag_path(service, env, key), json=body)
    if as_json:
        print_json(changed)
        return
    typer.echo(f"updated flag {summary(changed)}")


def switch(key: str, service: str, env: str, on: bool, as_json: bool) -> None:
    with connect() as api:
        changed = api.patch(flag_path(service, env, key), json={"enabled": on})
    if as_json:
        print_json(changed)
        return
    typer.echo(f"flag {summary(changed)}")


@flags_app.command("enable")
def enable(key: KeyArg, service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """Turn a flag on: its rules and rollout decide who gets its value."""
    switch(key, service, env, True, as_json)


@flags_app.command("disable")
def disable(key: KeyArg, service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """Turn a flag off: everyone gets its default."""
    switch(key, service, env, False, as_json)


@flags_app.command("delete")
def delete(
    key: KeyArg,
    service: ServiceOpt,
    env: EnvOpt = "staging",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a flag (apps asking for it get their own default); asks first unless --yes."""
    delete_confirmed("flag", flag_path(service, env, key), key, service, env, yes)


@flags_app.command("evaluate")
def evaluate(
    service: ServiceOpt,
    user: Annotated[str, typer.Option(help="The user id, as the app passes it.")],
    env: EnvOpt = "staging",
    attributes: Annotated[str | None, typer.Option(
        help="The user's attributes, a JSON object: '{\"country\": \"NL\"}'.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """What one user gets, as the SDK would give it: every flag's value and every experiment's variant.

    Nothing is recorded: no exposure counts. ``--json`` prints both answers of the API as
    ``{"flags": {...}, "experiments": {...}}``.
    """
    params: dict[str, Any] = {"user_id": user}
    if attributes is not None:
        params["attributes"] = compact(parse_object("--attributes", attributes))
    with connect() as api:
        answer = {"flags": api.get(f"{env_path(service, env)}/evaluate/flags", params=params),
                  "experiments": api.get(f"{env_path(service, env)}/evaluate", params=params)}
    if as_json:
        print_json(answer)
        return
    rows = [["flag", key, compact(got)] for key, got in answer["flags"].items()]
    rows += [["experiment", key, got if got is not None else "- (not in it)"]
             for key, got in answer["experiments"].items()]
    print_table(["kind", "key", "user gets"], rows, empty=f"no flags or experiments in {service}/{env}")
