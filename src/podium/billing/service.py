"""Billing's verbs: meter usage, keep the price sheet, and answer usage and invoices per team.

The platform team reads every team's bill; any other team reads only its own. A month's
invoices are computed from the usage records whenever they are asked for until the month
has been over for ``billing_close_after`` seconds; the first request after that freezes
them: every team's invoice of that month is stored, with the price sheet version used,
and never computed again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, MetaData, Table, func, inspect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.billing.invoice import Invoice, Month, MonthBill, Usage, bill_month, daily_costs, usage_totals
from podium.billing.meters import (
    Owner,
    RequestCounter,
    append_usage,
    by_day,
    floor_second,
    meter_logs,
    meter_releases,
    meter_storage,
    write_requests,
)
from podium.billing.models import ClosedMonth, FrozenInvoice, Meter, PriceSheetVersion, UsageRecord
from podium.billing.prices import PriceSheet, default_sheet_text, parse_sheet
from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Service, Team
from podium.catalog.service import get_environment, get_service, get_team, require_admin
from podium.config import Settings
from podium.errors import Forbidden, Invalid, NotFound
from podium.store.db import Store, UTCDateTime, utcnow

log = logging.getLogger(__name__)

# Podium acting on its own (loading the sheet at start, closing a month) acts as the platform team.
FILE, UPLOAD = "file", "upload"

# The platform services counted on the platform page: name → (table, count only rows made in the month).
PLATFORM_SERVICES: dict[str, tuple[str, bool]] = {
    "deploys": ("releases", True),
    "databases": ("addons", False),
    "experiments": ("experiments", False),
    "checks": ("checks", False),
}


@dataclass(frozen=True)
class Collected:
    """What one metering tick recorded."""

    requests: int
    releases: int
    log_bytes: int
    storage_samples: int | None  # None: the add-ons' tables are not there


@dataclass(frozen=True)
class MonthView:
    """Every team's invoice of a month as the platform page shows it."""

    month: Month
    currency: str
    final: bool
    platform_cents: int
    unallocated_cents: int
    invoices: list[dict[str, Any]]
    services: dict[str, dict[str, int] | None]  # platform service → team → rows; None: no such table


class BillingService:
    """Meters, the price sheet, and invoices, over one store."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.requests = RequestCounter()
        self.deploy_root = settings.data_dir / "deploy"
        self._sheets: dict[str, PriceSheet] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._collecting = threading.Lock()

    # Lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Read the price sheet file (Invalid, saying why, when it does not parse) and record it if it changed."""
        path = self.settings.billing_price_sheet
        if path is None:
            text, name = default_sheet_text(), "the shipped price sheet"
        else:
            name = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise Invalid(f"cannot read the price sheet {name}: {exc}") from None
        try:
            sheet = parse_sheet(text)
        except Invalid as exc:
            raise Invalid(f"{name}: {exc.detail}") from None
        with self.store.session() as session:
            last_from_file = session.scalar(
                select(PriceSheetVersion).where(PriceSheetVersion.source == FILE)
                .order_by(PriceSheetVersion.id.desc()).limit(1)
            )
            if last_from_file is None or last_from_file.text != text:
                # A changed file is a change like an upload: the newest of the two applies.
                self._add_sheet(session, Actor.system(), sheet, FILE)

    def run(self) -> None:
        """Meter in the background: now (catching up after a restart), then every ``billing_meter_interval``."""
        self._thread = threading.Thread(target=self._meter_forever, name="billing-meter", daemon=True)
        self._thread.start()

    def _meter_forever(self) -> None:
        while True:
            try:
                self.collect()
            except Exception:  # a bad tick must not end metering: the next one catches up
                log.exception("billing: metering failed; the next tick tries again")
            if self._stop.wait(self.settings.billing_meter_interval):
                return

    def close(self) -> None:
        """Stop metering and write the request counts not yet written."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        counts = self.requests.drain()
        if counts:
            with self._collecting, self.store.session() as session:
                write_requests(session, counts)

    def collect(self, now: datetime | None = None) -> Collected:
        """One metering tick: request counts, process-seconds, log bytes, storage samples."""
        now = now or utcnow()
        with self._collecting:
            counts = self.requests.drain()
            try:
                with self.store.session() as session:
                    write_requests(session, counts)
            except Exception:
                self.requests.restore(counts)
                raise
            with self.store.session() as session:
                releases = meter_releases(session, now)
            with self.store.session() as session:
                log_bytes = meter_logs(session, self.deploy_root, now, self.settings.billing_meter_interval)
            with self.store.session() as session:
                storage = meter_storage(session)
        return Collected(sum(counts.values()), releases, log_bytes, storage)

    def record_build(self, service: str, env: str, started: datetime, finished: datetime) -> None:
        """Record the seconds spent building a release's virtualenv (for the deploy to call once it times builds)."""
        started, finished = floor_second(started), floor_second(finished)
        with self.store.session() as session:
            svc = get_service(session, service)
            get_environment(session, svc, env)
            owner = Owner(svc.owner.name, service, env)
            for start, end in by_day(started, finished):
                append_usage(session, f"build:{service}:{env}:{started.isoformat()}", owner, Meter.BUILD_SECONDS,
                             start, end, Decimal((end - start) // timedelta(seconds=1)))

    # The price sheet --------------------------------------------------------------------

    def price_sheet(self, version: str | None = None) -> PriceSheet:
        """The sheet in force (the newest given), or the one with ``version``."""
        with self.store.session() as session:
            return self._sheet(session, version)

    def set_price_sheet(self, actor: Actor, text: str) -> PriceSheet:
        """Replace the price sheet (platform team only); Invalid and nothing changed when it does not parse."""
        require_admin(actor, "change the price sheet")
        sheet = parse_sheet(text)
        with self.store.session() as session:
            if self._sheet(session).text != text:
                self._add_sheet(session, actor, sheet, UPLOAD)
        return sheet

    def _add_sheet(self, session: Session, actor: Actor, sheet: PriceSheet, source: str) -> None:
        before = session.scalar(select(PriceSheetVersion.version).order_by(PriceSheetVersion.id.desc()).limit(1))
        session.add(PriceSheetVersion(version=sheet.version, text=sheet.text, source=source, created_by=actor.team))
        audit.record(session, actor, "billing.prices.set", target="price-sheet",
                     before={"version": before} if before else None,
                     after={"version": sheet.version, "source": source})

    def _sheet(self, session: Session, version: str | None = None) -> PriceSheet:
        query = select(PriceSheetVersion.text).order_by(PriceSheetVersion.id.desc()).limit(1)
        if version is not None:
            query = query.where(PriceSheetVersion.version == version)
        text = session.scalar(query)
        if text is None:
            if version is not None:
                raise NotFound(f"no price sheet has version {version[:20]!r}")
            text = default_sheet_text()  # before the first start recorded one
        found = self._sheets.get(text)
        if found is None:
            found = self._sheets[text] = parse_sheet(text)
        return found

    # Reading bills ----------------------------------------------------------------------

    def usage(self, actor: Actor, team: str, month: str, now: datetime | None = None) -> dict[str, Any]:
        """A team's usage in a month: the quantity per service, environment and meter."""
        now = now or utcnow()
        period = self._readable(actor, team, month, now)
        with self.store.session() as session:
            usages = load_usages(session, period, team)
        return {
            "team": team, "month": str(period), "start": period.start, "end": period.end,
            "usage": usage_totals(usages, period),
        }

    def invoice(self, actor: Actor, team: str, month: str, now: datetime | None = None) -> dict[str, Any]:
        """A team's invoice of a month: frozen once the month is closed, computed from the records until then."""
        now = now or utcnow()
        period = self._readable(actor, team, month, now)
        if self._is_closed(period, now):
            return self._frozen(team, period, now)
        bill = self._bill(period)
        return self._document(bill, team, final=False, now=now)

    def daily(self, actor: Actor, team: str, month: str, now: datetime | None = None
              ) -> dict[tuple[str, str], list[Decimal]]:
        """The exact cost per (service, meter) per day of a month: what the billing page stacks."""
        now = now or utcnow()
        period = self._readable(actor, team, month, now)
        with self.store.session() as session:
            closed = session.get(ClosedMonth, str(period))
            sheet = self._sheet(session, closed.price_sheet_version if closed is not None else None)
            return daily_costs(load_usages(session, period, team), sheet, period)

    def platform(self, actor: Actor, month: str, now: datetime | None = None) -> MonthView:
        """Every team's bill of a month and its use of each platform service (platform team only)."""
        require_admin(actor, "read every team's billing")
        now = now or utcnow()
        period = self.month(month, now)
        with self.store.session() as session:
            teams = list(session.scalars(select(Team.name).order_by(Team.name)))
            services = {name: rows_per_team(session, table, period if in_month else None)
                        for name, (table, in_month) in PLATFORM_SERVICES.items()}
        if self._is_closed(period, now):
            documents = [self._frozen(team, period, now) for team in teams]
            with self.store.session() as session:
                closed = session.get(ClosedMonth, str(period))
                assert closed is not None
                platform, unallocated = closed.platform_cents, closed.unallocated_cents
            final = True
        else:
            bill = self._bill(period)
            documents = [self._document(bill, team, final=False, now=now) for team in teams]
            platform, unallocated, final = bill.platform_cents, bill.unallocated_cents, False
        currency = documents[0]["currency"] if documents else self.price_sheet().currency
        return MonthView(period, currency, final, platform, unallocated, documents, services)

    def month(self, text: str, now: datetime | None = None) -> Month:
        """The month ``YYYY-MM``; Invalid when malformed or still to come."""
        period = Month.parse(text)
        if period.start > (now or utcnow()):
            raise Invalid(f"month {period} is in the future: there is no usage to bill yet")
        return period

    def _readable(self, actor: Actor, team: str, month: str, now: datetime) -> Month:
        """The month asked for, once ``actor`` may read ``team``'s billing and the team exists."""
        if not actor.is_admin and actor.team != team:
            raise Forbidden(f"team {actor.team!r} may not read the billing of team {team[:60]!r}")
        with self.store.session() as session:
            get_team(session, team)
        return self.month(month, now)

    def _is_closed(self, period: Month, now: datetime) -> bool:
        return period.end + timedelta(seconds=self.settings.billing_close_after) <= now

    def _bill(self, period: Month) -> MonthBill:
        """Every team's invoice of ``period``, computed now from the records and the sheet in force."""
        with self.store.session() as session:
            teams = list(session.scalars(select(Team.name)))
            return bill_month(load_usages(session, period), self._sheet(session), period, teams)

    @staticmethod
    def _document(bill: MonthBill, team: str, *, final: bool, now: datetime) -> dict[str, Any]:
        invoice = bill.invoices.get(team) or Invoice(
            team, bill.month, bill.currency, bill.price_sheet_version, platform_cents=bill.platform_cents
        )
        return {**invoice.as_dict(), "final": final, "computed_at": now.isoformat()}

    def _frozen(self, team: str, period: Month, now: datetime) -> dict[str, Any]:
        """``team``'s stored invoice of a closed month, closing the month first if nobody has yet."""
        key = str(period)
        with self.store.session() as session:
            closed = session.get(ClosedMonth, key) is not None
        if not closed:
            bill = self._bill(period)
            try:
                with self.store.session() as session:
                    session.add(ClosedMonth(month=key, price_sheet_version=bill.price_sheet_version,
                                            platform_cents=bill.platform_cents,
                                            unallocated_cents=bill.unallocated_cents, closed_at=now))
                    for name in bill.invoices:
                        document = self._document(bill, name, final=True, now=now)
                        session.add(FrozenInvoice(team=name, month=key, document=document))
                    audit.record(session, Actor.system(), "billing.month.close", target=key,
                                 after={"price_sheet_version": bill.price_sheet_version,
                                        "platform_cents": bill.platform_cents, "teams": len(bill.invoices)})
            except IntegrityError:  # closed at the same moment by another request: read theirs
                pass
        with self.store.session() as session:
            stored = session.scalar(
                select(FrozenInvoice.document).where(FrozenInvoice.team == team, FrozenInvoice.month == key)
            )
            if stored is not None:
                return dict(stored)
            month_row = session.get(ClosedMonth, key)
            assert month_row is not None
            sheet = self._sheet(session, month_row.price_sheet_version)
        # A team made after the month closed used nothing in it.
        empty = Invoice(team, period, sheet.currency, sheet.version, platform_cents=month_row.platform_cents)
        return {**empty.as_dict(), "final": True, "computed_at": month_row.closed_at.isoformat()}


def load_usages(session: Session, period: Month, team: str | None = None) -> list[Usage]:
    """The usage records overlapping ``period`` (of one team, or all), oldest first."""
    query = (
        select(UsageRecord)
        .where(UsageRecord.start < period.end,
               or_(UsageRecord.end > period.start, UsageRecord.start >= period.start))
        .order_by(UsageRecord.id)
    )
    if team is not None:
        query = query.where(UsageRecord.team == team)
    return [
        Usage(team=r.team, service=r.service, environment=r.environment, meter=r.meter,
              process_type=r.process_type, size=r.size, quantity=r.quantity, unit=r.unit, start=r.start, end=r.end)
        for r in session.scalars(query)
    ]


def rows_per_team(session: Session, table_name: str, period: Month | None) -> dict[str, int] | None:
    """Rows of a platform service's table per owning team (made in ``period`` when given); None without the table.

    The team is found through the row's ``environment_id``, ``service_id`` or ``team_id``,
    whichever the table has; a table with none of them cannot be told apart by team.
    """
    inspector = inspect(session.connection())
    if not inspector.has_table(table_name):
        return None
    names = {column["name"] for column in inspector.get_columns(table_name)}
    columns: list[Column[Any]] = [Column(name) for name in names & {"environment_id", "service_id", "team_id"}]
    if "created_at" in names:
        columns.append(Column("created_at", UTCDateTime()))
    table = Table(table_name, MetaData(), *columns)
    if "environment_id" in names:
        query = (select(Team.name, func.count()).select_from(table)
                 .join(Environment, table.c.environment_id == Environment.id)
                 .join(Service, Environment.service_id == Service.id)
                 .join(Team, Service.owner_id == Team.id))
    elif "service_id" in names:
        query = (select(Team.name, func.count()).select_from(table)
                 .join(Service, table.c.service_id == Service.id)
                 .join(Team, Service.owner_id == Team.id))
    elif "team_id" in names:
        query = select(Team.name, func.count()).select_from(table).join(Team, table.c.team_id == Team.id)
    else:
        return None
    if period is not None and "created_at" in names:
        query = query.where(table.c.created_at >= period.start, table.c.created_at < period.end)
    return {team: count for team, count in session.execute(query.group_by(Team.name)).all()}
