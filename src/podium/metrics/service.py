"""Metrics verbs: read incidents, maintenance, releases and policies from the store, then measure.

Reading metrics is open to every authenticated team; setting a service's SLO is for its
owner (or the platform team), and a team's hour-of-week weights for its members (or the
platform team). Both changes are audited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import ENVIRONMENTS, Environment, Service
from podium.catalog.service import authorize, get_service, get_team
from podium.deploy.models import Artifact, Release
from podium.errors import Forbidden, Invalid, NotFound
from podium.health.models import AvailabilityPolicy, Incident, MaintenanceWindow, Slo
from podium.metrics.availability import AvailabilityReport, Timeline, measure, weekly
from podium.metrics.dora import DeployColumns, DoraReport, ReleaseFacts, dora_report, dora_weekly, failed_changes
from podium.metrics.period import Period, months, parse_since
from podium.metrics.slo import SloStatus, check_objective, slo_status
from podium.metrics.weights import HourWeights, weights_from_traffic
from podium.store.db import Store, utcnow

NAN = float("nan")
PRODUCTION = "production"


@dataclass(frozen=True)
class Scope:
    """What a report covers, in one environment: one service, one team's services, or every service."""

    service: str | None = None
    team: str | None = None
    environment: str = PRODUCTION

    def __post_init__(self) -> None:
        if self.service is not None and self.team is not None:
            raise Invalid("give a service or a team, not both")
        check_environment(self.environment)


def check_environment(env: str) -> str:
    """One of the environments every service has; else Invalid."""
    if env not in ENVIRONMENTS:
        shown = env if len(env) <= 40 else f"{env[:40]}…"
        raise Invalid(f"invalid environment {shown!r}: use {' or '.join(ENVIRONMENTS)}")
    return env


@dataclass(frozen=True)
class AvailabilityResult:
    scope: Scope
    report: AvailabilityReport
    weekly: list[tuple[datetime, AvailabilityReport]]


@dataclass(frozen=True)
class DoraResult:
    team: str | None
    report: DoraReport
    weekly: list[tuple[datetime, DoraReport]]


@dataclass(frozen=True)
class SloResult:
    service: str
    environment: str
    status: SloStatus


@dataclass(frozen=True)
class WeightsView:
    team: str
    source: str  # "flat" | "table" | "traffic"
    weights: list[float]


class MetricsService:
    """The metrics' verbs over one store.

    ``rollback_window`` is how soon after a release went live a rollback below it marks
    it as a failed change: the deploy watch window.
    """

    def __init__(self, store: Store, rollback_window: float = 60.0) -> None:
        self.store = store
        self.rollback_window = timedelta(seconds=rollback_window)

    # Availability ------------------------------------------------------------------------

    def availability(self, scope: Scope, since: str, now: datetime | None = None) -> AvailabilityResult:
        """Availability, MTTR, MTTA and MTBF of a scope since ``since`` (``30d``, an ISO date...)."""
        now = now or utcnow()
        period = Period(parse_since(since, now), now)
        with self.store.session() as session:
            services = _services(session, scope)
            measured = list(self._timelines(session, services, scope.environment, period, now).values())
        return AvailabilityResult(scope, measure(measured, period), weekly(measured, period))

    def monthly_availability(self, scope: Scope, since: str, now: datetime | None = None) -> list[dict[str, Any]]:
        """One row per calendar month and service: the availability numbers, for a CSV export."""
        now = now or utcnow()
        period = Period(parse_since(since, now), now)
        rows: list[dict[str, Any]] = []
        with self.store.session() as session:
            services = _services(session, scope)
            timelines = self._timelines(session, services, scope.environment, period, now)
        names = {s.id: s.name for s in services}
        for first, part in months(period):
            for service_id in sorted(timelines, key=lambda i: names[i]):
                report = measure([timelines[service_id]], part)
                rows.append({"month": first.strftime("%Y-%m"), "service": names[service_id],
                             "environment": scope.environment, **_report_row(report)})
        return rows

    def incidents(self, scope: Scope, since: str, now: datetime | None = None) -> list[dict[str, Any]]:
        """The incidents triggered since ``since``, oldest first, for a CSV export."""
        now = now or utcnow()
        start = parse_since(since, now)
        with self.store.session() as session:
            services = {s.id: s.name for s in _services(session, scope)}
            stmt = (
                select(Incident, Release.version)
                .outerjoin(Release, Release.id == Incident.cause_release_id)
                .where(Incident.service_id.in_(list(services)), Incident.triggered_at >= start,
                       Incident.triggered_at < now, _in_environment(Incident.environment, scope.environment))
                .order_by(Incident.triggered_at, Incident.id)
            )
            found = session.execute(stmt).all()
        return [_incident_row(incident, services[incident.service_id], version) for incident, version in found]

    # SLOs --------------------------------------------------------------------------------

    def slo(self, service: str, env: str = PRODUCTION, now: datetime | None = None) -> SloResult:
        """Error budget and burn rates of a service against its SLO; NotFound when it has none."""
        now = now or utcnow()
        scope = Scope(service=service, environment=env)
        with self.store.session() as session:
            row = _slo_row(session, get_service(session, service), env)
            period = Period(now - timedelta(days=row.window_days), now)
            services = _services(session, scope)
            timelines = [t for t, _ in self._timelines(session, services, env, period, now).values()]
            objective, window = row.objective, row.window_days
        return SloResult(service, env, slo_status(timelines, objective, window, now))

    def get_slo(self, service: str, env: str = PRODUCTION) -> Slo:
        """A service's SLO in an environment, or NotFound."""
        check_environment(env)
        with self.store.session() as session:
            return _slo_row(session, get_service(session, service), env)

    def set_slo(self, actor: Actor, service: str, objective: float, window_days: int = 30,
                env: str = PRODUCTION) -> Slo:
        """Set (or change) a service's availability objective; owner or platform team, audited."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc)
            check_environment(env)
            check_objective(objective, window_days)
            row = session.scalar(select(Slo).where(Slo.service_id == svc.id, Slo.environment == env))
            before = None if row is None else {"objective": row.objective, "window_days": row.window_days}
            if row is None:
                row = Slo(service_id=svc.id, environment=env, objective=objective, window_days=window_days)
                session.add(row)
            row.objective, row.window_days = objective, window_days
            session.flush()
            audit.record(session, actor, "slo.set", service=service, target=env, before=before,
                         after={"objective": objective, "window_days": window_days})
            return row

    # Weights -----------------------------------------------------------------------------

    def get_weights(self, team: str) -> WeightsView:
        """A team's hour-of-week weights (flat unless it set some)."""
        with self.store.session() as session:
            row = get_team(session, team)
            policy = session.get(AvailabilityPolicy, row.id)
            return _weights_view(row.name, policy)

    def set_weights(
        self, actor: Actor, team: str, *, weights: Sequence[float] | None = None,
        counts: Sequence[float] | None = None, source: str | None = None,
    ) -> WeightsView:
        """Set a team's weights: a table of 168, request counts per hour to derive them from, or flat.

        A member of the team or the platform team may; audited.
        """
        with self.store.session() as session:
            row = get_team(session, team)
            if not (actor.is_admin or actor.team_id == row.id):
                raise Forbidden(f"team {actor.team!r} may not set the availability weights of team {row.name!r}")
            given = [name for name, value in (("weights", weights), ("counts", counts), ("source", source))
                     if value is not None]
            if len(given) != 1:
                raise Invalid('give one of: weights (168 numbers), counts (168 request counts) or source "flat"')
            if source is not None and source != "flat":
                raise Invalid(f'invalid source {source!r}: only "flat" can be set by name')
            if weights is not None:
                values, kind = HourWeights(weights).as_list(), "table"
            elif counts is not None:
                values, kind = weights_from_traffic(counts), "traffic"
            else:
                values, kind = None, "flat"
            policy = session.get(AvailabilityPolicy, row.id)
            before = None if policy is None else {"source": policy.weights_source}
            if policy is None:
                policy = AvailabilityPolicy(team_id=row.id, extra={})
                session.add(policy)
            policy.hour_weights, policy.weights_source = values, kind
            session.flush()
            audit.record(session, actor, "availability_weights.set", target=row.name, before=before,
                         after={"source": kind})
            return _weights_view(row.name, policy)

    # DORA --------------------------------------------------------------------------------

    def dora(self, team: str | None, since: str, now: datetime | None = None) -> DoraResult:
        """The four keys of a team's production deploys (every team's with ``team=None``)."""
        now = now or utcnow()
        period = Period(parse_since(since, now), now)
        scope = Scope(team=team)
        with self.store.session() as session:
            services = _services(session, scope)
            columns = self._deploys(session, services, period.start)
            timelines = [t for t, _ in self._timelines(session, services, PRODUCTION, period, now).values()]
        return DoraResult(team, dora_report(columns, timelines, period, now),
                          dora_weekly(columns, timelines, period, now))

    # Loading -----------------------------------------------------------------------------

    def _timelines(
        self, session: Session, services: Sequence[Service], env: str, period: Period, now: datetime
    ) -> dict[int, tuple[Timeline, HourWeights | None]]:
        """Each service's timeline over the period (everything that overlaps it), with its team's weights."""
        ids = [s.id for s in services]
        if not ids:
            return {}
        incidents: dict[int, list[tuple[float, float, float, bool]]] = defaultdict(list)
        stmt = select(
            Incident.service_id, Incident.triggered_at, Incident.resolved_at, Incident.acknowledged_at,
            Incident.cause_release_id,
        ).where(
            Incident.service_id.in_(ids), _in_environment(Incident.environment, env),
            Incident.triggered_at < now, or_(Incident.resolved_at.is_(None), Incident.resolved_at > period.start),
        )
        for service_id, triggered, resolved, acknowledged, cause in session.execute(stmt):
            incidents[service_id].append((triggered.timestamp(), _seconds(resolved), _seconds(acknowledged),
                                          cause is not None))
        windows: dict[int, list[tuple[float, float]]] = defaultdict(list)
        maintenance = MaintenanceWindow
        stmt_windows = select(maintenance.service_id, maintenance.starts_at, maintenance.ends_at).where(
            maintenance.service_id.in_(ids), _in_environment(maintenance.environment, env),
            maintenance.starts_at < now, maintenance.ends_at > period.start,
        )
        for service_id, starts, ends in session.execute(stmt_windows):
            windows[service_id].append((starts.timestamp(), ends.timestamp()))
        weights = _team_weights(session, {s.owner_id for s in services})
        at = now.timestamp()
        found: dict[int, tuple[Timeline, HourWeights | None]] = {}
        for service in services:
            rows, spans = incidents.get(service.id, []), windows.get(service.id, [])
            timeline = Timeline.from_arrays(
                at, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                [s for s, _ in spans], [e for _, e in spans],
            )
            found[service.id] = (timeline, weights.get(service.owner_id))
        return found

    def _deploys(self, session: Session, services: Sequence[Service], start: datetime) -> DeployColumns:
        """The production releases that went live since ``start``, each marked failed or not."""
        environments = list(session.scalars(select(Environment.id).where(
            Environment.service_id.in_([s.id for s in services]), Environment.name == PRODUCTION,
        )))
        releases = session.execute(select(
            Release.id, Release.environment_id, Release.version, Release.created_at, Release.live_at,
            Release.rollback_of, Release.cause, Release.artifact_id,
        ).where(
            Release.environment_id.in_(environments), or_(Release.live_at >= start, Release.created_at >= start),
        )).all()
        facts = [ReleaseFacts(r.id, r.environment_id, r.version, r.created_at, r.live_at, r.rollback_of, r.cause)
                 for r in releases]
        causes = session.scalars(select(Incident.cause_release_id).where(
            Incident.cause_release_id.in_([r.id for r in releases]))).all()
        failed = failed_changes(facts, [c for c in causes if c is not None], self.rollback_window)
        # A release ships a change when it is its artifact's first time live in production.
        live = [r for r in releases if r.live_at is not None and r.live_at >= start]
        artifacts = {r.artifact_id for r in live}
        first_live = {artifact: at for artifact, at in session.execute(
            select(Release.artifact_id, func.min(Release.live_at))
            .where(Release.environment_id.in_(environments), Release.artifact_id.in_(artifacts))
            .group_by(Release.artifact_id)
        )}
        created = {artifact: at for artifact, at in session.execute(
            select(Artifact.id, Artifact.created_at).where(Artifact.id.in_(artifacts))
        )}
        return DeployColumns.from_arrays(
            [r.live_at.timestamp() for r in live],
            [created[r.artifact_id].timestamp() if first_live.get(r.artifact_id) == r.live_at else NAN
             for r in live],
            [r.id in failed for r in live],
        )


def _services(session: Session, scope: Scope) -> list[Service]:
    """The services a scope covers, by name; NotFound for an unknown service or team."""
    if scope.service is not None:
        return [get_service(session, scope.service)]
    stmt = select(Service).order_by(Service.name)
    if scope.team is not None:
        stmt = stmt.where(Service.owner_id == get_team(session, scope.team).id)
    return list(session.scalars(stmt))


def _in_environment(column: Any, env: str) -> Any:
    """Rows of ``env``, and rows that name no environment (they are about the whole service)."""
    return or_(column == env, column.is_(None))


def _seconds(moment: datetime | None) -> float:
    return NAN if moment is None else moment.timestamp()


def _team_weights(session: Session, team_ids: set[int]) -> dict[int, HourWeights | None]:
    policies = session.scalars(select(AvailabilityPolicy).where(AvailabilityPolicy.team_id.in_(team_ids)))
    found: dict[int, HourWeights | None] = {}
    for policy in policies:
        if policy.weights_source != "flat" and policy.hour_weights:
            found[policy.team_id] = HourWeights(policy.hour_weights)
    return found


def _weights_view(team: str, policy: AvailabilityPolicy | None) -> WeightsView:
    if policy is None or policy.weights_source == "flat" or not policy.hour_weights:
        return WeightsView(team, "flat", HourWeights.flat_week().as_list())
    return WeightsView(team, policy.weights_source, list(policy.hour_weights))


def _slo_row(session: Session, service: Service, env: str) -> Slo:
    row = session.scalar(select(Slo).where(Slo.service_id == service.id, Slo.environment == env))
    if row is None:
        raise NotFound(f"no SLO set for service {service.name!r} in {env}: "
                       f"set one with `podium slo set --service {service.name} --objective 0.999`")
    return row


def _report_row(report: AvailabilityReport) -> dict[str, Any]:
    return {
        "incidents": report.incidents,
        "downtime_seconds": report.downtime_seconds,
        "observed_seconds": report.observed_seconds,
        "availability": report.availability,
        "weighted_availability": report.weighted_availability,
        "mttr_seconds": report.mttr_seconds,
        "mtta_seconds": report.mtta_seconds,
        "mtbf_seconds": report.mtbf_seconds,
    }


def _incident_row(incident: Incident, service: str, cause_version: int | None) -> dict[str, Any]:
    def lasted(end: datetime | None) -> float | None:
        return None if end is None else max(0.0, (end - incident.triggered_at).total_seconds())

    return {
        "id": incident.id,
        "service": service,
        "environment": incident.environment,
        "state": incident.state,
        "source": incident.source,
        "summary": incident.summary,
        "triggered_at": incident.triggered_at.isoformat(),
        "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "time_to_acknowledge_seconds": lasted(incident.acknowledged_at),
        "time_to_resolve_seconds": lasted(incident.resolved_at),
        "cause_release": None if cause_version is None else f"v{cause_version}",
    }


__all__ = [
    "AvailabilityResult", "DoraResult", "MetricsService", "Scope", "SloResult", "WeightsView", "check_environment",
]
