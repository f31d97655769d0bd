"""What a team holds: how many live tokens its members have, and its live grants elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from podium.catalog.models import Grant, Service, Team, Token
from podium.store.db import utcnow


@dataclass(frozen=True)
class TeamHoldings:
    """A team, its live token count, and its live grants on services it does not own."""

    team: Team
    live_tokens: int
    grants: list[Grant]


def team_holdings(session: Session, team: Team) -> TeamHoldings:
    """Read what ``team`` holds now; grants by service name."""
    live_tokens = session.scalar(
        select(func.count(Token.id)).where(Token.team_id == team.id, Token.revoked_at.is_(None))
    )
    grants = session.scalars(
        select(Grant)
        .join(Service, Grant.service_id == Service.id)
        .where(
            Grant.team_id == team.id,
            Service.owner_id != team.id,
            Grant.revoked_at.is_(None),
            Grant.expires_at > utcnow(),
        )
        .order_by(Service.name, Grant.id)
    )
    return TeamHoldings(team=team, live_tokens=live_tokens or 0, grants=list(grants))
