"""HTTP routes: events apps send, and experiment results."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, CallerDep, PodiumDep
from podium.api.schemas import ERROR_RESPONSES
from podium.core import Podium
from podium.errors import Invalid
from podium.experiments.events import MAX_BATCH
from podium.experiments.tokens import AppCaller, Caller

router = APIRouter(prefix="/api/v1", tags=["experiments"], responses=ERROR_RESPONSES)


def metered(request: Request, caller: CallerDep) -> Caller:
    """The caller; a deployed app is left where the request meter (api/billing.py) finds it, to bill its team."""
    if isinstance(caller, AppCaller):
        request.state.app_caller = caller
    return caller


MeteredCallerDep = Annotated[Caller, Depends(metered)]


class EventsIn(BaseModel):
    service: str = Field(max_length=100, description="The service the events belong to.")
    env: str = Field(max_length=20, description="staging or production.")
    events: list[Any] = Field(
        description=f"At most {MAX_BATCH:,} events. Each: id (1 to 64 characters, the sender's, for idempotency), "
        "type (exposure | metric), user_id, experiment and variant (exposure) or name and value (metric), "
        "attributes (a flat object), at (ISO-8601 with a timezone; default now)."
    )


class RejectedOut(BaseModel):
    index: int = Field(description="The event's position in the batch, from 0.")
    reason: str


class EventsOut(BaseModel):
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events whose id was stored already (or came earlier in the batch).")
    rejected: list[RejectedOut]


def parse_envelope(body: bytes) -> EventsIn:
    """The batch's envelope, parsed with orjson (several times faster than the standard library on
    a batch of thousands of events); Invalid names what is wrong with it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the body must be a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise Invalid('the body must be a JSON object: {"service": ..., "env": ..., "events": [...]}')
    for field, longest in (("service", 100), ("env", 20)):
        value = data.get(field)
        if not isinstance(value, str) or len(value) > longest:
            raise Invalid(f"{field} must be a string of at most {longest} characters")
    if not isinstance(data.get("events"), list):
        raise Invalid("events must be a list of events")
    return EventsIn.model_construct(service=data["service"], env=data["env"], events=data["events"])


def record(podium: Podium, caller: Caller, body: bytes) -> EventsOut:
    """Parse, check and store one batch (in a worker thread: it is all CPU and store)."""
    envelope = parse_envelope(body)
    if isinstance(caller, AppCaller):
        caller.require(envelope.service, envelope.env)
        result = podium.events.record_for_environment(caller.environment_id, envelope.events)
    else:
        result = podium.events.record(caller, envelope.service, envelope.env, envelope.events)
    return EventsOut.model_validate(result.to_dict())


@router.post(
    "/events", response_model=EventsOut,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": EventsIn.model_json_schema()}}}},
)
async def post_events(request: Request, podium: PodiumDep, caller: MeteredCallerDep) -> EventsOut:
    """Store a batch of exposures and metric values; bad events are rejected by index, good ones kept.

    The body is an ``EventsIn``. Sent with the environment's app token (``PODIUM_TOKEN``), or a
    token of a team that may change the service's config. The answer comes once the stored
    events are committed.
    """
    body = await request.body()
    return await run_in_threadpool(record, podium, caller, body)


@router.get("/services/{service}/environments/{env}/experiments/{key}/results")
def experiment_results(
    service: str, env: str, key: str, podium: PodiumDep, actor: ActorDep,
    metric: str | None = Query(None, max_length=100, description="A metric other than the experiment's own "
                               "(read as binomial: users with at least one event)."),
    segment: str | None = Query(None, max_length=200, description="attribute=value: that segment against "
                                "everyone else."),
    cuped: bool | None = Query(None, description="CUPED on the metric before each user's first exposure; "
                               "default: the experiment's setting."),
    sequential: bool | None = Query(None, description="Always-valid p-values and confidence sequences; "
                                    "default: the experiment's setting."),
) -> dict[str, Any]:
    """Per variant: users, conversions or mean, lift with its 95% interval and the p-value of the same inference,
    chance to beat control; ``cuped`` and ``sequential`` at the top say how they were read."""
    return podium.results.results(
        service, env, key, metric=metric, segment=segment, cuped=cuped, sequential=sequential
    )


@router.get("/services/{service}/environments/{env}/experiments/{key}/results/daily")
def experiment_results_daily(
    service: str, env: str, key: str, podium: PodiumDep, actor: ActorDep,
    metric: str | None = Query(None, max_length=100, description="A metric other than the experiment's own "
                               "(read as binomial: users with at least one event)."),
    cuped: bool | None = Query(None, description="Default: the experiment's setting."),
    sequential: bool | None = Query(None, description="Default: the experiment's setting."),
) -> dict[str, Any]:
    """The results at the end of each day (UTC) from the first exposure on, cumulative: per day and variant,
    users, lift with its 95% interval, p-value and chance to beat control, read as the results are."""
    return podium.results.over_time(service, env, key, metric=metric, cuped=cuped, sequential=sequential)
