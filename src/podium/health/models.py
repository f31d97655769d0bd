"""Availability tables: checks and their results, maintenance, incidents, on-call, the paging outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.db import Base, utcnow


class CheckKind(StrEnum):
    HTTP = "http"
    TCP = "tcp"


class CheckState(StrEnum):
    """What a check last concluded: ``unknown`` until enough results agree."""

    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class IncidentState(StrEnum):
    """An incident's lifecycle: triggered → acknowledged → resolved (or triggered → resolved)."""

    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Check(Base):
    """A probe of one service environment; ``name='web'`` is the one every deployed app gets."""

    __tablename__ = "checks"
    __table_args__ = (UniqueConstraint("environment_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40), default="web")
    kind: Mapped[str] = mapped_column(String(10), default=CheckKind.HTTP)
    path: Mapped[str] = mapped_column(String(500), default="/")
    # False: ``path`` follows the live release's app.json; True: a person set it and it stays.
    path_pinned: Mapped[bool] = mapped_column(default=False, server_default=false())
    host: Mapped[str | None] = mapped_column(String(200), default=None)  # TCP target; HTTP goes via the router
    port: Mapped[int | None] = mapped_column(default=None)
    interval: Mapped[float] = mapped_column(Float, default=10.0)
    timeout: Mapped[float] = mapped_column(Float, default=5.0)
    down_after: Mapped[int] = mapped_column(default=3)
    up_after: Mapped[int] = mapped_column(default=2)
    expect_status: Mapped[int | None] = mapped_column(default=None)  # None: any status below 400
    body_contains: Mapped[str | None] = mapped_column(String(500), default=None)
    json_field: Mapped[str | None] = mapped_column(String(200), default=None)  # "status=ok" or "checks.db=up"
    enabled: Mapped[bool] = mapped_column(default=True)
    state: Mapped[str] = mapped_column(String(10), default=CheckState.UNKNOWN)
    consecutive_ok: Mapped[int] = mapped_column(default=0)
    consecutive_fail: Mapped[int] = mapped_column(default=0)
    last_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckResult(Base):
    """One raw probe result, kept for the raw window, then folded into rollups."""

    __tablename__ = "check_results"
    __table_args__ = (Index("ix_check_results_check_at", "check_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    ok: Mapped[bool]
    latency_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)


class CheckRollup(Base):
    """Results of one check over a minute or an hour: counts and latency."""

    __tablename__ = "check_rollups"
    __table_args__ = (UniqueConstraint("check_id", "period", "bucket"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(10))  # "minute" | "hour"
    bucket: Mapped[datetime]
    total: Mapped[int]
    failures: Mapped[int]
    latency_sum_ms: Mapped[float] = mapped_column(Float)
    latency_max_ms: Mapped[float] = mapped_column(Float)


class MaintenanceWindow(Base):
    """Planned downtime: no incidents open, and the time is left out of availability."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    environment: Mapped[str | None] = mapped_column(String(20), default=None)  # None: every environment
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Incident(Base):
    """Something is wrong with a service environment: opened by a check or by hand."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_service_triggered", "service_id", "triggered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    environment: Mapped[str | None] = mapped_column(String(20), default=None)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))  # the team paged
    summary: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(20), default="manual")  # "check" | "manual"
    check_id: Mapped[int | None] = mapped_column(ForeignKey("checks.id", ondelete="SET NULL"), default=None)
    state: Mapped[str] = mapped_column(String(20), default=IncidentState.TRIGGERED)
    triggered_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(80), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(80), default=None)
    cause_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="SET NULL"), default=None)
    opened_by: Mapped[str] = mapped_column(String(40), default="podium")
    escalation_level: Mapped[int] = mapped_column(default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(default=None)


class IncidentNote(Base):
    __tablename__ = "incident_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    team: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)


class Rotation(Base):
    """A team's on-call rotation: people in order, handed off daily or weekly."""

    __tablename__ = "rotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), unique=True)
    members: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{"name": ..., "url": apprise URL}]
    period: Mapped[str] = mapped_column(String(10), default="weekly")  # "daily" | "weekly"
    handoff_weekday: Mapped[int] = mapped_column(default=0)  # 0 = Monday; ignored for daily
    handoff_time: Mapped[str] = mapped_column(String(5), default="09:00")  # HH:MM, UTC
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)  # the first handoff counted from
    escalate_after_minutes: Mapped[int] = mapped_column(default=15)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RotationOverride(Base):
    """Someone else is on call for a time range."""

    __tablename__ = "rotation_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    rotation_id: Mapped[int] = mapped_column(ForeignKey("rotations.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    name: Mapped[str] = mapped_column(String(80))
    url: Mapped[str] = mapped_column(String(1000))


class Notification(Base):
    """The paging outbox: written with the incident change, sent and retried by a worker."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), default=None)
    kind: Mapped[str] = mapped_column(String(20))  # "trigger" | "escalate" | "resolve" | ...
    recipient: Mapped[str] = mapped_column(String(80))
    url: Mapped[str] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class AvailabilityPolicy(Base):
    """Per team: the hour-of-week weights of business-weighted availability, and SLOs."""

    __tablename__ = "availability_policies"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    hour_weights: Mapped[list[float] | None] = mapped_column(JSON, default=None)  # 168 values, Monday 00h first
    weights_source: Mapped[str] = mapped_column(String(20), default="flat")  # "flat" | "table" | "traffic"
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Slo(Base):
    """A service's availability objective over a rolling window."""

    __tablename__ = "slos"
    __table_args__ = (UniqueConstraint("service_id", "environment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(20), default="production")
    objective: Mapped[float] = mapped_column(Float)  # e.g. 0.999
    window_days: Mapped[int] = mapped_column(default=30)
