"""The domains table: one row per custom domain, with the state of its certificate."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.db import Base, utcnow


class TlsStatus(StrEnum):
    """Where a domain's certificate is: waiting for its first issuance, issued (and renewed)
    over ACME, uploaded by its team, or failed (``error`` says why; it is tried again)."""

    PENDING = "pending"
    ISSUED = "issued"
    UPLOADED = "uploaded"
    FAILED = "failed"


class Domain(Base):
    """A hostname routed to one service environment; unique across the platform."""

    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    tls: Mapped[str] = mapped_column(String(20), default=TlsStatus.PENDING)
    error: Mapped[str] = mapped_column(String(500), default="")  # one line: why the last issuance failed
    expires_at: Mapped[datetime | None] = mapped_column(default=None)  # the certificate's notAfter
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)  # after a failure: the backoff's end
    failures: Mapped[int] = mapped_column(default=0)  # in a row, for the backoff
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
