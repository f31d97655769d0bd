"""Availability routes: incidents, checks and maintenance windows.

Opening an incident by hand is a route of its service (``POST /services/{service}/incidents``):
like every change, it is authorised by the service's ownership, which the path names.
Incidents are then acted on by id under ``/incidents``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep
from podium.api.schemas import ERROR_RESPONSES, RecordOut, end_of, fields_of
from podium.catalog.rules import ID_MAX
from podium.health.checks import CheckInfo
from podium.health.incidents import IncidentInfo, NoteInfo
from podium.health.maintenance import WindowInfo
from podium.store.db import utcnow

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
SERVICE = "/services/{service}"
CHECKS = SERVICE + "/environments/{env}/checks"
IncidentId = Annotated[int, Path(ge=1, le=ID_MAX, description="The incident's number.")]
WindowId = Annotated[int, Path(ge=1, le=ID_MAX, description="The window's number.")]


# Incidents -----------------------------------------------------------------------------


class IncidentIn(BaseModel):
    summary: str = Field(max_length=500, description="What is wrong, in a sentence.")
    env: str | None = Field("production", max_length=20, description="staging, production, or null for both.")


class NoteIn(BaseModel):
    text: str = Field(max_length=10_000)


@fields_of(NoteInfo)
class NoteOut(RecordOut):
    """A note on an incident's timeline."""


@fields_of(IncidentInfo)
class IncidentOut(RecordOut):
    """An incident, by names: its service, the team paged, its times and who acted."""

    team: str = Field(description="The team paged.")
    source: str = Field(description="check | manual")
    check: str | None = Field(description="The check that opened it, if one did.")
    state: str = Field(description="triggered | acknowledged | resolved")
    acknowledged_by: str | None = Field(description="team/token that acknowledged it.")
    cause_deploy: str | None = Field(description="The release that went live shortly before: its likely cause.")
    notes: list[NoteOut] | None = Field(None, description="With GET /incidents/{id} only.")

    @classmethod
    def of(cls, incident: IncidentInfo, *, with_notes: bool = False) -> IncidentOut:
        return cls.model_validate({**asdict(incident), "notes": incident.notes if with_notes else None})


@router.post(SERVICE + "/incidents", status_code=status.HTTP_201_CREATED, tags=["incidents"])
def open_incident(service: str, body: IncidentIn, podium: PodiumDep, actor: ActorDep) -> IncidentOut:
    """Open an incident by hand; it pages the service's owning team."""
    return IncidentOut.of(podium.incidents.open(actor, service, body.env, body.summary))


@router.get("/incidents", tags=["incidents"])
def list_incidents(
    podium: PodiumDep, actor: ActorDep,
    service: str | None = Query(None, max_length=100), team: str | None = Query(None, max_length=100),
    state: str | None = Query(None, max_length=20, description="triggered | acknowledged | resolved"),
    env: str | None = Query(None, max_length=20), since: datetime | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> list[IncidentOut]:
    """Incidents, newest first."""
    found = podium.incidents.list(service=service, team=team, state=state, env=env, since=since, limit=limit)
    return [IncidentOut.of(i) for i in found]


@router.get("/incidents/{incident_id}", tags=["incidents"])
def show_incident(incident_id: IncidentId, podium: PodiumDep, actor: ActorDep) -> IncidentOut:
    """One incident, with its notes."""
    return IncidentOut.of(podium.incidents.get(incident_id), with_notes=True)


@router.post("/incidents/{incident_id}/ack", tags=["incidents"])
def acknowledge_incident(incident_id: IncidentId, podium: PodiumDep, actor: ActorDep) -> IncidentOut:
    """Take a triggered incident on: paging stops escalating it."""
    return IncidentOut.of(podium.incidents.acknowledge(actor, incident_id))


@router.post("/incidents/{incident_id}/resolve", tags=["incidents"])
def resolve_incident(incident_id: IncidentId, podium: PodiumDep, actor: ActorDep) -> IncidentOut:
    return IncidentOut.of(podium.incidents.resolve(actor, incident_id))


@router.post("/incidents/{incident_id}/notes", status_code=status.HTTP_201_CREATED, tags=["incidents"])
def add_incident_note(incident_id: IncidentId, body: NoteIn, podium: PodiumDep, actor: ActorDep) -> NoteOut:
    return NoteOut.model_validate(podium.incidents.add_note(actor, incident_id, body.text))


# Checks --------------------------------------------------------------------------------


class CheckSettings(BaseModel):
    """Settings of a check; on PATCH, only those sent change, and null clears an optional one."""

    path: str | None = Field(None, max_length=500, description="HTTP: the path probed through the router.")
    tcp: str | None = Field(None, max_length=300, description="TCP: host:port to connect to.")
    interval: float | None = Field(None, description="Seconds between probes.")
    timeout: float | None = Field(None, description="Seconds a probe may take.")
    down_after: int | None = Field(None, description="Failures in a row before the check is down.")
    up_after: int | None = Field(None, description="Successes in a row before it is up again.")
    expect_status: int | None = Field(None, description="HTTP: the status wanted; default any below 400.")
    body_contains: str | None = Field(None, max_length=500, description="HTTP: text the body must contain.")
    json_field: str | None = Field(None, max_length=200, description="HTTP: a.b=value the JSON body must have.")
    enabled: bool | None = Field(None, description="false stops probing the check.")


class CheckIn(CheckSettings):
    name: str = Field(max_length=100, description="A DNS label, e.g. db; 'web' is every app's own.")


@fields_of(CheckInfo, but={"id"})
class CheckOut(RecordOut):
    """A check: its settings, its target, and what its probes concluded so far."""

    kind: str = Field(description="http | tcp")
    target: str = Field(description="GET /health or TCP host:port")
    path_pinned: bool = Field(description="false: the path follows app.json's healthchecks.web.")
    state: str = Field(description="unknown | up | down")


@router.get(SERVICE + "/checks", tags=["checks"])
def list_service_checks(service: str, podium: PodiumDep, actor: ActorDep) -> list[CheckOut]:
    """Every check of a service, production first."""
    return [CheckOut.model_validate(c) for c in podium.checks.list(service)]


@router.get(CHECKS, tags=["checks"])
def list_checks(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> list[CheckOut]:
    return [CheckOut.model_validate(c) for c in podium.checks.list(service, env)]


@router.post(CHECKS, status_code=status.HTTP_201_CREATED, tags=["checks"])
def add_check(service: str, env: str, body: CheckIn, podium: PodiumDep, actor: ActorDep) -> CheckOut:
    """Add an HTTP check (``path``) or a TCP one (``tcp``)."""
    settings: dict[str, Any] = body.model_dump(exclude={"name"}, exclude_none=True)
    return CheckOut.model_validate(podium.checks.add(actor, service, env, body.name, settings))


@router.patch(CHECKS + "/{name}", tags=["checks"])
def change_check(
    service: str, env: str, name: str, body: CheckSettings, podium: PodiumDep, actor: ActorDep
) -> CheckOut:
    """Change a check's settings (``web``: the one every deployed app has)."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    return CheckOut.model_validate(podium.checks.update(actor, service, env, name, changes))


@router.delete(CHECKS + "/{name}", status_code=status.HTTP_204_NO_CONTENT, tags=["checks"])
def remove_check(service: str, env: str, name: str, podium: PodiumDep, actor: ActorDep) -> Response:
    podium.checks.remove(actor, service, env, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Maintenance ---------------------------------------------------------------------------


class WindowIn(BaseModel):
    env: str | None = Field(None, max_length=20, description="staging or production; null: every environment.")
    starts_at: datetime | None = Field(None, description="When it starts (with a timezone); default now.")
    ends_at: datetime | None = Field(None, description="When it ends (with a timezone).")
    duration: str | None = Field(None, max_length=40, description="Or how long it lasts: 30m, 2h.")
    reason: str = Field("", max_length=500)

    def span(self) -> tuple[datetime, datetime]:
        """Start and end, from ``starts_at`` and one of ``ends_at`` or ``duration``."""
        start = self.starts_at or utcnow()
        return start, end_of(start, "ends_at", self.ends_at, self.duration)


@fields_of(WindowInfo)
class WindowOut(RecordOut):
    """A maintenance window, and whether it is on now."""

    active: bool

    @classmethod
    def of(cls, window: WindowInfo) -> WindowOut:
        return cls.model_validate({**asdict(window), "active": window.active(utcnow())})


@router.get(SERVICE + "/maintenance", tags=["maintenance"])
def list_windows(
    service: str, podium: PodiumDep, actor: ActorDep,
    include_past: bool = Query(False, alias="all", description="Include windows that have ended."),
) -> list[WindowOut]:
    """Maintenance windows on now or to come, earliest first."""
    return [WindowOut.of(w) for w in podium.maintenance.list(service, include_past=include_past)]


@router.post(SERVICE + "/maintenance", status_code=status.HTTP_201_CREATED, tags=["maintenance"])
def add_window(service: str, body: WindowIn, podium: PodiumDep, actor: ActorDep) -> WindowOut:
    """Plan a maintenance window: no incident opens from a check during it."""
    start, end = body.span()
    return WindowOut.of(podium.maintenance.add(actor, service, body.env, start, end, body.reason))


@router.delete(SERVICE + "/maintenance/{window_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["maintenance"])
def remove_window(service: str, window_id: WindowId, podium: PodiumDep, actor: ActorDep) -> Response:
    podium.maintenance.remove(actor, service, window_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
