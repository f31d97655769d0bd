"""Experiment pages: a service environment's experiments, one experiment with its results.

The pages read through the experiment service's verbs (``podium.experiments``) and the
results document of ``docs/experiments.md``; the builders here turn its numbers into the
strings and the lift chart the templates print. A number that cannot be computed (None
in the results) is shown as ``—``, never as 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup

from podium.api.deps import PodiumDep
from podium.catalog.auth import Actor
from podium.catalog.models import Right
from podium.core import Podium
from podium.errors import Invalid, PodiumError
from podium.experiments.models import Decision, ExperimentStatus
from podium.experiments.service import ExperimentInfo
from podium.web.charts import svg_interval_chart
from podium.web.experiment_timeline import timeline_view
from podium.web.pages import PageRoute, render
from podium.web.session import FLASH_COOKIE, FormActor, PageActor, signer_of

NO_DATA = "—"
MINUS = "\N{MINUS SIGN}"  # wider than a hyphen: "+3.1%" and "-3.1%" line up
SRM_PREFIX = "sample ratio mismatch"  # the SRM warning has its own alert; the list shows the others
CHART_WIDTH = 760  # the chart fills the page's width: its text grows to about the size of the table's
STATUS_TONES = {"draft": "none", "running": "live", "stopped": "acknowledged", "decided": "deploying"}

router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)


# Formatting ------------------------------------------------------------------------------


def share(fraction: float | None) -> str:
    """A share of users as people read it: ``0.02`` → ``2.0%``, ``0.0025`` → ``0.25%``."""
    if fraction is None or not math.isfinite(fraction):
        return NO_DATA
    text = f"{fraction * 100:.3f}".rstrip("0")
    return f"{text}0%" if text.endswith(".") else f"{text}%"


def signed_percent(fraction: float | None, digits: int = 1) -> str:
    """A lift: ``0.287`` → ``+28.7%``, ``-0.031`` → ``-3.1%`` with a minus sign."""
    if fraction is None or not math.isfinite(fraction):
        return NO_DATA
    text = f"{abs(fraction) * 100:.{digits}f}%"
    if text.strip("0.%") == "":
        return text
    return ("+" if fraction > 0 else MINUS) + text


def tick_lift(fraction: float) -> str:
    """An axis tick of the lift chart: ``+10%``, ``0%``, ``-2.5%`` (a minus sign)."""
    text = f"{abs(fraction) * 100:.4f}".rstrip("0").rstrip(".")
    if text == "0":
        return "0%"
    return ("+" if fraction > 0 else MINUS) + text + "%"


def interval(low: float | None, high: float | None) -> str:
    """A confidence interval of lifts: ``+1.0% to +56.0%``."""
    if low is None or high is None:
        return NO_DATA
    return f"{signed_percent(low)} to {signed_percent(high)}"


def p_value(value: float | None) -> str:
    """``0.0412`` → ``0.041``; below a thousandth ``< 0.001``."""
    if value is None or not math.isfinite(value):
        return NO_DATA
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def p_phrase(value: float | None) -> str:
    """``p = 0.041``, ``p < 0.001``."""
    text = p_value(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def rate(value: float | None) -> str:
    """A conversion rate: ``0.1287`` → ``12.87%``."""
    if value is None or not math.isfinite(value):
        return NO_DATA
    return f"{value * 100:.2f}%"


def mean(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return NO_DATA
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def chance(value: float | None) -> str:
    """Chance to beat control: ``0.98`` → ``98.0%``."""
    if value is None or not math.isfinite(value):
        return NO_DATA
    return f"{value * 100:.1f}%"


def weights_text(weights: Sequence[float]) -> list[str]:
    """Each variant's weight as a share of the users in the experiment: ``[0.5, 0.5]`` → ``50%``, ``50%``."""
    total = sum(weights) or 1.0
    return [f"{weight / total * 100:.4g}%" for weight in weights]


# Results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultRow:
    """One variant's numbers as the results table shows them."""

    name: str
    control: bool
    users: str
    conversions: str
    outcome: str  # the rate (binomial) or the mean (numeric)
    lift: str
    interval: str
    p_value: str
    chance: str
    p_worse: str  # guardrails: the one-sided p-value of "worse than the control"
    better: bool | None  # the interval lies above zero (True), below (False), or holds it (None)


@dataclass(frozen=True)
class ResultsView:
    """An experiment's results (``docs/experiments.md``, "Results") ready for the page."""

    metric: str
    kind: str
    rows: list[ResultRow]
    chart: Markup
    srm_mismatch: bool
    srm_p_value: str  # "p = 0.041", "p < 0.001"
    warnings: list[str]
    split: str  # users per variant, as observed: "1,000 / 800"
    users: int
    guardrails: list[ResultsView]
    segment: SegmentView | None = None


@dataclass(frozen=True)
class SegmentView:
    """The results of the users with one attribute value (their first exposure's) and of everyone else."""

    attribute: str
    value: str
    inside: ResultsView
    rest: ResultsView


def _better(low: float | None, high: float | None) -> bool | None:
    if low is None or high is None:
        return None
    if low > 0:
        return True
    if high < 0:
        return False
    return None


def result_rows(kind: str, variants: Sequence[Mapping[str, Any]]) -> list[ResultRow]:
    """The table's rows, the control (the first variant) first."""
    rows = []
    for index, variant in enumerate(variants):
        conversions = variant.get("conversions")
        outcome = rate(variant.get("rate")) if kind == "binomial" else mean(variant.get("mean"))
        rows.append(ResultRow(
            name=str(variant["name"]),
            control=index == 0,
            users=f"{variant['users']:,}",
            conversions=NO_DATA if conversions is None else f"{conversions:,}",
            outcome=outcome,
            lift="control" if index == 0 else signed_percent(variant.get("lift")),
            interval="" if index == 0 else interval(variant.get("ci_low"), variant.get("ci_high")),
            p_value="" if index == 0 else p_value(variant.get("p_value")),
            chance="" if index == 0 else chance(variant.get("chance_to_beat_control")),
            p_worse="" if index == 0 else p_value(variant.get("p_worse")),
            better=None if index == 0 else _better(variant.get("ci_low"), variant.get("ci_high")),
        ))
    return rows


def lift_chart(metric: str, variants: Sequence[Mapping[str, Any]], css_class: str = "lift") -> Markup:
    """Each treatment's lift over the control with its 95% interval, against zero."""
    rows = [
        (str(variant["name"]), variant.get("lift"), variant.get("ci_low"), variant.get("ci_high"))
        for variant in variants[1:]
    ]
    return svg_interval_chart(
        rows, title=f"Lift in {metric} over control, 95% interval", format_value=tick_lift, css_class=css_class,
        width=CHART_WIDTH,
    )


def results_view(results: Mapping[str, Any], css_class: str = "lift") -> ResultsView:
    """The page's view of a results document (the SRM warning apart from the other warnings).

    Guardrails have the same shape, named by ``metric``: binomial, users with at least one event.
    """
    kind = str(results.get("kind", "binomial"))
    metric = str(results.get("metric", ""))
    variants: Sequence[Mapping[str, Any]] = results.get("variants", [])
    guardrails = [
        results_view({"kind": "binomial", **guardrail}, css_class=f"lift guardrail-{index}")
        for index, guardrail in enumerate(results.get("guardrails") or [])
    ]
    return ResultsView(
        metric=metric,
        kind=kind,
        rows=result_rows(kind, variants),
        chart=lift_chart(metric, variants, css_class=css_class),
        srm_mismatch=bool(results.get("srm_mismatch")),
        srm_p_value=p_phrase(results.get("srm_p_value")),
        warnings=[w for w in results.get("warnings") or [] if not str(w).startswith(SRM_PREFIX)],
        split=" / ".join(f"{variant['users']:,}" for variant in variants),
        users=sum(int(variant["users"]) for variant in variants),
        guardrails=guardrails,
        segment=segment_view(results.get("segment"), metric),
    )


def segment_view(segment: Mapping[str, Any] | None, metric: str) -> SegmentView | None:
    if not segment:
        return None
    attribute, value = str(segment["attribute"]), str(segment["value"])
    return SegmentView(
        attribute=attribute,
        value=value,
        inside=results_view({"metric": metric, **segment["segment"]}, css_class="lift segment"),
        rest=results_view({"metric": metric, **segment["rest"]}, css_class="lift rest"),
    )


# Pages -----------------------------------------------------------------------------------


def who_gets_what(experiment: ExperimentInfo) -> str:
    """What users get now, as the lifecycle table of ``docs/experiments.md`` says."""
    control = experiment.variants[0]
    if experiment.status == ExperimentStatus.DRAFT:
        return "A draft: apps do not see it yet, nobody is exposed."
    if experiment.status == ExperimentStatus.RUNNING:
        return (
            f"Running: {share(experiment.coverage)} of users get a variant by their hash, "
            "the others are not in the experiment."
        )
    if experiment.status == ExperimentStatus.STOPPED:
        return f"Stopped: everyone gets the control, {control}, until a decision."
    if experiment.decision is not None and experiment.decision.decision == Decision.SHIP:
        return f"Decided: everyone gets {experiment.decision.variant}."
    return f"Decided: discarded, everyone gets the control, {control}."


def may_change(podium: Podium, actor: Actor, service: str) -> bool:
    """Whether ``actor`` may change the service's experiments: pages offer the forms only then."""
    return podium.catalog.allows(actor, service, Right.CONFIG)


def list_url(service: str, env: str) -> str:
    return f"/services/{quote(service, safe='')}/environments/{quote(env, safe='')}/experiments"


@router.get("/services/{name}/environments/{env}/experiments")
def experiments_page(request: Request, name: str, env: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """A service environment's experiments: status, exposure against the cap, stale ones marked."""
    context = {
        "service": podium.catalog.get_service(name),
        "env": env,
        "experiments": podium.experiments.list(name, env),
        "cap": share(podium.experiments.cap),
        "stale_days": f"{podium.settings.experiments_stale_days:g}",
        "share": share,
        "tone": tone,
    }
    return render(request, "experiments.html", context)


@router.get("/services/{name}/environments/{env}/experiments/{key}")
def experiment_page(
    request: Request, name: str, env: str, key: str, podium: PodiumDep, actor: PageActor, segment: str = ""
) -> HTMLResponse:
    """One experiment: its hypothesis, lifecycle, exposure against the cap, and its results,
    optionally broken down by ``segment`` (``profession=marketing``) against everyone else."""
    experiment = podium.experiments.get(name, env, key)
    flash_cookie = request.cookies.get(FLASH_COOKIE)
    path = f"{list_url(name, env)}/{quote(key, safe='')}"
    results, problem, segment_problem, timeline = None, None, None, None
    if experiment.status != ExperimentStatus.DRAFT:
        reader = podium.results
        try:
            try:
                results = results_view(reader.results(name, env, key, segment=segment.strip() or None))
            except Invalid as exc:  # a mistyped segment: the whole results still help
                segment_problem = exc.detail
                results = results_view(reader.results(name, env, key))
            timeline = timeline_view(reader.over_time(name, env, key), signed_percent, tick_lift, interval,
                                     p_value, _better)
        except PodiumError as exc:  # the definition and history still help without the numbers
            problem = f"Results unavailable: {exc.detail}"
    context = {
        "experiment": experiment,
        "weights": weights_text(experiment.weights),
        "who_gets_what": who_gets_what(experiment),
        "results": results,
        "results_problem": problem,
        "timeline": timeline,
        "segment": segment,
        "segment_problem": segment_problem,
        "may_change": may_change(podium, actor, name),
        "guardrail_p": podium.settings.experiments_guardrail_p,
        "flash": signer_of(request).unseal(f"flash {path}", flash_cookie) if flash_cookie else None,
        "share": share,
        "tone": tone,
    }
    response = render(request, "experiment.html", context)
    if flash_cookie:  # shown once
        response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="lax", path=path)
    return response


@router.post("/services/{name}/environments/{env}/experiments/{key}/stop")
def stop(
    request: Request, name: str, env: str, key: str, podium: PodiumDep, actor: FormActor,
    reason: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Stop a running experiment (everyone gets the control), then show it with a note."""
    experiment = podium.experiments.stop(actor, name, env, key, reason=reason)
    return back_with_note(request, podium, experiment, f"Stopped: everyone gets {experiment.variants[0]}.")


@router.post("/services/{name}/environments/{env}/experiments/{key}/decide")
def decide(
    request: Request, name: str, env: str, key: str, podium: PodiumDep, actor: FormActor,
    choice: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Record a decision (``ship:VARIANT`` or ``discard``), then show the experiment with a note."""
    decision, _, variant = choice.partition(":")
    experiment = podium.experiments.decide(
        actor, name, env, key, decision=decision, variant=variant or None, reason=reason
    )
    note = who_gets_what(experiment)
    return back_with_note(request, podium, experiment, note)


def back_with_note(request: Request, podium: Podium, experiment: ExperimentInfo, note: str) -> RedirectResponse:
    path = f"{list_url(experiment.service, experiment.env)}/{quote(experiment.key, safe='')}"
    response = RedirectResponse(path, status_code=303)
    response.set_cookie(
        FLASH_COOKIE,
        signer_of(request).seal(f"flash {path}", note),
        httponly=True,
        samesite="lax",
        secure=podium.settings.cookie_secure,
        path=path,
        max_age=60,
    )
    return response


def tone(status: str) -> str:
    """The badge colour of an experiment's status."""
    return STATUS_TONES.get(status, "none")


@dataclass(frozen=True)
class EnvironmentExperiments:
    """One environment's line in the service page's experiments section."""

    env: str
    url: str
    total: int
    running: int
    stale: int


def service_experiments(podium: Podium, service: str, envs: Sequence[str]) -> list[EnvironmentExperiments]:
    """How many experiments each environment of ``service`` has, runs, and lets go stale."""
    lines = []
    for env in envs:
        found = podium.experiments.list(service, env)
        lines.append(EnvironmentExperiments(
            env=env,
            url=list_url(service, env),
            total=len(found),
            running=sum(1 for e in found if e.status == ExperimentStatus.RUNNING),
            stale=sum(1 for e in found if e.stale),
        ))
    return lines


def stale_rows(podium: Podium, team: str) -> list[tuple[ExperimentInfo, str]]:
    """The team's stale experiments, each with the address of its page."""
    return [
        (e, f"{list_url(e.service, e.env)}/{quote(e.key, safe='')}")
        for e in podium.experiments.for_team(team, stale_only=True)
    ]
