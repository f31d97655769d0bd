"""Forms that change experiments and flags: create and edit an experiment, start it; a flags page.

Each form posts to a route that parses the fields, calls one verb of the experiment service
(which checks ownership, the exposure cap and every value, and audits) and goes back to the
page with a note. A refused change shows the service's reason on the error page.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from podium.api.deps import PodiumDep
from podium.errors import Invalid
from podium.web.experiments import back_with_note, list_url, may_change, share
from podium.web.pages import PageRoute, render
from podium.web.session import FormActor, PageActor

router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)

Text = Annotated[str, Form()]


def names(text: str, field: str) -> list[str]:
    """``control, treatment`` as a list; Invalid when empty."""
    found = [part.strip() for part in text.split(",") if part.strip()]
    if not found:
        raise Invalid(f"{field}: give at least one name, separated by commas")
    return found


def share_of(text: str, field: str) -> float | None:
    """A share typed as ``2%`` or ``0.02``; None when left empty."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text.removesuffix("%")) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise Invalid(f"{field} must be a share such as 2% or 0.02, not {text[:20]!r}") from None


def json_of(text: str, field: str, default: Any) -> Any:
    """A JSON value typed in a form; ``default`` when left empty."""
    if not text.strip():
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Invalid(f"{field} is not JSON: {exc}") from None


def flags_url(service: str, env: str) -> str:
    return f"/services/{quote(service, safe='')}/environments/{quote(env, safe='')}/flags"


# Experiments -----------------------------------------------------------------------------


@router.get("/services/{name}/environments/{env}/experiments/new")
def new_experiment(request: Request, name: str, env: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """The form that defines a draft."""
    context = {"service": podium.catalog.get_service(name), "env": env, "cap": share(podium.experiments.cap),
               "may_change": may_change(podium, actor, name)}
    return render(request, "experiment_new.html", context)


@router.post("/services/{name}/environments/{env}/experiments/new")
def create_experiment(
    request: Request, name: str, env: str, podium: PodiumDep, actor: FormActor,
    key: Text = "", hypothesis: Text = "", variants: Text = "control, treatment", metric: Text = "",
    metric_kind: Text = "binomial", coverage: Text = "", guardrails: Text = "", conditions: Text = "",
    cuped: Text = "", sequential: Text = "", start: Text = "",
) -> RedirectResponse:
    """Create a draft (and start it when asked); then show it."""
    experiment = podium.experiments.create(
        actor, name, env, key.strip(), metric=metric.strip(), hypothesis=hypothesis,
        variants=names(variants, "variants"), metric_kind=metric_kind, coverage=share_of(coverage, "coverage"),
        guardrails=[g.strip() for g in guardrails.split(",") if g.strip()],
        conditions=json_of(conditions, "conditions", {}), cuped=bool(cuped), sequential=bool(sequential),
    )
    note = f"Created {experiment.key} as a draft."
    if start:
        experiment = podium.experiments.start(actor, name, env, experiment.key)
        note = f"Created and started {experiment.key}: {share(experiment.coverage)} of users."
    return back_with_note(request, podium, experiment, note)


@router.post("/services/{name}/environments/{env}/experiments/{key}/edit")
def edit_experiment(
    request: Request, name: str, env: str, key: str, podium: PodiumDep, actor: FormActor,
    hypothesis: Text = "", coverage: Text = "", guardrails: Text = "", conditions: Text = "",
    cuped: Text = "", sequential: Text = "",
) -> RedirectResponse:
    """Change what may change in the experiment's state; fields equal to the current ones change nothing."""
    current = podium.experiments.get(name, env, key)
    changes: dict[str, Any] = {
        "hypothesis": hypothesis,
        "guardrails": [g.strip() for g in guardrails.split(",") if g.strip()],
        "conditions": json_of(conditions, "conditions", {}),
        "cuped": bool(cuped), "sequential": bool(sequential),
    }
    wanted = share_of(coverage, "coverage")
    if wanted is not None:
        changes["coverage"] = wanted
    allowed = {"draft": None, "running": {"hypothesis", "coverage", "conditions", "guardrails", "cuped", "sequential"}}
    fields = allowed.get(current.status, {"hypothesis", "cuped", "sequential"})
    if fields is not None:
        changes = {k: v for k, v in changes.items() if k in fields}
    experiment = podium.experiments.update(actor, name, env, key, changes)
    return back_with_note(request, podium, experiment, f"Saved {experiment.key}.")


@router.post("/services/{name}/environments/{env}/experiments/{key}/start")
def start_experiment(
    request: Request, name: str, env: str, key: str, podium: PodiumDep, actor: FormActor,
) -> RedirectResponse:
    """Start a draft: users in its coverage get variants from now on."""
    experiment = podium.experiments.start(actor, name, env, key)
    return back_with_note(request, podium, experiment, f"Started: {share(experiment.coverage)} of users.")


# Flags ---------------------------------------------------------------------------------------


@router.get("/services/{name}/environments/{env}/flags")
def flags_page(request: Request, name: str, env: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """A service environment's flags: on or off, value, rollout and rules; forms to add and change them."""
    context = {
        "service": podium.catalog.get_service(name), "env": env,
        "flags": podium.experiments.flags.list(name, env),
        "may_change": may_change(podium, actor, name), "share": share, "as_json": json.dumps,
    }
    return render(request, "flags.html", context)


def _flag_fields(description: str, enabled: str, value: str, default_value: str, rollout: str,
                 rules: str) -> dict[str, Any]:
    return {
        "description": description, "enabled": bool(enabled),
        "value": json_of(value, "value", True), "default_value": json_of(default_value, "default value", False),
        "rollout": share_of(rollout, "rollout") if rollout.strip() else 1.0,
        "rules": json_of(rules, "rules", []),
    }


@router.post("/services/{name}/environments/{env}/flags")
def create_flag(
    name: str, env: str, podium: PodiumDep, actor: FormActor, key: Text = "", description: Text = "",
    enabled: Text = "", value: Text = "true", default_value: Text = "false", rollout: Text = "100%", rules: Text = "",
) -> RedirectResponse:
    """Add a flag, then show the flags."""
    fields = _flag_fields(description, enabled, value, default_value, rollout, rules)
    flag = podium.experiments.flags.create(actor, name, env, key.strip(), **fields)
    return RedirectResponse(f"{flags_url(name, env)}#flag-{quote(flag.key, safe='')}", status_code=303)


@router.post("/services/{name}/environments/{env}/flags/{key}")
def edit_flag(
    name: str, env: str, key: str, podium: PodiumDep, actor: FormActor, description: Text = "",
    enabled: Text = "", value: Text = "true", default_value: Text = "false", rollout: Text = "100%", rules: Text = "",
) -> RedirectResponse:
    """Change a flag (on or off, values, rollout, rules), then show the flags."""
    fields = _flag_fields(description, enabled, value, default_value, rollout, rules)
    podium.experiments.flags.update(actor, name, env, key, fields)
    return RedirectResponse(f"{flags_url(name, env)}#flag-{quote(key, safe='')}", status_code=303)


def experiments_link(name: str, env: str) -> str:
    """Where the flags page links back to."""
    return list_url(name, env)
