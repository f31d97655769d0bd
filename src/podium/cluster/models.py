"""Cluster tables: the servers that joined the store, and the secrets they share."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.db import Base, utcnow


class ClusterServer(Base):
    """A ``podium server`` process that joined the store: one row per process start.

    Whether it still lives is not a column: on PostgreSQL a live server holds an advisory
    lock keyed by its id on its lease connection, which dies with the process.
    """

    __tablename__ = "cluster_servers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    url: Mapped[str] = mapped_column(String(300))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClusterSecret(Base):
    """A secret every server must share, made once by the first server that needs it."""

    __tablename__ = "cluster_secrets"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
