"""HTTP routes: experiments, flags, definitions and evaluation (docs/experiments.md).

Each route parses, calls one ``ExperimentService`` verb (``podium.experiments``, or its
``flags``) and renders. Changes act as the calling team (``ActorDep``): the service checks
ownership and audits. What SDKs read — definitions and evaluate — is authorised by one
dependency, ``ReaderDep``: any team token, or the app token of that same service
environment (``EnvironmentReaderDep`` in api/deps.py).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from podium.api.deploy import ReleaseOut, render
from podium.api.deps import ActorDep, EnvironmentReaderDep, PodiumDep
from podium.api.schemas import ERROR_RESPONSES
from podium.errors import Invalid, NotFound
from podium.experiments.flags import FlagInfo
from podium.experiments.rules import KEY_PATTERN
from podium.experiments.service import ExperimentInfo
from podium.experiments.tokens import AppCaller, Caller

router = APIRouter(prefix="/api/v1", tags=["experiments"], responses=ERROR_RESPONSES)
ENV = "/services/{service}/environments/{env}"
EXPERIMENT = ENV + "/experiments/{key}"
FLAG = ENV + "/flags/{key}"
KEY_SCHEMA: dict[str, Any] = {"pattern": KEY_PATTERN, "maxLength": 100}
ATTRIBUTES_MAX = 10_000


def metered_reader(request: Request, reader: EnvironmentReaderDep) -> Caller:
    """Any team token, or the app token of this service environment; an app's request is metered for its team."""
    if isinstance(reader, AppCaller):
        request.state.app_caller = reader
    return reader


ReaderDep = Annotated[Caller, Depends(metered_reader)]


# Shapes ------------------------------------------------------------------------------------


class CapOverrideOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    by: str
    at: datetime
    reason: str


class DecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    decision: str = Field(description="ship | discard")
    variant: str | None = Field(description="The shipped variant; null for discard (everyone gets the control).")
    by: str
    at: datetime
    reason: str


class ExperimentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    service: str
    env: str
    hypothesis: str
    status: str = Field(description="draft | running | stopped | decided")
    variants: list[str] = Field(description="The first is the control.")
    weights: list[float]
    coverage: float = Field(description="Share of users in the experiment.")
    cap: float = Field(description="The exposure cap: a coverage above it needs an override with a reason.")
    seed: str
    hash_version: int
    namespace: tuple[str, float, float] | None
    conditions: dict[str, Any]
    metric: str
    metric_kind: str = Field(description="binomial | numeric")
    guardrails: list[str]
    cuped: bool = Field(description="Results use CUPED (each user's metric before their first exposure).")
    sequential: bool = Field(description="Results give always-valid p-values: look every day without inflating errors.")
    cap_override: CapOverrideOut | None
    started_at: datetime | None
    started_by: str | None
    stopped_at: datetime | None
    stopped_by: str | None = Field(description="The team that stopped it, or 'guardrail'.")
    stop_reason: str | None
    decision: DecisionOut | None
    stale: bool = Field(description="Running longer than the stale days without a decision.")
    created_by: str
    created_at: datetime
    updated_at: datetime


class ExperimentIn(BaseModel):
    key: str = Field(description="e.g. 'big-button'.", json_schema_extra=KEY_SCHEMA)
    hypothesis: str = Field("", max_length=5000, description="What you expect, and why.")
    variants: list[str] = Field(["control", "treatment"], max_length=20, description="The first is the control.")
    weights: list[float] | None = Field(None, max_length=20, description="One per variant, summing to 1; null: equal.")
    coverage: float | None = Field(None, description="Share of users in the experiment; null: the exposure cap.")
    metric: str = Field(max_length=100, description="The primary metric's event name, e.g. 'signup'.")
    metric_kind: str = Field("binomial", max_length=20, description="binomial | numeric")
    guardrails: list[str] = Field([], max_length=20, description="Metrics where more is worse, e.g. 'error'.")
    seed: str | None = Field(None, max_length=100, description="Hashing seed; null: the key.")
    hash_version: int = Field(2, description="GrowthBook hash version: 1 or 2.")
    namespace: tuple[str, float, float] | None = Field(None, description="[id, start, end] for mutual exclusion.")
    conditions: dict[str, Any] = Field({}, description="Targeting, in GrowthBook's condition language.")
    cuped: bool = Field(False, description="Read results with CUPED variance reduction.")
    sequential: bool = Field(False, description="Read results with always-valid (sequential) p-values.")
    override_cap: bool = Field(False, description="Allow a coverage above the exposure cap (needs a reason).")
    reason: str | None = Field(None, max_length=500, description="Why the cap is overridden.")


class ExperimentPatch(BaseModel):
    """Fields to change; those left out keep their values. Running: hypothesis, coverage, conditions, guardrails."""

    hypothesis: str | None = Field(None, max_length=5000)
    variants: list[str] | None = Field(None, max_length=20)
    weights: list[float] | None = Field(None, max_length=20)
    coverage: float | None = None
    metric: str | None = Field(None, max_length=100)
    metric_kind: str | None = Field(None, max_length=20)
    guardrails: list[str] | None = Field(None, max_length=20)
    seed: str | None = Field(None, max_length=100)
    hash_version: int | None = None
    namespace: tuple[str, float, float] | None = None
    conditions: dict[str, Any] | None = None
    cuped: bool | None = None
    sequential: bool | None = None
    override_cap: bool = False
    reason: str | None = Field(None, max_length=500)


class StartIn(BaseModel):
    override_cap: bool = Field(False, description="Allow a coverage above the exposure cap (needs a reason).")
    reason: str | None = Field(None, max_length=500)


class StopIn(BaseModel):
    reason: str = Field("", max_length=500)


class DecideIn(BaseModel):
    decision: str = Field(max_length=20, description="ship | discard")
    variant: str | None = Field(None, max_length=100, description="The variant to ship; null for discard.")
    reason: str = Field(max_length=500, description="What the results showed.")


class RuleIn(BaseModel):
    condition: dict[str, Any] = Field(description="Who the rule is for, in GrowthBook's condition language.")
    value: Any = Field(description="What they get.")


class FlagIn(BaseModel):
    key: str = Field(description="e.g. 'new-checkout'.", json_schema_extra=KEY_SCHEMA)
    description: str = Field("", max_length=2000)
    enabled: bool = Field(False, description="Off: everyone gets default_value.")
    value: Any = Field(True, description="What users get when the flag is on for them.")
    default_value: Any = Field(False, description="What everyone else gets.")
    rollout: float = Field(1.0, description="Share of users (past the rules) the flag is on for.")
    rules: list[RuleIn] = Field([], max_length=100, description="The first rule whose condition matches wins.")


class FlagPatch(BaseModel):
    """Fields to change; those left out keep their values."""

    description: str | None = Field(None, max_length=2000)
    enabled: bool | None = None
    value: Any = None
    default_value: Any = None
    rollout: float | None = None
    rules: list[RuleIn] | None = Field(None, max_length=100)


class FlagOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    service: str
    env: str
    description: str
    enabled: bool
    value: Any
    default_value: Any
    rollout: float
    rules: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    updated_at: datetime


class DefinitionsOut(BaseModel):
    """What SDKs evaluate locally: every experiment but drafts (``force`` once not running), every flag."""

    service: str
    env: str
    experiments: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    savedGroups: dict[str, list[Any]] = Field(
        description="The values of each saved group the conditions name, by key."
    )


class SavedGroupIn(BaseModel):
    key: str = Field(description="What conditions name it by: {\"id\": {\"$inGroup\": KEY}}.",
                     json_schema_extra=KEY_SCHEMA)
    attribute: str = Field("id", max_length=100, description="The user attribute its values are of.")
    values: list[Any] = Field([], description="Strings and numbers ('2' and 2 differ).")
    description: str = Field("", max_length=2000)


class SavedGroupPatch(BaseModel):
    """Fields to change; those left out keep their values."""

    attribute: str | None = Field(None, max_length=100)
    values: list[Any] | None = None
    description: str | None = Field(None, max_length=2000)


class SavedGroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    team: str
    attribute: str
    values: list[Any]
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    used_by: list[str] = Field([], description="The experiments and flags whose conditions name it.")


def experiment_out(info: ExperimentInfo) -> ExperimentOut:
    return ExperimentOut.model_validate(info)


def flag_out(info: FlagInfo) -> FlagOut:
    return FlagOut.model_validate(info)


# Experiments -------------------------------------------------------------------------------


@router.get(ENV + "/experiments")
def list_experiments(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> list[ExperimentOut]:
    """The environment's experiments, by key."""
    return [experiment_out(e) for e in podium.experiments.list(service, env)]


@router.post(ENV + "/experiments", status_code=status.HTTP_201_CREATED)
def create_experiment(service: str, env: str, body: ExperimentIn, podium: PodiumDep, actor: ActorDep) -> ExperimentOut:
    """Create a draft. A coverage above the exposure cap needs ``override_cap`` and a ``reason``."""
    fields = body.model_dump(exclude={"key"})
    return experiment_out(podium.experiments.create(actor, service, env, body.key, **fields))


@router.get(EXPERIMENT)
def show_experiment(service: str, env: str, key: str, podium: PodiumDep, actor: ActorDep) -> ExperimentOut:
    return experiment_out(podium.experiments.get(service, env, key))


@router.patch(EXPERIMENT)
def edit_experiment(
    service: str, env: str, key: str, body: ExperimentPatch, podium: PodiumDep, actor: ActorDep
) -> ExperimentOut:
    """Change a draft freely; a running experiment only its hypothesis, coverage, conditions and guardrails."""
    changes = body.model_dump(exclude_unset=True, exclude={"override_cap", "reason"})
    return experiment_out(
        podium.experiments.update(
            actor, service, env, key, changes, override_cap=body.override_cap, reason=body.reason
        )
    )


@router.delete(EXPERIMENT, status_code=status.HTTP_204_NO_CONTENT)
def delete_experiment(service: str, env: str, key: str, podium: PodiumDep, actor: ActorDep) -> Response:
    """Delete a draft; an experiment that ran stays, with its results."""
    podium.experiments.delete(actor, service, env, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(EXPERIMENT + "/start")
def start_experiment(
    service: str, env: str, key: str, podium: PodiumDep, actor: ActorDep,
    body: Annotated[StartIn | None, Body()] = None,
) -> ExperimentOut:
    """Start a draft: users in its coverage get their variants."""
    body = body or StartIn()
    return experiment_out(
        podium.experiments.start(actor, service, env, key, override_cap=body.override_cap, reason=body.reason)
    )


@router.post(EXPERIMENT + "/stop")
def stop_experiment(
    service: str, env: str, key: str, podium: PodiumDep, actor: ActorDep,
    body: Annotated[StopIn | None, Body()] = None,
) -> ExperimentOut:
    """Stop a running experiment: everyone gets the control until a decision."""
    return experiment_out(podium.experiments.stop(actor, service, env, key, reason=(body or StopIn()).reason))


@router.post(EXPERIMENT + "/decide")
def decide_experiment(
    service: str, env: str, key: str, body: DecideIn, podium: PodiumDep, actor: ActorDep
) -> ExperimentOut:
    """Ship a variant to everyone, or discard the experiment (everyone gets the control), with a reason."""
    return experiment_out(
        podium.experiments.decide(
            actor, service, env, key, decision=body.decision, variant=body.variant, reason=body.reason
        )
    )


@router.get("/teams/{team}/experiments")
def team_experiments(
    team: str, podium: PodiumDep, actor: ActorDep,
    stale: bool = Query(False, description="Only experiments running too long without a decision."),
) -> list[ExperimentOut]:
    """The experiments of every service the team owns."""
    return [experiment_out(e) for e in podium.experiments.for_team(team, stale_only=stale)]


# Saved groups ------------------------------------------------------------------------------

GROUPS = "/teams/{team}/saved-groups"


@router.get(GROUPS)
def list_saved_groups(team: str, podium: PodiumDep, actor: ActorDep) -> list[SavedGroupOut]:
    return [SavedGroupOut.model_validate(g) for g in podium.experiments.groups.list(team)]


@router.post(GROUPS, status_code=status.HTTP_201_CREATED)
def create_saved_group(team: str, body: SavedGroupIn, podium: PodiumDep, actor: ActorDep) -> SavedGroupOut:
    """Create a saved group; conditions name it with ``$inGroup`` / ``$notInGroup``."""
    fields = body.model_dump(exclude={"key"})
    return SavedGroupOut.model_validate(podium.experiments.groups.create(actor, team, body.key, **fields))


@router.get(GROUPS + "/{key}")
def show_saved_group(team: str, key: str, podium: PodiumDep, actor: ActorDep) -> SavedGroupOut:
    """A saved group, with the experiments and flags that name it."""
    info = podium.experiments.groups.get(team, key)
    return SavedGroupOut.model_validate(info).model_copy(update={"used_by": podium.experiments.groups.users(team, key)})


@router.patch(GROUPS + "/{key}")
def edit_saved_group(team: str, key: str, body: SavedGroupPatch, podium: PodiumDep, actor: ActorDep) -> SavedGroupOut:
    changes = body.model_dump(exclude_unset=True)
    return SavedGroupOut.model_validate(podium.experiments.groups.update(actor, team, key, changes))


@router.delete(GROUPS + "/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_saved_group(team: str, key: str, podium: PodiumDep, actor: ActorDep) -> Response:
    """Delete a saved group; refused (409) while a condition names it, with their list."""
    podium.experiments.groups.delete(actor, team, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Flags -------------------------------------------------------------------------------------


@router.get(ENV + "/flags")
def list_flags(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> list[FlagOut]:
    return [flag_out(f) for f in podium.experiments.flags.list(service, env)]


@router.post(ENV + "/flags", status_code=status.HTTP_201_CREATED)
def create_flag(service: str, env: str, body: FlagIn, podium: PodiumDep, actor: ActorDep) -> FlagOut:
    """Create a flag; it is off (everyone gets ``default_value``) until enabled."""
    fields = body.model_dump(exclude={"key"})
    return flag_out(podium.experiments.flags.create(actor, service, env, body.key, **fields))


@router.get(FLAG)
def show_flag(service: str, env: str, key: str, podium: PodiumDep, actor: ActorDep) -> FlagOut:
    return flag_out(podium.experiments.flags.get(service, env, key))


@router.patch(FLAG)
def edit_flag(service: str, env: str, key: str, body: FlagPatch, podium: PodiumDep, actor: ActorDep) -> FlagOut:
    return flag_out(podium.experiments.flags.update(actor, service, env, key, body.model_dump(exclude_unset=True)))


@router.delete(FLAG, status_code=status.HTTP_204_NO_CONTENT)
def delete_flag(service: str, env: str, key: str, podium: PodiumDep, actor: ActorDep) -> Response:
    podium.experiments.flags.delete(actor, service, env, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# What SDKs read ----------------------------------------------------------------------------


@router.get(
    ENV + "/definitions", response_model=DefinitionsOut,
    responses={304: {"description": "Not modified: the If-None-Match tag is current."}},
)
def definitions(service: str, env: str, request: Request, podium: PodiumDep, reader: ReaderDep) -> Response:
    """The experiments and flags SDKs evaluate, with an ``ETag``; ``If-None-Match`` with it gives 304."""
    document, etag = podium.experiments.definitions(service, env)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")
    return Response(body, media_type="application/json", headers=headers)


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (or ``*``); weak tags compare weakly, as for GET."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def parse_attributes(text: str | None) -> dict[str, Any] | None:
    """The ``attributes`` query parameter: a JSON object, or nothing."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise Invalid('attributes must be a JSON object, e.g. {"country": "FR"}') from None
    if not isinstance(value, dict):
        raise Invalid('attributes must be a JSON object, e.g. {"country": "FR"}')
    return value


UserIdQuery = Annotated[str, Query(min_length=1, max_length=200, description="The user to evaluate for.")]
AttributesQuery = Annotated[
    str | None,
    Query(max_length=ATTRIBUTES_MAX, description='The user\'s attributes as a JSON object, e.g. {"country": "FR"}.'),
]


@router.get(ENV + "/evaluate")
def evaluate(
    service: str, env: str, user_id: UserIdQuery, podium: PodiumDep, reader: ReaderDep,
    attributes: AttributesQuery = None,
) -> dict[str, str | None]:
    """Every experiment's variant for the user (null: not in it), as the SDK gives it; records no exposure."""
    return podium.experiments.evaluate(service, env, user_id, parse_attributes(attributes))


@router.get(ENV + "/evaluate/flags")
def evaluate_flags(
    service: str, env: str, user_id: UserIdQuery, podium: PodiumDep, reader: ReaderDep,
    attributes: AttributesQuery = None,
) -> dict[str, Any]:
    """Every flag's value for the user, as the SDK gives it."""
    return podium.experiments.evaluate_flags(service, env, user_id, parse_attributes(attributes))


# The app token ------------------------------------------------------------------------------


class AppTokenOut(BaseModel):
    """The environment's app token, never its secret (only the app sees that, as PODIUM_TOKEN)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    service: str
    env: str
    created_at: datetime


class AppTokenRotationOut(BaseModel):
    token: AppTokenOut
    release: ReleaseOut | None = Field(description="The release carrying the new token; null when nothing was live.")


@router.get(ENV + "/app-token")
def show_app_token(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> AppTokenOut:
    """The app token the environment's releases get as PODIUM_TOKEN (404 before its first release)."""
    info = podium.app_tokens.show(actor, service, env)
    if info is None:
        raise NotFound(f"{service}/{env} has no app token yet: its first release makes one")
    return AppTokenOut.model_validate(info)


@router.post(ENV + "/app-token/rotate", status_code=status.HTTP_202_ACCEPTED)
def rotate_app_token(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> AppTokenRotationOut:
    """Revoke the app token at once and roll out a release carrying a new one (for a token that leaked)."""
    info, release = podium.rotate_app_token(actor, service, env)
    return AppTokenRotationOut(
        token=AppTokenOut.model_validate(info), release=None if release is None else render(podium, release)
    )
