"""Incidents: opened by a check or by a person, acknowledged, resolved, annotated.

Every change is authorised, audited, and handed to paging in the same transaction
(``PagerHooks``), so a page is queued exactly when the change is stored. The lifecycle
lives in ``IncidentService._move``, which refuses any transition the state does not allow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session, aliased

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import ENVIRONMENTS, PLATFORM_TEAM, Environment, Service, Team
from podium.catalog.rules import ID_MAX, check_text, is_name
from podium.catalog.service import active_grants, get_environment, get_service, get_team
from podium.config import Settings
from podium.deploy.models import Release
from podium.errors import Conflict, Forbidden, Invalid, NotFound
from podium.health.maintenance import active_window
from podium.health.models import Check, Incident, IncidentNote, IncidentState
from podium.store.db import Store, utcnow

SUMMARY_MAX = 500
NOTE_MAX = 10_000
LIST_MAX = 1000

# Podium acting by itself (a check opening or resolving an incident) is recorded as the
# platform team, with no token.
BY_CHECK = "podium (check)"

ALLOWED: dict[IncidentState, frozenset[IncidentState]] = {
    IncidentState.TRIGGERED: frozenset({IncidentState.ACKNOWLEDGED, IncidentState.RESOLVED}),
    IncidentState.ACKNOWLEDGED: frozenset({IncidentState.RESOLVED}),
    IncidentState.RESOLVED: frozenset(),
}


class PagerHooks(Protocol):
    """What paging hears of incidents. Each hook runs inside the transaction of the change,
    so whatever it writes (an outbox row) is stored with the change or not at all; it must
    not send anything itself."""

    def on_triggered(self, session: Session, incident: Incident) -> None:
        """A new incident was opened (by a check or a person)."""

    def on_acknowledged(self, session: Session, incident: Incident) -> None:
        """Someone took the incident on: escalation stops."""

    def on_resolved(self, session: Session, incident: Incident) -> None:
        """The incident is over, by a person or because its check is up again."""


@dataclass(frozen=True)
class NoteInfo:
    id: int
    at: datetime
    team: str
    text: str


@dataclass(frozen=True)
class IncidentInfo:
    """An incident as the API and CLI show it: names instead of ids."""

    id: int
    service: str
    env: str | None
    team: str
    summary: str
    source: str
    check: str | None
    state: str
    triggered_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    cause_deploy: str | None
    opened_by: str
    notes: tuple[NoteInfo, ...] = field(default=())


Incidents = list[IncidentInfo]  # an alias: inside the service class, ``list`` names its verb


def actor_label(actor: Actor) -> str:
    """Who did it, for ``acknowledged_by``/``resolved_by``: ``team/token`` (or the team alone)."""
    return f"{actor.team}/{actor.token_id}" if actor.token_id else actor.team


def likely_cause(session: Session, environment_id: int, at: datetime, window: timedelta) -> Release | None:
    """The release that went live in the environment within ``window`` before ``at``, the latest one."""
    return session.scalars(
        select(Release)
        .where(Release.environment_id == environment_id, Release.live_at.is_not(None),
               Release.live_at <= at, Release.live_at >= at - window)
        .order_by(Release.live_at.desc())
        .limit(1)
    ).first()


def _aware(field: str, moment: datetime) -> datetime:
    """A time with a timezone, in UTC."""
    if moment.tzinfo is None:
        raise Invalid(f"{field} needs a timezone, e.g. 2026-12-01T00:00:00Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # near datetime.min/max, UTC cannot express it
        raise Invalid(f"{field} is out of range") from None


def _check_id(incident_id: int) -> int:
    if not 0 < incident_id <= ID_MAX:
        raise NotFound(f"incident {incident_id} not found")
    return incident_id


def _check_text(what: str, text: str, longest: int) -> str:
    """Text a person wrote, without surrounding blanks: not empty, not too long, storable."""
    if not text.strip():
        raise Invalid(f"the {what} is empty")
    return check_text(what, text.strip(), longest)


class IncidentService:
    """The incident verbs over one store; ``pager`` (set later by paging) hears every change."""

    def __init__(self, settings: Settings, store: Store, pager: PagerHooks | None = None) -> None:
        self.store = store
        self.cause_window = timedelta(seconds=settings.incident_cause_window)
        self.pager = pager

    # Opening --------------------------------------------------------------------------

    def open(
        self, actor: Actor, service: str, env: str | None = "production", summary: str = "", *,
        team: str | None = None, at: datetime | None = None,
    ) -> IncidentInfo:
        """Open an incident by hand. It pages the service's owner, or ``team`` when the
        platform team names one (a platform-run component of the service, such as its database)."""
        text = _check_text("summary", summary, SUMMARY_MAX)
        with self.store.session() as session:
            svc = get_service(session, service)
            self._authorize(session, actor, svc, None)
            paged = svc.owner_id
            if team is not None:
                if not actor.is_admin:
                    raise Forbidden(f"only the {PLATFORM_TEAM!r} team may page another team than the owner")
                paged = get_team(session, team).id
            environment = None
            if env is not None:
                if env not in ENVIRONMENTS:
                    raise Invalid(f"invalid environment {env[:40]!r}: use {' or '.join(ENVIRONMENTS)}")
                environment = get_environment(session, svc, env)
            incident = self._create(
                session, actor, svc, environment, paged, text, source="manual", check_id=None,
                opened_by=actor.team, at=at or utcnow(),
            )
            return self._info(session, incident)

    def trigger_from_check(self, check_id: int, summary: str, at: datetime | None = None) -> IncidentInfo | None:
        """A check went down: open its incident, paging the service's owner.

        Returns the incident, the one already open for this check if there is one, or None
        when no incident may open now (a maintenance window is on, or the check is gone).
        """
        moment = at or utcnow()
        with self.store.session() as session:
            check = session.get(Check, check_id)
            if check is None:
                return None
            open_one = self._open_for_check(session, check_id)
            if open_one is not None:
                return self._info(session, open_one)
            environment = session.get(Environment, check.environment_id)
            assert environment is not None
            svc = environment.service
            if active_window(session, svc.id, environment.name, moment) is not None:
                return None
            incident = self._create(
                session, Actor.system(), svc, environment, svc.owner_id, summary[:SUMMARY_MAX], source="check",
                check_id=check_id, opened_by="podium", at=moment,
            )
            return self._info(session, incident)

    def _create(
        self, session: Session, actor: Actor, svc: Service, environment: Environment | None, team_id: int,
        summary: str, *, source: str, check_id: int | None, opened_by: str, at: datetime,
    ) -> Incident:
        cause = likely_cause(session, environment.id, at, self.cause_window) if environment else None
        incident = Incident(
            service_id=svc.id, environment=environment.name if environment else None, team_id=team_id,
            summary=summary, source=source, check_id=check_id, state=IncidentState.TRIGGERED,
            triggered_at=at, cause_release_id=cause.id if cause else None, opened_by=opened_by,
        )
        session.add(incident)
        session.flush()
        audit.record(
            session, actor, "incident.open", service=svc.name, target=f"incident {incident.id}",
            after={"summary": summary, "env": incident.environment, "source": source,
                   "cause_deploy": f"v{cause.version}" if cause else None},
        )
        if self.pager is not None:
            self.pager.on_triggered(session, incident)
        return incident

    # The lifecycle --------------------------------------------------------------------

    def acknowledge(self, actor: Actor, incident_id: int, at: datetime | None = None) -> IncidentInfo:
        """Take an incident on: it stops escalating. Only a triggered incident can be acknowledged."""
        return self._act(actor, incident_id, IncidentState.ACKNOWLEDGED, at)

    def resolve(self, actor: Actor, incident_id: int, at: datetime | None = None) -> IncidentInfo:
        """Close an incident by hand; a resolved incident stays resolved."""
        return self._act(actor, incident_id, IncidentState.RESOLVED, at)

    def resolve_from_check(self, check_id: int, at: datetime | None = None) -> Incidents:
        """A check is up again: resolve the incident it opened, if one is still open."""
        with self.store.session() as session:
            incident = self._open_for_check(session, check_id)
            if incident is None:
                return []
            self._move(session, Actor.system(), incident, IncidentState.RESOLVED, BY_CHECK, at or utcnow())
            return [self._info(session, incident)]

    def _act(self, actor: Actor, incident_id: int, to: IncidentState, at: datetime | None) -> IncidentInfo:
        with self.store.session() as session:
            incident = self._get(session, incident_id)
            svc = session.get(Service, incident.service_id)
            assert svc is not None
            self._authorize(session, actor, svc, incident)
            self._move(session, actor, incident, to, actor_label(actor), at or utcnow())
            return self._info(session, incident)

    def _move(
        self, session: Session, actor: Actor, incident: Incident, to: IncidentState, by: str, at: datetime
    ) -> None:
        """The one place an incident changes state: refuses what its lifecycle does not allow,
        stamps who and when, audits, and tells paging."""
        current = IncidentState(incident.state)
        if to not in ALLOWED[current]:
            if current == to:
                raise Conflict(f"incident {incident.id} is {current} already")
            raise Conflict(f"incident {incident.id} is {current}: it cannot become {to}")
        at = max(at, incident.triggered_at)
        before = {"state": incident.state}
        incident.state = to
        if to == IncidentState.ACKNOWLEDGED:
            incident.acknowledged_at, incident.acknowledged_by = at, by
        else:
            incident.resolved_at, incident.resolved_by = at, by
        incident.next_escalation_at = None
        svc = session.get(Service, incident.service_id)
        assert svc is not None
        action = "incident.acknowledge" if to == IncidentState.ACKNOWLEDGED else "incident.resolve"
        audit.record(
            session, actor, action, service=svc.name, target=f"incident {incident.id}", before=before,
            after={"state": to.value, "by": by, "at": at.isoformat()},
        )
        if self.pager is not None:
            if to == IncidentState.ACKNOWLEDGED:
                self.pager.on_acknowledged(session, incident)
            else:
                self.pager.on_resolved(session, incident)

    # Notes ----------------------------------------------------------------------------

    def add_note(self, actor: Actor, incident_id: int, text: str) -> NoteInfo:
        """Add a note to an incident's timeline (resolved ones too: post-mortems)."""
        body = _check_text("note", text, NOTE_MAX)
        with self.store.session() as session:
            incident = self._get(session, incident_id)
            svc = session.get(Service, incident.service_id)
            assert svc is not None
            self._authorize(session, actor, svc, incident)
            note = IncidentNote(incident_id=incident.id, team=actor.team, text=body)
            session.add(note)
            session.flush()
            audit.record(
                session, actor, "incident.note", service=svc.name, target=f"incident {incident.id}",
                after={"note": note.id},
            )
            return NoteInfo(note.id, note.at, note.team, note.text)

    # Reading --------------------------------------------------------------------------

    def get(self, incident_id: int) -> IncidentInfo:
        """One incident with its notes, oldest note first."""
        with self.store.session() as session:
            incident = self._get(session, incident_id)
            notes = session.scalars(
                select(IncidentNote).where(IncidentNote.incident_id == incident.id)
                .order_by(IncidentNote.at, IncidentNote.id)
            )
            return replace(self._info(session, incident), notes=tuple(NoteInfo(n.id, n.at, n.team, n.text)
                                                                        for n in notes))

    def list(
        self, *, service: str | None = None, team: str | None = None, state: str | None = None,
        env: str | None = None, since: datetime | None = None, limit: int = 200,
    ) -> Incidents:
        """Incidents, newest first, filtered by service, paged team, state, environment and start time."""
        if state is not None and state not in {s.value for s in IncidentState}:
            raise Invalid(f"invalid state {state[:40]!r}: use triggered, acknowledged or resolved")
        if since is not None:
            since = _aware("since", since)
        if not 0 < limit <= LIST_MAX:
            raise Invalid(f"limit must be between 1 and {LIST_MAX}")
        with self.store.session() as session:
            stmt = self._listing()
            if service is not None:
                stmt = stmt.where(Service.id == get_service(session, service).id)
            if team is not None:
                stmt = stmt.where(Incident.team_id == get_team(session, team).id)
            if state is not None:
                stmt = stmt.where(Incident.state == state)
            if env is not None:
                stmt = stmt.where(Incident.environment == env) if is_name(env) else stmt.where(false())
            if since is not None:
                stmt = stmt.where(Incident.triggered_at >= since)
            stmt = stmt.order_by(Incident.triggered_at.desc(), Incident.id.desc()).limit(limit)
            return [_row_info(*row) for row in session.execute(stmt)]

    # Lookups --------------------------------------------------------------------------

    @staticmethod
    def _listing() -> Select[Incident, str, str, int, str]:  # version and check: None when absent
        paged = aliased(Team)
        return (
            select(Incident, Service.name, paged.name, Release.version, Check.name)
            .join(Service, Service.id == Incident.service_id)
            .join(paged, paged.id == Incident.team_id)
            .outerjoin(Release, Release.id == Incident.cause_release_id)
            .outerjoin(Check, Check.id == Incident.check_id)
        )

    def _info(self, session: Session, incident: Incident) -> IncidentInfo:
        session.flush()
        row = session.execute(self._listing().where(Incident.id == incident.id)).one()
        return _row_info(*row)

    @staticmethod
    def _get(session: Session, incident_id: int) -> Incident:
        incident = session.get(Incident, _check_id(incident_id))
        if incident is None:
            raise NotFound(f"incident {incident_id} not found")
        return incident

    @staticmethod
    def _open_for_check(session: Session, check_id: int) -> Incident | None:
        return session.scalars(
            select(Incident)
            .where(Incident.check_id == check_id, Incident.state != IncidentState.RESOLVED)
            .order_by(Incident.id.desc()).limit(1)
        ).first()

    @staticmethod
    def _authorize(session: Session, actor: Actor, svc: Service, incident: Incident | None) -> None:
        """The owning team, the team paged, a team with a live grant on the service, or the platform team."""
        if actor.is_admin or actor.team_id == svc.owner_id:
            return
        if incident is not None and incident.team_id == actor.team_id:
            return
        if active_grants(session, svc, actor.team_id):
            return
        raise Forbidden(f"team {actor.team!r} may not act on incidents of service {svc.name!r} owned by "
                        f"{svc.owner.name!r}")


def _row_info(incident: Incident, service: str, team: str, version: int | None, check: str | None) -> IncidentInfo:
    return IncidentInfo(
        id=incident.id, service=service, env=incident.environment, team=team, summary=incident.summary,
        source=incident.source, check=check, state=incident.state, triggered_at=incident.triggered_at,
        acknowledged_at=incident.acknowledged_at, acknowledged_by=incident.acknowledged_by,
        resolved_at=incident.resolved_at, resolved_by=incident.resolved_by,
        cause_deploy=f"v{version}" if version is not None else None, opened_by=incident.opened_by,
    )
