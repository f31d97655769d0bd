"""The audit log: every mutation records who, what, when, before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from podium.catalog.auth import Actor
from podium.catalog.models import AuditEvent, Service, Team
from podium.catalog.rules import is_name


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    service: str | None = None,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the current transaction, so it lands with the change or not at all."""
    event = AuditEvent(
        team=actor.team,
        token_id=actor.token_id,
        user=actor.user,
        session_id=actor.session_id,
        action=action,
        service=service,
        target=target,
        before=before,
        after=after,
    )
    session.add(event)
    return event


def query(
    session: Session,
    *,
    service: str | None = None,
    team: str | None = None,
    since: datetime | None = None,
    visible_to: Actor | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    """Audit events, newest first, filtered by service, acting team and time.

    With ``visible_to``, only the events that actor may see: those on services its teams
    own now, its teams' actions, and (for a person) their own.
    """
    # A filter that is not a name matches nothing; do not hand such text to the store.
    if (service is not None and not is_name(service)) or (team is not None and not is_name(team)):
        return []
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if service is not None:
        stmt = stmt.where(AuditEvent.service == service)
    if team is not None:
        stmt = stmt.where(AuditEvent.team == team)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if visible_to is not None:
        team_ids = {visible_to.team_id, *visible_to.teams}
        owned = select(Service.name).where(Service.owner_id.in_(team_ids))
        names = select(Team.name).where(Team.id.in_(team_ids))
        seen: list[ColumnElement[bool]] = [AuditEvent.team.in_(names), AuditEvent.service.in_(owned)]
        if visible_to.user is not None:
            seen.append(AuditEvent.user == visible_to.user)
        stmt = stmt.where(or_(*seen))
    return list(session.scalars(stmt))
