"""Read-only views the team page needs and the catalog has no verb for yet.

Both are plain reads over the catalog's tables, inside one store session; they change
nothing and return detached rows or numbers. They belong in ``CatalogService`` once it
grows a team summary; until then they live here, next to the one page that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from podium.catalog.models import Grant, Service, Team, Token
from podium.catalog.service import get_team
from podium.store.db import Store, utcnow


@dataclass(frozen=True)
class TeamHoldings:
    """What a team holds: how many live tokens its members have, and its live grants elsewhere."""

    team: Team
    live_tokens: int
    grants: list[Grant]


def team_holdings(store: Store, name: str) -> TeamHoldings:
    """The team ``name`` (NotFound if unknown), its live token count, and its live grants."""
    with store.session() as session:
        team = get_team(session, name)
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
