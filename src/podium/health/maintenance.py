"""Maintenance windows: planned downtime of a service, or of one of its environments.

While a window is on, a check going down opens no incident; availability leaves the
window's time out (the metrics read this table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import ENVIRONMENTS, Right
from podium.catalog.rules import ID_MAX, REASON_MAX, check_text
from podium.catalog.service import authorize, get_service
from podium.errors import Invalid, NotFound
from podium.health.models import MaintenanceWindow
from podium.store.db import Store, utcnow

LONGEST = timedelta(days=366)  # a window longer than this is a typo, not maintenance


@dataclass(frozen=True)
class WindowInfo:
    """A maintenance window as the API and CLI show it."""

    id: int
    service: str
    env: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, window: MaintenanceWindow, service: str) -> WindowInfo:
        return cls(
            id=window.id, service=service, env=window.environment, starts_at=window.starts_at,
            ends_at=window.ends_at, reason=window.reason, created_by=window.created_by,
            created_at=window.created_at,
        )

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


Windows = list[WindowInfo]  # an alias: inside the service class, ``list`` names its verb


def active_window(session: Session, service_id: int, env: str | None, at: datetime) -> MaintenanceWindow | None:
    """The window covering ``env`` of the service at ``at`` (one for every environment counts), if any."""
    stmt = select(MaintenanceWindow).where(
        MaintenanceWindow.service_id == service_id,
        MaintenanceWindow.starts_at <= at,
        MaintenanceWindow.ends_at > at,
    )
    if env is not None:
        stmt = stmt.where(or_(MaintenanceWindow.environment.is_(None), MaintenanceWindow.environment == env))
    return session.scalars(stmt.order_by(MaintenanceWindow.ends_at.desc()).limit(1)).first()


def check_span(starts_at: datetime, ends_at: datetime) -> tuple[datetime, datetime]:
    """A window's start and end: aware, in order, and no longer than ``LONGEST``."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Invalid("start and end need a timezone, e.g. 2026-12-01T02:00:00Z")
    try:
        start, end = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    except OverflowError:  # a moment near datetime.min/max that UTC cannot express
        raise Invalid("start or end is out of range") from None
    if end <= start:
        raise Invalid("a maintenance window must end after it starts")
    if end - start > LONGEST:
        raise Invalid(f"a maintenance window may last at most {LONGEST.days} days")
    return start, end


class MaintenanceService:
    """Maintenance windows of the services of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self, actor: Actor, service: str, env: str | None, starts_at: datetime, ends_at: datetime, reason: str = ""
    ) -> WindowInfo:
        """Plan a window for a service (``env=None``: every environment); owner, config grant, or platform."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            if env is not None and env not in ENVIRONMENTS:
                raise Invalid(f"invalid environment {env[:40]!r}: use {' or '.join(ENVIRONMENTS)}")
            start, end = check_span(starts_at, ends_at)
            if end <= utcnow():
                raise Invalid("this maintenance window has ended already")
            check_text("reason", reason, REASON_MAX)
            window = MaintenanceWindow(
                service_id=svc.id, environment=env, starts_at=start, ends_at=end, reason=reason,
                created_by=actor.team,
            )
            session.add(window)
            session.flush()
            info = WindowInfo.of(window, svc.name)
            audit.record(
                session, actor, "maintenance.add", service=svc.name, target=f"window {window.id}",
                after=_snapshot(info),
            )
            return info

    def list(self, service: str, *, include_past: bool = False) -> Windows:
        """A service's windows that are on or to come (with ``include_past``, all), earliest first."""
        with self.store.session() as session:
            svc = get_service(session, service)
            stmt = select(MaintenanceWindow).where(MaintenanceWindow.service_id == svc.id)
            if not include_past:
                stmt = stmt.where(MaintenanceWindow.ends_at > utcnow())
            rows = session.scalars(stmt.order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id))
            return [WindowInfo.of(w, svc.name) for w in rows]

    def remove(self, actor: Actor, service: str, window_id: int) -> None:
        """Cancel a window; owner, config grant, or platform."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            window = session.get(MaintenanceWindow, window_id) if 0 < window_id <= ID_MAX else None
            if window is None or window.service_id != svc.id:
                raise NotFound(f"maintenance window {window_id} not found on service {svc.name!r}")
            audit.record(
                session, actor, "maintenance.remove", service=svc.name, target=f"window {window.id}",
                before=_snapshot(WindowInfo.of(window, svc.name)),
            )
            session.delete(window)

    def active(self, service: str, env: str | None, at: datetime | None = None) -> WindowInfo | None:
        """The window on for ``env`` of ``service`` at ``at`` (default now), if any."""
        with self.store.session() as session:
            svc = get_service(session, service)
            window = active_window(session, svc.id, env, at or utcnow())
            return WindowInfo.of(window, svc.name) if window is not None else None


def _snapshot(info: WindowInfo) -> dict[str, str | None]:
    return {
        "env": info.env, "starts_at": info.starts_at.isoformat(), "ends_at": info.ends_at.isoformat(),
        "reason": info.reason,
    }
