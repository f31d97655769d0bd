"""The audit log: every mutation records who, what, when, before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from podium.catalog.auth import Actor
from podium.catalog.models import AuditEvent, Service
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

    With ``visible_to``, only the events that actor's team may see: those on services it
    owns now, and its own actions.
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
        owned = select(Service.name).where(Service.owner_id == visible_to.team_id)
        stmt = stmt.where(or_(AuditEvent.team == visible_to.team, AuditEvent.service.in_(owned)))
    return list(session.scalars(stmt))
