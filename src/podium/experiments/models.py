"""Experiment tables: flags, experiments, the events apps send, and apps' scoped tokens.

Everything belongs to one service environment (``environments.id``) and goes with it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.db import Base, utcnow

# SQLite gives a rowid alias only to INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for events.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class ExperimentStatus(StrEnum):
    """An experiment's lifecycle: draft → running → stopped → decided."""

    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"
    DECIDED = "decided"


class Decision(StrEnum):
    SHIP = "ship"
    DISCARD = "discard"


class MetricKind(StrEnum):
    """A binomial metric counts users with at least one event; a numeric one sums their values."""

    BINOMIAL = "binomial"
    NUMERIC = "numeric"


class EventType(StrEnum):
    EXPOSURE = "exposure"  # the SDK showed ``user_id`` variant ``variant`` of ``experiment``
    METRIC = "metric"  # ``track(user_id, name, value)``


class Flag(Base):
    """A feature flag: off, on, or a value, with targeting rules and a gradual rollout."""

    __tablename__ = "flags"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(default=False)
    value: Mapped[Any] = mapped_column(JSON, default=True)  # what users get when the flag is on for them
    default_value: Mapped[Any] = mapped_column(JSON, default=False)  # what everyone else gets
    rollout: Mapped[float] = mapped_column(Float, default=1.0)  # share of (targeted) users it is on for
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{condition, value}], first match wins
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Experiment(Base):
    """An A/B test of one hypothesis on a capped share of a service environment's users."""

    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default=ExperimentStatus.DRAFT)
    variants: Mapped[list[str]] = mapped_column(JSON)  # the first is the control
    weights: Mapped[list[float]] = mapped_column(JSON)
    coverage: Mapped[float] = mapped_column(Float)
    seed: Mapped[str | None] = mapped_column(String(100), default=None)  # None: the key
    hash_version: Mapped[int] = mapped_column(default=2)
    namespace: Mapped[list[Any] | None] = mapped_column(JSON, default=None)  # [id, start, end]
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # on user attributes
    metric: Mapped[str] = mapped_column(String(100))
    metric_kind: Mapped[str] = mapped_column(String(10), default=MetricKind.BINOMIAL)
    guardrails: Mapped[list[str]] = mapped_column(JSON, default=list)  # metric names where more is worse
    # How results are read: CUPED on the pre-exposure metric, always-valid (sequential) p-values.
    cuped: Mapped[bool] = mapped_column(default=False, server_default=false())
    sequential: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A coverage above the exposure cap needs an override: who, why, when.
    cap_override_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    cap_override_by: Mapped[str | None] = mapped_column(String(40), default=None)
    cap_override_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    started_by: Mapped[str | None] = mapped_column(String(40), default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)
    stopped_by: Mapped[str | None] = mapped_column(String(40), default=None)  # a team, or "guardrail"
    stop_reason: Mapped[str | None] = mapped_column(Text, default=None)
    decision: Mapped[str | None] = mapped_column(String(10), default=None)
    decided_variant: Mapped[str | None] = mapped_column(String(100), default=None)  # the shipped one
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decided_by: Mapped[str | None] = mapped_column(String(40), default=None)
    decision_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExperimentEvent(Base):
    """One event an app sent: an exposure to a variation, or a metric value of a user.

    ``event_id`` is the sender's id: a batch sent again is stored once.
    """

    __tablename__ = "experiment_events"
    __table_args__ = (
        UniqueConstraint("environment_id", "event_id"),
        # Covering indexes for results (``podium.experiments.results``): each user's first exposure
        # and their metric events since are read from the index alone, never from the table.
        Index("ix_experiment_events_exposures", "environment_id", "experiment", "user_id", "at", "variant"),
        Index("ix_experiment_events_metrics", "environment_id", "name", "user_id", "at", "value"),
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[str] = mapped_column(String(200))
    experiment: Mapped[str | None] = mapped_column(String(100), default=None)  # exposures
    variant: Mapped[str | None] = mapped_column(String(100), default=None)  # exposures
    name: Mapped[str | None] = mapped_column(String(100), default=None)  # metrics
    value: Mapped[float] = mapped_column(Float, default=1.0)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppToken(Base):
    """The token a deployed app gets as ``PODIUM_TOKEN``: it reads definitions and sends events
    for its own service environment, nothing else.

    The secret is kept sealed (to inject it into each release) and hashed (to check it).
    """

    __tablename__ = "app_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class SavedGroup(Base):
    """A team's named list of attribute values (GrowthBook's "ID list" saved group).

    Conditions name it by key, ``{"id": {"$inGroup": "beta-testers"}}``; the definitions of the
    team's service environments carry the groups their conditions name.
    """

    __tablename__ = "saved_groups"
    __table_args__ = (UniqueConstraint("team_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    attribute: Mapped[str] = mapped_column(String(100))  # the user attribute its values are of ("id")
    values: Mapped[list[Any]] = mapped_column(JSON, default=list)  # strings and numbers
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
