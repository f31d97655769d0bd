"""Read-only views the pages need and no capability has a verb for yet.

Each is a plain read inside one store session; it changes nothing and returns detached
rows, numbers or small records. ``team_holdings`` belongs in ``CatalogService`` once it
grows a team summary, ``environment_statuses`` in ``DeployService`` and ``CheckService``
once they have reads over many services, ``may_act_on_incidents`` in ``IncidentService``
once it says who may act without acting; until then they live here, next to the pages
that use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select

from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Grant, Right, Service, Team, Token
from podium.catalog.service import active_grants, authorize, get_service, get_team
from podium.deploy.models import DeployState, Release, ReleaseStatus
from podium.errors import Forbidden
from podium.health.models import Check, CheckState, MaintenanceWindow
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


class Health(StrEnum):
    """What an environment's checks say now: a check's three states, and maintenance."""

    UP = CheckState.UP.value
    DOWN = CheckState.DOWN.value
    UNKNOWN = CheckState.UNKNOWN.value
    MAINTENANCE = "maintenance"


def health_state(check_states: Iterable[str], in_maintenance: bool) -> Health:
    """One state from an environment's enabled checks: down if any is down, up if all are up.

    No checks, or checks that have not yet agreed, say ``unknown``; a maintenance window
    on says ``maintenance`` whatever the checks say (they open no incidents then).
    """
    if in_maintenance:
        return Health.MAINTENANCE
    states = list(check_states)
    if Health.DOWN in states:
        return Health.DOWN
    if states and all(state == Health.UP for state in states):
        return Health.UP
    return Health.UNKNOWN


@dataclass(frozen=True)
class EnvStatus:
    """One environment in a status cell.

    ``label``/``tone``: ``live v3`` (live), ``failed`` (failed) or ``—`` (none), from its
    releases. ``health``: up, down, unknown or maintenance, from its checks; ``checked`` is
    False when no enabled check watches it, so the cell leaves that out.
    """

    env: str
    label: str
    tone: str
    health: Health = Health.UNKNOWN
    checked: bool = False


def environment_statuses(store: Store, now: datetime) -> dict[str, list[EnvStatus]]:
    """Per service name, each environment's status, staging before production.

    Live wins: an environment still serving v2 after v3 failed is ``live v2``. It is
    ``failed`` when nothing is live and its newest release failed, ``—`` otherwise. Its
    health comes from its enabled checks and the maintenance windows on at ``now``.
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
        checks: dict[int, list[str]] = {}
        for environment_id, state in session.execute(
            select(Check.environment_id, Check.state).where(Check.enabled.is_(True))
        ):
            checks.setdefault(environment_id, []).append(state)
        # A window with no environment covers all of the service's.
        maintenance: set[tuple[int, str | None]] = {
            (service_id, env)
            for service_id, env in session.execute(
                select(MaintenanceWindow.service_id, MaintenanceWindow.environment).where(
                    MaintenanceWindow.starts_at <= now, MaintenanceWindow.ends_at > now
                )
            )
        }
        rows = session.execute(
            select(Service.name, Service.id, Environment.id, Environment.name)
            .join(Environment, Environment.service_id == Service.id)
            .order_by(Service.name, Environment.id)
        )
        statuses: dict[str, list[EnvStatus]] = {}
        for service, service_id, environment_id, env in rows:
            if environment_id in live:
                label, tone = f"live v{live[environment_id]}", "live"
            elif latest.get(environment_id) == ReleaseStatus.FAILED:
                label, tone = "failed", "failed"
            else:
                label, tone = "—", "none"
            in_maintenance = (service_id, env) in maintenance or (service_id, None) in maintenance
            states = checks.get(environment_id, [])
            health = health_state(states, in_maintenance)
            statuses.setdefault(service, []).append(
                EnvStatus(env, label, tone, health, checked=bool(states) or in_maintenance)
            )
        return statuses


def may_act_on_incidents(store: Store, actor: Actor, service: str) -> bool:
    """Whether ``actor`` may acknowledge, resolve and annotate the service's incidents.

    The rule of ``IncidentService``: the owner, a team with a live grant, or the platform
    team (and, for one incident, the team it paged, which the page checks itself). The
    buttons follow it; the verbs check it again.
    """
    if actor.is_admin:
        return True
    with store.session() as session:
        svc = get_service(session, service)
        team_ids = {actor.team_id, *actor.teams}
        return actor.acts_for(svc.owner_id) or any(active_grants(session, svc, t) for t in team_ids)


def may_deploy(store: Store, actor: Actor, service: str) -> bool:
    """Whether ``actor`` holds the deploy right on ``service``: pages offer a rollback only then."""
    with store.session() as session:
        try:
            authorize(session, actor, get_service(session, service), Right.DEPLOY)
        except Forbidden:
            return False
        return True
