"""Billing tables: usage records, price sheets, meter cursors, and the invoices of closed months."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from podium.store.db import Base, utcnow


class DecimalText(TypeDecorator[Decimal]):
    """An exact ``Decimal`` kept as its text: SQLite has no exact numeric type, and money never goes float."""

    impl = String(60)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"DecimalText takes a Decimal, not {type(value).__name__}")
        return format(value, "f")

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValueError(f"stored quantity {value!r} is not a decimal") from None


class UsageRecord(Base):
    """A quantity of one meter used by a team's service environment between ``start`` and ``end``.

    A record never crosses midnight UTC, so a day (and a month) is a plain range of records.
    Names, not ids: a record outlives the service it names, and stays with the team that
    owned the service when the usage happened.
    """

    __tablename__ = "billing_usage"
    __table_args__ = (
        Index("ix_billing_usage_team_start", "team", "start"),
        Index("ix_billing_usage_source_end", "source", "end"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(40))
    service: Mapped[str] = mapped_column(String(40), default="")
    environment: Mapped[str] = mapped_column(String(20), default="")
    meter: Mapped[str] = mapped_column(String(40))
    process_type: Mapped[str] = mapped_column(String(40), default="")
    size: Mapped[str] = mapped_column(String(40), default="")
    quantity: Mapped[Decimal] = mapped_column(DecimalText())
    unit: Mapped[str] = mapped_column(String(20))
    start: Mapped[datetime]
    end: Mapped[datetime]
    # The stream a record belongs to ("release:12:web", "logs:7", "api:…"): how a meter finds
    # the record to extend instead of writing a new one every tick.
    source: Mapped[str] = mapped_column(String(200))


class PriceSheetVersion(Base):
    """One price sheet as it was given, from the file at start or through the API; the newest applies."""

    __tablename__ = "billing_price_sheets"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(20), index=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(10))  # "file" or "upload"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(40))


class ReleaseMeter(Base):
    """How far the process-seconds of a release have been recorded; ``done`` once it was superseded."""

    __tablename__ = "billing_release_meters"

    release_id: Mapped[int] = mapped_column(primary_key=True)
    metered_until: Mapped[datetime]
    done: Mapped[bool] = mapped_column(default=False)


class MeterCursor(Base):
    """Where a meter left off on one stream (log file sizes, the last storage sample), as JSON."""

    __tablename__ = "billing_cursors"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    position: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ClosedMonth(Base):
    """A month whose invoices are frozen: computed once, with the price sheet version named here."""

    __tablename__ = "billing_closed_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    price_sheet_version: Mapped[str] = mapped_column(String(20))
    platform_cents: Mapped[int]
    unallocated_cents: Mapped[int]
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)


class FrozenInvoice(Base):
    """A team's invoice of a closed month, exactly as it was computed."""

    __tablename__ = "billing_invoices"
    __table_args__ = (UniqueConstraint("team", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team: Mapped[str] = mapped_column(String(40))
    month: Mapped[str] = mapped_column(String(7), index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


class Meter(StrEnum):
    """What Podium meters; each record names one, with the unit below."""

    PROCESS_SECONDS = "process_seconds"
    STORAGE_BYTE_HOURS = "storage_byte_hours"
    API_REQUESTS = "api_requests"
    LOG_BYTES = "log_bytes"
    BUILD_SECONDS = "build_seconds"

    @property
    def unit(self) -> str:
        return UNITS[self]


UNITS: dict[Meter, str] = {
    Meter.PROCESS_SECONDS: "process-second",
    Meter.STORAGE_BYTE_HOURS: "byte-hour",
    Meter.API_REQUESTS: "request",
    Meter.LOG_BYTES: "byte",
    Meter.BUILD_SECONDS: "second",
}
