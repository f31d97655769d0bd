"""Read-only views the pages need and no capability has a verb for yet.

Each is a plain read inside one store session; it changes nothing and returns detached
rows, numbers or small records. ``team_holdings`` belongs in ``CatalogService`` once it
grows a team summary, ``deploy_statuses`` in ``DeployService`` once it has a read over
many services; until then they live here, next to the pages that use them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Grant, Right, Service, Team, Token
from podium.catalog.service import authorize, get_service, get_team
from podium.deploy.models import DeployState, Release, ReleaseStatus
from podium.errors import Forbidden
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


@dataclass(frozen=True)
class EnvStatus:
    """One environment in a status cell: ``live v3`` (live), ``failed`` (failed) or ``—`` (none)."""

    env: str
    label: str
    tone: str


def deploy_statuses(store: Store) -> dict[str, list[EnvStatus]]:
    """Per service name, each environment's status, staging before production.

    Live wins: an environment still serving v2 after v3 failed is ``live v2``. It is
    ``failed`` when nothing is live and its newest release failed, ``—`` otherwise.
    """
    newest = (
        select(Release.environment_id, func.max(Release.version).label("version"))
        .group_by(Release.environment_id)
        .subquery()
    )
    with store.session() as session:
        live: dict[int, int] = {
            environment_id: version
            for environment_id, version in session.execute(
                select(DeployState.environment_id, Release.version).join(
                    Release, Release.id == DeployState.live_release_id
                )
            )
        }
        latest: dict[int, str] = {
            environment_id: status
            for environment_id, status in session.execute(
                select(Release.environment_id, Release.status).join(
                    newest,
                    (Release.environment_id == newest.c.environment_id) & (Release.version == newest.c.version),
                )
            )
        }
        rows = session.execute(
            select(Service.name, Environment.id, Environment.name)
            .join(Environment, Environment.service_id == Service.id)
            .order_by(Service.name, Environment.id)
        )
        statuses: dict[str, list[EnvStatus]] = {}
        for service, environment_id, env in rows:
            if environment_id in live:
                status = EnvStatus(env, f"live v{live[environment_id]}", "live")
            elif latest.get(environment_id) == ReleaseStatus.FAILED:
                status = EnvStatus(env, "failed", "failed")
            else:
                status = EnvStatus(env, "—", "none")
            statuses.setdefault(service, []).append(status)
        return statuses


def may_deploy(store: Store, actor: Actor, service: str) -> bool:
    """Whether ``actor`` holds the deploy right on ``service``: pages offer a rollback only then."""
    with store.session() as session:
        try:
            authorize(session, actor, get_service(session, service), Right.DEPLOY)
        except Forbidden:
            return False
        return True
