"""On-call routes: a team's rotation, its overrides, and the pages sent for its incidents.

Every authenticated team may see who is on call; changing a rotation, and reading the
pages with their delivery errors, is for the team's members and the platform team. The
Apprise URLs of people are never sent back: they may hold secrets (webhook tokens).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep
from podium.api.schemas import ERROR_RESPONSES
from podium.health.models import Notification, RotationOverride
from podium.health.oncall import Period, RotationView, handoff_text
from podium.health.paging import page_state

router = APIRouter(prefix="/api/v1/teams/{team}/oncall", tags=["oncall"], responses=ERROR_RESPONSES)


def member_team(team: str, podium: PodiumDep, actor: ActorDep) -> str:
    """The team of the path, once the caller is known to be in it (or on the platform team).

    A dependency, so a foreign team is refused before its request body is even read.
    """
    podium.oncall.require_member(actor, team)
    return team


MemberTeam = Annotated[str, Depends(member_team)]


class PersonIn(BaseModel):
    name: str = Field(description="How the person is called in pages and listings.", max_length=80)
    url: str = Field(
        "", description="An Apprise URL that reaches them: slack://…, mailto://…, json://host/path. Leave it out to "
        "name a Podium user of the team: pages go to their contact methods."
    )


class PersonOut(BaseModel):
    name: str


class RotationIn(BaseModel):
    members: list[PersonIn] = Field(description="People in order: the first is on call from starts_at.")
    period: Period = Field(description="How often the rotation hands off.")
    handoff: str = Field(description="When it hands off, in UTC: 'mon 09:00' (or '09:00' when daily).")
    escalate_after_minutes: int = Field(15, description="Minutes unacknowledged before the next person is paged.")
    starts_at: datetime | None = Field(None, description="When the first person's shift begins; default: now.")


class OverrideIn(BaseModel):
    name: str = Field(max_length=80)
    url: str = Field(description="An Apprise URL that reaches this person.")
    starts_at: datetime = Field(description="When the override begins (with a timezone).")
    ends_at: datetime = Field(description="When it ends (with a timezone): the rotation takes over again.")


class OverrideOut(BaseModel):
    id: int
    name: str
    starts_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, row: RotationOverride) -> OverrideOut:
        return cls(id=row.id, name=row.name, starts_at=row.starts_at, ends_at=row.ends_at)


class OnCallOut(BaseModel):
    """Who is on call for a team now and next; times in UTC, names only."""

    team: str
    current: PersonOut
    next: PersonOut
    next_handoff_at: datetime = Field(
        description="When `next` takes over: a handoff, or an override starting or ending."
    )
    escalate_after_minutes: int
    members: list[str] = Field(description="The rotation's people, in order.")
    period: Period
    handoff: str = Field(description="'mon 09:00' (weekly) or '09:00' (daily), UTC.")
    timezone: str = "UTC"
    starts_at: datetime
    overrides: list[OverrideOut] = Field(description="Overrides not over yet.")

    @classmethod
    def of(cls, view: RotationView) -> OnCallOut:
        rotation = view.rotation
        return cls(
            team=view.team,
            current=PersonOut(name=view.on_call.current.name),
            next=PersonOut(name=view.on_call.next.name),
            next_handoff_at=view.on_call.next_handoff_at,
            escalate_after_minutes=rotation.escalate_after_minutes,
            members=[m["name"] for m in rotation.members],
            period=Period(rotation.period),
            handoff=handoff_text(rotation),
            starts_at=rotation.starts_at,
            overrides=[OverrideOut.of(o) for o in view.overrides],
        )


class PageOut(BaseModel):
    """One notification of the paging outbox."""

    id: int
    incident_id: int | None
    kind: str = Field(description="trigger, escalate or resolve.")
    recipient: str
    state: str = Field(description="sent, pending (retried later), failed (given up) or no-target.")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When it is tried again; null unless pending.")
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, row: Notification, max_attempts: int) -> PageOut:
        state = page_state(row, max_attempts)
        return cls(
            id=row.id, incident_id=row.incident_id, kind=row.kind, recipient=row.recipient, state=state,
            attempts=row.attempts, created_at=row.created_at,
            next_attempt_at=row.next_attempt_at if state == "pending" else None,
            sent_at=row.sent_at, last_error=row.last_error,
        )


@router.get("")
def show_oncall(team: str, podium: PodiumDep, actor: ActorDep) -> OnCallOut:
    return OnCallOut.of(podium.oncall.show(team))


@router.put("")
def set_oncall(team: MemberTeam, body: RotationIn, podium: PodiumDep, actor: ActorDep) -> OnCallOut:
    view = podium.oncall.set_rotation(
        actor, team, [(p.name, p.url) for p in body.members], body.period, body.handoff,
        body.escalate_after_minutes, body.starts_at,
    )
    return OnCallOut.of(view)


@router.post("/overrides", status_code=status.HTTP_201_CREATED)
def add_override(team: MemberTeam, body: OverrideIn, podium: PodiumDep, actor: ActorDep) -> OverrideOut:
    row = podium.oncall.add_override(actor, team, body.name, body.url, body.starts_at, body.ends_at)
    return OverrideOut.of(row)


@router.delete("/overrides/{override_id}")
def delete_override(team: MemberTeam, override_id: int, podium: PodiumDep, actor: ActorDep) -> OverrideOut:
    return OverrideOut.of(podium.oncall.delete_override(actor, team, override_id))


@router.get("/pages")
def list_pages(
    team: MemberTeam, podium: PodiumDep, actor: ActorDep, limit: int = Query(50, ge=1, le=1000)
) -> list[PageOut]:
    rows = podium.oncall.pages(actor, team, limit)
    return [PageOut.of(row, podium.settings.paging_max_attempts) for row in rows]
