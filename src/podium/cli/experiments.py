"""Experiment commands: create, edit, start, stop, decide, list, show, results, delete.

Each command checks what it can parse on its own (numbers, counts, JSON), makes one API
call and renders the answer; the server's refusals (the exposure cap, a transition from
the wrong state) come back as one line through ``output.run_cli``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.text import Text

from podium.cli.common import EnvOpt, JsonFlag, ServiceOpt, confirm, connect, env_path, seg
from podium.cli.output import ago, notice, print_fields, print_json, print_table, render, when
from podium.errors import Invalid

experiments_app = typer.Typer(help="A/B tests on a capped share of a service environment's users.",
                              no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="The experiment's key.")]
MetricKindOpt = Annotated[str, typer.Option("--metric-kind", help="binomial (users with an event) or numeric "
                                                                  "(the sum of each user's values).")]
METRIC_KINDS = ("binomial", "numeric")


# Parsing options ---------------------------------------------------------------------


def parse_json(option: str, text: str) -> Any:
    """A JSON value given on the command line; Invalid with the option's name otherwise."""
    try:
        return json.loads(text)
    except ValueError as exc:
        looks_like_a_word = text[:1] not in "{[\"" and not text[:1].isdigit()
        why = " (a string needs quotes: '\"blue\"')" if looks_like_a_word else f" ({exc})"
        raise Invalid(f"{option} is not JSON: {text!r}{why}") from None


def parse_object(option: str, text: str) -> dict[str, Any]:
    value = parse_json(option, text)
    if not isinstance(value, dict):
        raise Invalid(f"{option} must be a JSON object such as '{{\"country\": \"NL\"}}', not {text!r}")
    return value


def parse_names(option: str, texts: list[str]) -> list[str]:
    """Names from ``a,b`` or a repeated option, in order, blanks dropped."""
    names = [name.strip() for text in texts for name in text.split(",") if name.strip()]
    if not names and texts:
        raise Invalid(f"{option} names nothing")
    return names


def parse_weights(text: str, variants: list[str] | None) -> list[float]:
    """``0.5,0.5`` as numbers, one per variant when the variants are known."""
    parts = [part.strip() for part in text.split(",")]
    try:
        weights = [float(part) for part in parts]
    except ValueError:
        raise Invalid(f"--weights must be numbers separated by commas, such as 0.5,0.5, not {text!r}") from None
    if variants is not None and len(weights) != len(variants):
        count = f"{len(weights)} weight" + ("s" if len(weights) != 1 else "")
        raise Invalid(f"--weights gives {count} for {len(variants)} variants "
                      f"({', '.join(variants)}): give one per variant")
    if any(w < 0 for w in weights):
        raise Invalid(f"--weights must not be negative: {text!r}")
    return weights


def check_coverage(coverage: float) -> float:
    if not 0 < coverage <= 1:
        raise Invalid(f"--coverage is the share of users exposed: above 0 and at most 1 (0.02 is 2%), not {coverage:g}")
    return coverage


def parse_namespace(text: str) -> list[Any]:
    """``ns:0:0.5`` → ``["ns", 0.0, 0.5]``: the experiment uses that range of namespace ``ns``."""
    parts = text.rsplit(":", 2)
    try:
        if len(parts) != 3 or not parts[0]:
            raise ValueError
        return [parts[0], float(parts[1]), float(parts[2])]
    except ValueError:
        raise Invalid(f"--namespace must be NAME:START:END, such as ns:0:0.5, not {text!r}") from None


def check_kind(kind: str) -> str:
    if kind not in METRIC_KINDS:
        raise Invalid(f"--metric-kind must be binomial or numeric, not {kind!r}")
    return kind


def cap_fields(override_cap: bool, reason: str | None) -> dict[str, Any]:
    """The override of the exposure cap the server asks for above the cap: both, or neither."""
    if override_cap and not (reason or "").strip():
        raise Invalid("--override-cap needs --reason: why this experiment may expose more users than the cap")
    return {"override_cap": True, "reason": reason} if override_cap else {}


@contextmanager
def cap_words() -> Iterator[None]:
    """The server's refusal above the cap, in the CLI's words (its options, not the API's fields)."""
    try:
        yield
    except Invalid as error:
        raise Invalid(error.detail.replace("override_cap with a reason", "--override-cap --reason TEXT")) from None


def experiment_path(service: str, env: str, key: str | None = None) -> str:
    base = f"{env_path(service, env)}/experiments"
    return base if key is None else f"{base}/{seg(key)}"


# Rendering ---------------------------------------------------------------------------


def percent(share: float | None, digits: int = 1) -> str:
    """``0.02`` → ``2%``, ``0.0125`` → ``1.2%``: shares of users read as percentages."""
    if share is None:
        return "-"
    return f"{share * 100:.{digits}f}".rstrip("0").rstrip(".") + "%"


def fixed_percent(share: float | None, digits: int) -> str:
    """A percentage with a fixed number of decimals, so a column of them lines up."""
    return "-" if share is None else f"{share * 100:.{digits}f}%"


def signed_percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def p_text(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def where(experiment: dict[str, Any]) -> str:
    return f"{experiment['service']}/{experiment['env']}"


def split_text(experiment: dict[str, Any]) -> str:
    weights = experiment.get("weights") or []
    return ", ".join(f"{name} {percent(w)}" for name, w in zip(experiment["variants"], weights, strict=False)) \
        or ", ".join(experiment["variants"])


def coverage_text(experiment: dict[str, Any]) -> str:
    text = f"{percent(experiment['coverage'], 2)} of users (cap {percent(experiment.get('cap'), 2)})"
    if experiment.get("cap") is not None and experiment["coverage"] > experiment["cap"]:
        text += ": above the cap"
    return text


def experiment_fields(e: dict[str, Any]) -> list[tuple[str, str]]:
    status = e["status"] + ("  (stale: running without a decision for too long)" if e.get("stale") else "")
    fields = [
        ("experiment", f"{e['key']} in {where(e)}"),
        ("status", status),
        ("hypothesis", e.get("hypothesis") or "-"),
        ("variants", split_text(e)),
        ("coverage", coverage_text(e)),
    ]
    override = e.get("cap_override")
    if override:
        fields.append(("cap override", f"by {override['by']} {when(override['at'])}: {override['reason']}"))
    namespace = e.get("namespace")
    fields += [
        ("metric", f"{e['metric']} ({e.get('metric_kind', 'binomial')})"),
        ("guardrails", ", ".join(e.get("guardrails") or []) or "-"),
        ("assignment", f"seed {e.get('seed') or e['key']}, hash version {e.get('hash_version', 2)}"),
        ("namespace", f"{namespace[0]} {namespace[1]:g} to {namespace[2]:g}" if namespace else "-"),
        ("conditions", json.dumps(e["conditions"], ensure_ascii=False) if e.get("conditions") else "everyone"),
        ("results read", ", ".join([*(["CUPED"] if e.get("cuped") else []),
                                   "sequential (always valid)" if e.get("sequential") else "fixed horizon"])),
    ]
    if e.get("started_at"):
        fields.append(("started", f"{when(e['started_at'])} by {e.get('started_by') or '-'}"))
    if e.get("stopped_at"):
        reason = f": {e['stop_reason']}" if e.get("stop_reason") else ""
        fields.append(("stopped", f"{when(e['stopped_at'])} by {e.get('stopped_by') or '-'}{reason}"))
    decision = e.get("decision")
    if decision:
        what = f"ship {decision['variant']}" if decision["decision"] == "ship" else "discard"
        fields.append(("decision", f"{what}, {when(decision['at'])} by {decision['by']}: {decision['reason']}"))
    fields.append(("created", f"{when(e['created_at'])} by {e['created_by']}"))
    return fields


def everyone_gets(e: dict[str, Any]) -> str:
    """Which variant every user sees once the experiment no longer runs."""
    decision = e.get("decision")
    if decision and decision["decision"] == "ship":
        return str(decision["variant"])
    return str(e["variants"][0])


def results_table(title: str, results: dict[str, Any]) -> None:
    """One row per variant: users, conversions and rate (or mean), lift with its interval, p, chance."""
    numeric = results.get("kind") == "numeric"
    columns = ["variant", "users", *(["mean"] if numeric else ["conversions", "rate"]),
               "lift", "95% interval", "p-value", "chance to beat control"]
    rows = []
    for v in results["variants"]:
        measured = [f"{v['mean']:.4g}" if v.get("mean") is not None else "-"] if numeric else \
            [str(v.get("conversions", "-")), fixed_percent(v.get("rate"), 2)]
        rows.append([v["name"], str(v["users"]), *measured, *inference_cells(v)])
    if title:
        typer.echo(title)
    print_table(columns, rows, empty="no variants")


def inference_cells(variant: dict[str, Any]) -> list[str]:
    """Lift, its 95% interval, p-value and chance to beat control, as the results tables show them."""
    interval = "-" if variant.get("ci_low") is None else \
        f"{signed_percent(variant['ci_low'])} to {signed_percent(variant['ci_high'])}"
    return [signed_percent(variant.get("lift")), interval, p_text(variant.get("p_value")),
            fixed_percent(variant.get("chance_to_beat_control"), 1)]


def warning_lines(results: dict[str, Any]) -> list[str]:
    """The sample ratio check, always, then every other warning the server gave."""
    warnings = [str(w) for w in results.get("warnings") or []]
    p = results.get("srm_p_value")
    if results.get("srm_mismatch"):
        srm = next((w for w in warnings if w.startswith("sample ratio mismatch")), None)
        lines = [f"WARNING: {srm}" if srm else
                 f"WARNING: sample ratio mismatch (p = {p:.2g}): users are not split as configured; "
                 "these results cannot be trusted"]
        warnings = [w for w in warnings if w != srm]
    elif p is None:
        lines = ["sample ratio check: not enough users yet"]
    else:
        lines = [f"sample ratio check: p = {p:.3g}, users are split as configured"]
    return lines + [f"warning: {w}" for w in warnings]


def print_results(results: dict[str, Any]) -> None:
    """Everyone's table, the sample ratio check and warnings, the guardrails, then a segment."""
    reading = [word for word in ("cuped", "sequential") if results.get(word)]
    typer.echo(f"{results['experiment']} in {where(results)}: {results['metric']} ({results['kind']}), "
               f"{results['status']}" + (f"; read with {' and '.join(reading)}" if reading else ""))
    results_table("", results)
    for line in warning_lines(results):
        style = "bold red" if line.startswith("WARNING") else "yellow" if line.startswith("warning") else ""
        render(Text(line, style=style))
    for guardrail in results.get("guardrails") or []:
        results_table(f"\nguardrail {guardrail['metric']} (more is worse: the chance to beat control is "
                      "the chance of fewer)", guardrail)
    segment = results.get("segment")
    if segment:
        label = f"{segment['attribute']} = {segment['value']}"
        results_table(f"\n{label}", segment["segment"])
        results_table(f"\neveryone else ({segment['attribute']} ≠ {segment['value']})", segment["rest"])


CupedOpt = Annotated[bool, typer.Option("--cuped", help="Read results with CUPED: each user's metric before "
                                                        "their first exposure narrows the interval.")]
SequentialOpt = Annotated[bool, typer.Option("--sequential", help="Always-valid p-values: look every day without "
                                                                  "inflating false positives.")]


# Commands ----------------------------------------------------------------------------


@experiments_app.command("create")
def create(
    key: KeyArg,
    service: ServiceOpt,
    hypothesis: Annotated[str, typer.Option(help="What you expect, e.g. 'a larger button gets more sign-ups'.")],
    variants: Annotated[str, typer.Option(help="Variant names, the control first: control,treatment.")],
    metric: Annotated[str, typer.Option(help="The primary metric: the name of the events apps track.")],
    env: EnvOpt = "staging",
    coverage: Annotated[float | None, typer.Option(help="Share of users exposed, 0 < c ≤ 1 (default: the exposure "
                                                        "cap, 0.02 unless the platform changed it).")] = None,
    weights: Annotated[str | None, typer.Option(help="Share of each variant, e.g. 0.5,0.5 (default: equal).")] = None,
    metric_kind: MetricKindOpt = "binomial",
    guardrail: Annotated[list[str] | None, typer.Option(
        help="A metric where more is worse (e.g. error); repeat it or give a comma list.")] = None,
    seed: Annotated[str | None, typer.Option(help="The hashing seed (default: the key).")] = None,
    hash_version: Annotated[int, typer.Option(min=1, max=2, help="GrowthBook's hash version, 1 or 2.")] = 2,
    namespace: Annotated[str | None, typer.Option(
        help="NAME:START:END: only users in that range of the namespace, e.g. ns:0:0.5.")] = None,
    condition: Annotated[str | None, typer.Option(
        help="Targeting on user attributes, a JSON object: '{\"country\": \"NL\"}'.")] = None,
    override_cap: Annotated[bool, typer.Option("--override-cap", help="Allow a coverage above the exposure cap "
                                                                       "(needs --reason; recorded).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why the cap is overridden.")] = None,
    cuped: CupedOpt = False,
    sequential: SequentialOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Define an experiment as a draft; a coverage above the exposure cap needs --override-cap --reason."""
    names = parse_names("--variants", [variants])
    body: dict[str, Any] = {
        "key": key, "hypothesis": hypothesis, "variants": names,
        "weights": parse_weights(weights, names) if weights is not None else None,
        "coverage": check_coverage(coverage) if coverage is not None else None,
        "metric": metric, "metric_kind": check_kind(metric_kind),
        "guardrails": parse_names("--guardrail", guardrail or []), "seed": seed, "hash_version": hash_version,
        "namespace": parse_namespace(namespace) if namespace else None,
        "conditions": parse_object("--condition", condition) if condition else {},
        "cuped": cuped, "sequential": sequential,
        **cap_fields(override_cap, reason),
    }
    with connect() as api, cap_words():
        made = api.post(experiment_path(service, env), json=body)
    if as_json:
        print_json(made)
        return
    typer.echo(f"created experiment {made['key']} in {where(made)} (draft): {percent(made['coverage'], 2)} of users, "
               f"{split_text(made)}; start it with podium experiments start {made['key']} --service {service} "
               f"--env {env}")
    if made.get("cap_override"):
        notice(f"the coverage is above the cap of {percent(made.get('cap'), 2)}: the override is recorded")


@experiments_app.command("edit")
def edit(
    key: KeyArg,
    service: ServiceOpt,
    env: EnvOpt = "staging",
    hypothesis: Annotated[str | None, typer.Option(help="A new hypothesis.")] = None,
    variants: Annotated[str | None, typer.Option(help="New variant names, the control first (drafts only).")] = None,
    weights: Annotated[str | None, typer.Option(help="New weights, one per variant (drafts only).")] = None,
    coverage: Annotated[float | None, typer.Option(help="A new share of users exposed (the cap applies).")] = None,
    metric: Annotated[str | None, typer.Option(help="A new primary metric (drafts only).")] = None,
    metric_kind: Annotated[str | None, typer.Option("--metric-kind", help="binomial or numeric (drafts only).")]
    = None,
    guardrail: Annotated[list[str] | None, typer.Option(help="The guardrail metrics, replacing the old ones.")]
    = None,
    seed: Annotated[str | None, typer.Option(help="A new hashing seed (drafts only).")] = None,
    hash_version: Annotated[int | None, typer.Option(min=1, max=2, help="1 or 2 (drafts only).")] = None,
    namespace: Annotated[str | None, typer.Option(help="NAME:START:END (drafts only).")] = None,
    condition: Annotated[str | None, typer.Option(help="New targeting, a JSON object ('{}': everyone).")] = None,
    override_cap: Annotated[bool, typer.Option("--override-cap", help="Allow a coverage above the exposure cap "
                                                                       "(needs --reason; recorded).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why the cap is overridden.")] = None,
    cuped: Annotated[bool | None, typer.Option("--cuped/--no-cuped", help="Read results with CUPED (any time).")]
    = None,
    sequential: Annotated[bool | None, typer.Option(
        "--sequential/--fixed-horizon", help="Always-valid p-values, or one look at the end (any time).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an experiment; a running one may change only hypothesis, coverage, conditions, guardrails, reading."""
    names = parse_names("--variants", [variants]) if variants is not None else None
    body: dict[str, Any] = {
        "hypothesis": hypothesis, "variants": names,
        "weights": parse_weights(weights, names) if weights is not None else None,
        "coverage": check_coverage(coverage) if coverage is not None else None, "metric": metric,
        "metric_kind": check_kind(metric_kind) if metric_kind is not None else None,
        "guardrails": parse_names("--guardrail", guardrail) if guardrail is not None else None,
        "seed": seed, "hash_version": hash_version,
        "namespace": parse_namespace(namespace) if namespace else None,
        "conditions": parse_object("--condition", condition) if condition is not None else None,
        "cuped": cuped, "sequential": sequential,
    }
    body = {k: v for k, v in body.items() if v is not None}
    if not body:
        raise Invalid("nothing to change: give an option such as --coverage or --hypothesis")
    body.update(cap_fields(override_cap, reason))
    with connect() as api, cap_words():
        changed = api.patch(experiment_path(service, env, key), json=body)
    if as_json:
        print_json(changed)
        return
    typer.echo(f"updated experiment {changed['key']} in {where(changed)} ({changed['status']}): "
               f"{percent(changed['coverage'], 2)} of users, {split_text(changed)}")


@experiments_app.command("start")
def start(
    key: KeyArg,
    service: ServiceOpt,
    env: EnvOpt = "staging",
    override_cap: Annotated[bool, typer.Option("--override-cap", help="Allow a coverage above the exposure cap "
                                                                       "(needs --reason; recorded).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why the cap is overridden.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a draft: from now on its share of users gets the variants and is counted."""
    body = {"override_cap": False, "reason": None, **cap_fields(override_cap, reason)}
    with connect() as api, cap_words():
        started = api.post(f"{experiment_path(service, env, key)}/start", json=body)
    if as_json:
        print_json(started)
        return
    typer.echo(f"{started['key']} is running in {where(started)}: {percent(started['coverage'], 2)} of users, "
               f"{split_text(started)}")


@experiments_app.command("stop")
def stop(
    key: KeyArg,
    service: ServiceOpt,
    env: EnvOpt = "staging",
    reason: Annotated[str | None, typer.Option(help="Why it stops (recorded).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stop a running experiment: everyone gets the control until it is decided."""
    with connect() as api:
        stopped = api.post(f"{experiment_path(service, env, key)}/stop", json={"reason": reason or ""})
    if as_json:
        print_json(stopped)
        return
    typer.echo(f"stopped {stopped['key']} in {where(stopped)}: everyone gets {everyone_gets(stopped)}; "
               f"record a decision with podium experiments decide {stopped['key']} --service {service} --env {env} "
               "(--ship VARIANT | --discard) --reason TEXT")


@experiments_app.command("decide")
def decide(
    key: KeyArg,
    service: ServiceOpt,
    reason: Annotated[str, typer.Option(help="Why: what the results showed (recorded).")],
    env: EnvOpt = "staging",
    ship: Annotated[str | None, typer.Option(metavar="VARIANT", help="Ship this variant to everyone.")] = None,
    discard: Annotated[bool, typer.Option("--discard", help="Keep the control for everyone.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Record the decision: ship a variant to everyone, or discard the experiment (everyone gets the control)."""
    if (ship is None) == (not discard):
        raise Invalid("give exactly one of --ship VARIANT or --discard")
    if not reason.strip():
        raise Invalid("--reason must say why")
    body = {"decision": "ship" if ship is not None else "discard", "variant": ship, "reason": reason}
    with connect() as api:
        decided = api.post(f"{experiment_path(service, env, key)}/decide", json=body)
    if as_json:
        print_json(decided)
        return
    what = f"ship {ship}" if ship is not None else "discard"
    typer.echo(f"decided {decided['key']} in {where(decided)}: {what}; everyone gets {everyone_gets(decided)}")


@experiments_app.command("list")
def list_experiments(
    service: Annotated[str | None, typer.Option("--service", "-s", help="The service.")] = None,
    env: EnvOpt = "staging",
    team: Annotated[str | None, typer.Option("--team", "-t", help="Every experiment of a team's services "
                                                                   "instead.")] = None,
    stale: Annotated[bool, typer.Option("--stale", help="With --team: only those running too long "
                                                        "without a decision.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List a service environment's experiments, or a team's (--team, --stale)."""
    if (service is None) == (team is None):
        raise Invalid("give --service (and --env) for one service environment, or --team for a team's experiments")
    if stale and team is None:
        raise Invalid("--stale lists a team's stale experiments: give --team")
    with connect() as api:
        if team is not None:
            rows = api.get(f"/api/v1/teams/{seg(team)}/experiments", params={"stale": stale})
        else:
            rows = api.get(experiment_path(str(service), env))
    if as_json:
        print_json(rows)
        return
    print_table(
        ["experiment", "where", "status", "coverage", "metric", "started", "decision"],
        [[e["key"] + (" (stale)" if e.get("stale") else ""), where(e), e["status"],
          percent(e["coverage"], 2) + (" (override)" if e.get("cap_override") else ""), e["metric"],
          ago(e["started_at"]) if e.get("started_at") else "-",
          "-" if not e.get("decision") else (f"ship {e['decision']['variant']}" if e["decision"]["decision"] == "ship"
                                             else "discard")] for e in rows],
        empty=(f"team {team} has no {'stale ' if stale else ''}experiments" if team is not None
               else f"no experiments in {service}/{env}"),
    )


@experiments_app.command("show")
def show(key: KeyArg, service: ServiceOpt, env: EnvOpt = "staging", as_json: JsonFlag = False) -> None:
    """Show an experiment: status, split, coverage against the cap and its override, who did what and why."""
    with connect() as api:
        experiment = api.get(experiment_path(service, env, key))
    if as_json:
        print_json(experiment)
        return
    print_fields(experiment_fields(experiment))


@experiments_app.command("results")
def results(
    key: KeyArg,
    service: ServiceOpt,
    env: EnvOpt = "staging",
    metric: Annotated[str | None, typer.Option(help="Another metric than the primary one.")] = None,
    segment: Annotated[str | None, typer.Option(metavar="ATTR=VALUE", help="Also break the results down by a user "
                                                                           "attribute, e.g. profession=marketing.")]
    = None,
    cuped: Annotated[bool | None, typer.Option("--cuped/--no-cuped", help="CUPED or not for this reading "
                                                                           "(default: the experiment's setting).")]
    = None,
    sequential: Annotated[bool | None, typer.Option(
        "--sequential/--fixed-horizon", help="Always-valid p-values or not (default: the experiment's setting).")]
    = None,
    daily: Annotated[bool, typer.Option("--daily", help="The results at the end of each day (UTC), cumulative, "
                                                        "from the first exposure on.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Results per variant: lift with its 95% interval and p-value (one inference), chance to beat control, SRM."""
    if segment is not None and "=" not in segment.strip("="):
        raise Invalid(f"--segment must be ATTRIBUTE=VALUE, such as profession=marketing, not {segment!r}")
    if daily and segment is not None:
        raise Invalid("--daily and --segment cannot be read together: ask for one, then the other")
    given = {"metric": metric, "segment": segment,
             "cuped": None if cuped is None else str(cuped).lower(),
             "sequential": None if sequential is None else str(sequential).lower()}
    params = {k: v for k, v in given.items() if v is not None}
    with connect() as api:
        answer = api.get(f"{experiment_path(service, env, key)}/results{'/daily' if daily else ''}", params=params)
    if as_json:
        print_json(answer)
    elif daily:
        print_daily(answer)
    else:
        print_results(answer)


def print_daily(over_time: dict[str, Any]) -> None:
    """One row per day and variant, each day's figures cumulative up to its end."""
    reading = [word for word in ("cuped", "sequential") if over_time.get(word)]
    read_with = f"; read with {' and '.join(reading)}" if reading else ""
    typer.echo(f"{over_time['experiment']} in {where(over_time)}: {over_time['metric']} ({over_time['kind']}) "
               f"at the end of each day (UTC), cumulative{read_with}")
    numeric = over_time.get("kind") == "numeric"
    columns = ["day", "variant", "users", "mean" if numeric else "rate", "lift", "95% interval", "p-value",
               "chance to beat control"]
    rows = []
    for point in over_time["days"]:
        for v in point["variants"]:
            measured = (f"{v['mean']:.4g}" if v.get("mean") is not None else "-") if numeric else \
                fixed_percent(v.get("rate"), 2)
            rows.append([point["day"], v["name"], str(v["users"]), measured, *inference_cells(v)])
    print_table(columns, rows, empty="no exposures yet")


@experiments_app.command("delete")
def delete(
    key: KeyArg,
    service: ServiceOpt,
    env: EnvOpt = "staging",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a draft (an experiment that ran stays, with its decision)."""
    delete_confirmed("experiment", experiment_path(service, env, key), key, service, env, yes)


def delete_confirmed(kind: str, path: str, key: str, service: str, env: str, yes: bool) -> None:
    """Delete ``path`` once the user said yes (or passed --yes); exit 1 when they said no."""
    if not yes:
        answer = confirm(f"Delete {kind} {key!r} of {service}/{env}?")
        if answer is None:
            raise Invalid(f"not deleting {kind} {key!r} without a confirmation: pass --yes")
        if not answer:
            notice(f"kept {kind} {key}")
            raise typer.Exit(1)
    with connect() as api:
        api.delete(path)
    typer.echo(f"deleted {kind} {key} from {service}/{env}")
