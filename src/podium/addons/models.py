"""Add-on tables: one PostgreSQL database per service environment, its backups, its size over time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.db import Base, utcnow


class AddonState(StrEnum):
    """An add-on's lifecycle: active → destroyed. A destroyed one keeps its row and its backups."""

    ACTIVE = "active"
    DESTROYED = "destroyed"


class BackupKind(StrEnum):
    """Why a backup was taken."""

    MANUAL = "manual"  # `podium addons backup`
    SCHEDULED = "scheduled"  # the daily backup
    SAFETY = "safety"  # taken just before a restore overwrote the database
    FINAL = "final"  # taken just before the add-on was destroyed; never pruned


class Addon(Base):
    """A database and its roles on the database server, attached to one service environment.

    The database is owned by a role that cannot log in (``owner_role``, also the
    database's name); the app logs in as ``login_role``, whose sessions act as the owner,
    so a credential rotation swaps logins without touching ownership. ``url_sealed`` is
    ``DATABASE_URL`` (password included) encrypted with the add-ons' key.
    """

    __tablename__ = "addons"

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    # The environment while the add-on is active, NULL once destroyed: unique, so an
    # environment has at most one active add-on on every store.
    active_environment_id: Mapped[int | None] = mapped_column(unique=True, default=None)
    kind: Mapped[str] = mapped_column(String(20), default="postgres")
    plan: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default=AddonState.ACTIVE)
    server: Mapped[str] = mapped_column(String(200))  # host:port, as apps reach it
    database: Mapped[str] = mapped_column(String(63))
    owner_role: Mapped[str] = mapped_column(String(63))
    login_role: Mapped[str] = mapped_column(String(63))
    login_generation: Mapped[int] = mapped_column(default=1)
    url_sealed: Mapped[str] = mapped_column(Text)
    # A login replaced by a rotation: it keeps working until a release with the new URL is live.
    retiring_role: Mapped[str | None] = mapped_column(String(63), default=None)
    incident_id: Mapped[int | None] = mapped_column(default=None)  # open "database server down" incident
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)
    destroyed_at: Mapped[datetime | None] = mapped_column(default=None)


class AddonBackup(Base):
    """A ``pg_dump -Fc`` file of an add-on's database, with its size and SHA-256.

    Service and environment names are kept as text so a backup still says where it came
    from after its add-on was destroyed.
    """

    __tablename__ = "addon_backups"
    __table_args__ = (Index("ix_addon_backups_addon_created", "addon_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    addon_id: Mapped[int] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(40))
    environment: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    path: Mapped[str] = mapped_column(String(1000))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float)  # how long pg_dump took
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AddonStorageSample(Base):
    """The size of an add-on's database at one moment (``pg_database_size``); billing integrates these."""

    __tablename__ = "addon_storage_samples"
    __table_args__ = (Index("ix_addon_storage_samples_addon_at", "addon_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    addon_id: Mapped[int] = mapped_column(ForeignKey("addons.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    bytes: Mapped[int] = mapped_column(BigInteger)
