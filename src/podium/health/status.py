"""An environment's status: what its releases say, and what its checks say now.

The pages show it per service (a cell per environment) and on the status board.
``CheckService.environment_statuses`` reads it for every service at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.catalog.models import Environment, Service
from podium.deploy.status import NOTHING_LIVE, release_summaries
from podium.health.models import Check, CheckState, MaintenanceWindow


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
    releases (``podium.deploy.status``). ``health``: up, down, unknown or maintenance,
    from its checks; ``checked`` is False when no enabled check watches it, so the cell
    leaves that out.
    """

    env: str
    label: str
    tone: str
    health: Health = Health.UNKNOWN
    checked: bool = False


EnvStatuses = dict[str, list[EnvStatus]]  # per service name


def environment_statuses(session: Session, now: datetime) -> EnvStatuses:
    """Per service name, each environment's status, staging before production.

    Its health comes from its enabled checks and the maintenance windows on at ``now``.
    """
    releases = release_summaries(session)
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
        summary = releases.get(environment_id, NOTHING_LIVE)
        in_maintenance = (service_id, env) in maintenance or (service_id, None) in maintenance
        states = checks.get(environment_id, [])
        health = health_state(states, in_maintenance)
        statuses.setdefault(service, []).append(
            EnvStatus(env, summary.label, summary.tone, health, checked=bool(states) or in_maintenance)
        )
    return statuses
