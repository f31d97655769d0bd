"""The audit log: every mutation records who, what, when, before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.catalog.auth import Actor
from podium.catalog.models import AuditEvent


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
    limit: int = 200,
) -> list[AuditEvent]:
    """Audit events, newest first, filtered by service, acting team and time."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if service is not None:
        stmt = stmt.where(AuditEvent.service == service)
    if team is not None:
        stmt = stmt.where(AuditEvent.team == team)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    return list(session.scalars(stmt))
