"""Catalog tables: teams, tokens, services, environments, grants, audit events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from podium.store.db import Base, utcnow

PLATFORM_TEAM = "platform"
ENVIRONMENTS = ("staging", "production")


class Lifecycle(StrEnum):
    EXPERIMENTAL = "experimental"
    PRODUCTION = "production"
    DEPRECATED = "deprecated"


class Right(StrEnum):
    """What a contribution grant lets another team do on a service."""

    DEPLOY = "deploy"
    CONFIG = "config"


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(200), default="")
    # A team token is for machines (CI): a name, and who made it (a person or a team).
    name: Mapped[str] = mapped_column(String(60), default="")
    created_by: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    team: Mapped[Team] = relationship(lazy="joined")


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    lifecycle: Mapped[str] = mapped_column(String(20), default=Lifecycle.EXPERIMENTAL)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[Team] = relationship(lazy="joined")
    environments: Mapped[list[Environment]] = relationship(
        back_populates="service", cascade="all, delete-orphan", order_by="Environment.id", lazy="selectin"
    )


class Environment(Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("service_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(20))

    service: Mapped[Service] = relationship(back_populates="environments")


class Grant(Base):
    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    rights: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    team: Mapped[Team] = relationship(lazy="joined")
    service: Mapped[Service] = relationship(lazy="joined")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    team: Mapped[str] = mapped_column(String(40), index=True)
    token_id: Mapped[str | None] = mapped_column(String(16))
    # The person who acted (None for a team token), and their web session when it was one.
    user: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    session_id: Mapped[str | None] = mapped_column(String(16), default=None)
    action: Mapped[str] = mapped_column(String(60))
    service: Mapped[str | None] = mapped_column(String(40), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
