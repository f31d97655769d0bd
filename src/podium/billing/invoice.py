"""Invoices from usage records and a price sheet: a pure function of its inputs.

How the cents come out, so that they always add up:

1. Each usage record is clipped to the month and cut where a price period starts; a
   piece keeps the share of the record's quantity that its share of the record's time
   is (to the microsecond), and costs quantity * unit price, exactly, in ``Decimal``.
2. A line (meter, service, environment, process type, size) sums its pieces' exact
   costs and is rounded once to whole cents, half up: ``amount_cents``.
3. The platform's fixed cost for the month is each period's ``platform_monthly`` times
   the share of the month it covers, rounded once to cents.
4. That fixed cost is shared out across the teams by the price sheet's ``shared_cost``
   rule of each period: in proportion to their usage cost (``usage``), evenly
   (``even``), or by fixed weights (``weights``). Each team's exact share (summed over the
   month's price periods) becomes whole cents by the largest-remainder method: each team
   first gets the whole cents of its exact share, then the cents left over go one each to
   the teams with the largest fractions (ties by team name). The shares add up to the
   allocated cost exactly. A period where no team weighs anything (``usage`` and no usage,
   ``weights`` naming no team billed) leaves its part unallocated.
5. ``total_cents`` = the sum of the lines' ``amount_cents`` + ``shared_cents``.

Nothing here reads the clock or the store: the same records and sheet give the same cents.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from podium.billing.prices import PricePeriod, PriceSheet, ShareRule
from podium.errors import Invalid

MONTH_RE = re.compile(r"(\d{4})-(\d{2})")
CENT = Decimal(1)
PRECISION = 50  # significant digits of exact sums: far beyond any quantity * price
MICROSECOND = timedelta(microseconds=1)
CSV_COLUMNS = ("meter", "service", "env", "process_type", "size", "quantity", "unit", "amount_cents")
CSV_CELL_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as the start of a formula


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``, or Invalid."""
        match = MONTH_RE.fullmatch(text)
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1970:
            shown = text if len(text) <= 20 else text[:20] + "…"
            raise Invalid(f"month {shown!r} is not a month: use YYYY-MM, e.g. 2026-03")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> Month:
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month (exclusive)."""
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class Usage:
    """A usage record as an invoice sees it."""

    team: str
    service: str
    environment: str
    meter: str
    process_type: str
    size: str
    quantity: Decimal
    unit: str
    start: datetime
    end: datetime


LineKey = tuple[str, str, str, str, str]  # meter, service, environment, process type, size


@dataclass
class Line:
    """One line of an invoice: a meter's use by one service environment over the month."""

    meter: str
    service: str
    environment: str
    process_type: str
    size: str
    unit: str
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # exact, in currency units

    @property
    def amount_cents(self) -> int:
        return to_cents(self.cost)

    def as_dict(self) -> dict[str, Any]:
        return {
            "meter": self.meter, "service": self.service, "env": self.environment,
            "process_type": self.process_type, "size": self.size, "quantity": json_number(self.quantity),
            "unit": self.unit, "amount_cents": self.amount_cents,
        }


@dataclass(frozen=True)
class SharePart:
    """How a team's share of the fixed cost was computed over one price period of the month."""

    start: datetime
    end: datetime
    rule: str
    description: str
    cost: Decimal  # the platform's fixed cost over the part, exact
    team_weight: Decimal  # usage cents, 1, or the team's weight
    total_weight: Decimal  # the same over every team

    @property
    def share(self) -> Decimal | None:
        return None if self.total_weight == 0 else self.team_weight / self.total_weight

    def as_dict(self) -> dict[str, Any]:
        share = self.share
        return {
            "from": self.start.isoformat(), "until": self.end.isoformat(), "rule": self.rule,
            "description": self.description, "platform_cents": to_cents(self.cost),
            "team_weight": json_number(self.team_weight), "total_weight": json_number(self.total_weight),
            "share": None if share is None else float(share),
            "exact_cents": None if share is None else float((self.cost * share * 100).quantize(Decimal("0.0001"))),
        }


@dataclass
class Invoice:
    """A team's invoice for one month."""

    team: str
    month: Month
    currency: str
    price_sheet_version: str
    lines: list[Line] = field(default_factory=list)
    shared_cents: int = 0
    platform_cents: int = 0
    shared_basis: list[SharePart] = field(default_factory=list)

    def shared_explanation(self) -> str:
        """One sentence a team can check its share against."""
        parts = []
        for part in self.shared_basis:
            share = part.share
            if share is None:
                parts.append(f"{part.start:%Y-%m-%d} to {part.end:%Y-%m-%d}: shared {part.description}; "
                             "no team weighed anything, so nobody was charged")
                continue
            weight = {"usage": f"{json_number(part.team_weight)} of {json_number(part.total_weight)} usage cents",
                      "even": f"1 of {json_number(part.total_weight)} teams",
                      "weights": f"weight {json_number(part.team_weight)} of {json_number(part.total_weight)}"}
            parts.append(f"{part.start:%Y-%m-%d} to {part.end:%Y-%m-%d}: {to_cents(part.cost)} cents shared "
                         f"{part.description}; this team: {weight.get(part.rule, '')} = {float(share):.4%}")
        return "; ".join(parts) + f"; rounded to {self.shared_cents} cents (largest remainder)"

    @property
    def usage_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @property
    def total_cents(self) -> int:
        return self.usage_cents + self.shared_cents

    def as_dict(self) -> dict[str, Any]:
        return {
            "team": self.team, "month": str(self.month), "currency": self.currency,
            "price_sheet_version": self.price_sheet_version,
            "lines": [line.as_dict() for line in self.lines],
            "usage_cents": self.usage_cents, "shared_cents": self.shared_cents,
            "platform_cents": self.platform_cents, "total_cents": self.total_cents,
            "shared_basis": [part.as_dict() for part in self.shared_basis],
            "shared_explanation": self.shared_explanation() if self.shared_basis else None,
        }


@dataclass
class MonthBill:
    """Every team's invoice for a month, and the platform's fixed cost they share."""

    month: Month
    currency: str
    invoices: dict[str, Invoice]
    platform_cents: int
    unallocated_cents: int
    price_sheet_version: str


def line_order(key: LineKey) -> tuple[str, ...]:
    """Lines read by service, environment, then meter."""
    meter, service, environment, process_type, size = key
    return service, environment, meter, process_type, size


def to_cents(amount: Decimal) -> int:
    """An exact amount in currency units as whole cents, half up (1.005 → 101)."""
    return int((amount * 100).quantize(CENT, rounding=ROUND_HALF_UP))


def json_number(value: Decimal) -> int | float:
    """A quantity for JSON: an int when whole, else the nearest float (quantities, never money)."""
    return int(value) if value == value.to_integral_value() else float(value)


def micros(delta: timedelta) -> int:
    return delta // MICROSECOND


def pieces(usage: Usage, sheet: PriceSheet, start: datetime, end: datetime) -> Iterable[tuple[Decimal, Decimal]]:
    """(quantity, exact cost) of each part of ``usage`` inside ``[start, end)``, cut at price changes.

    A record of no length counts wholly where its start lies.
    """
    if usage.end <= usage.start:
        if start <= usage.start < end:
            period = sheet.period_at(usage.start)
            price = period.unit_price(usage.meter, usage.size) if period is not None else Decimal(0)
            yield usage.quantity, usage.quantity * price
        return
    lo, hi = max(usage.start, start), min(usage.end, end)
    if lo >= hi:
        return
    whole = Decimal(micros(usage.end - usage.start))
    cuts = [lo, *sheet.changes_within(lo, hi), hi]
    for piece_start, piece_end in itertools.pairwise(cuts):
        span = micros(piece_end - piece_start)
        quantity = usage.quantity if span == whole else usage.quantity * span / whole
        period = sheet.period_at(piece_start)
        price = period.unit_price(usage.meter, usage.size) if period is not None else Decimal(0)
        yield quantity, quantity * price


def platform_parts(sheet: PriceSheet, month: Month) -> list[tuple[datetime, datetime, Decimal, PricePeriod]]:
    """(start, end, exact fixed cost, period) of each price period's part of ``month``."""
    whole = Decimal(micros(month.end - month.start))
    cuts = [month.start, *sheet.changes_within(month.start, month.end), month.end]
    parts = []
    for start, end in itertools.pairwise(cuts):
        period = sheet.period_at(start)
        if period is not None:
            parts.append((start, end, period.platform_monthly * micros(end - start) / whole, period))
    return parts


def platform_cost(sheet: PriceSheet, month: Month) -> Decimal:
    """The platform's fixed cost for ``month``: each period's monthly cost times the share it covers."""
    return sum((cost for _, _, cost, _ in platform_parts(sheet, month)), Decimal(0))


def team_weights(rule: ShareRule, usage_cents: Mapping[str, int]) -> dict[str, Decimal]:
    """Each team's weight under ``rule``: its usage cents, 1 each, or its fixed weight (0 when not listed)."""
    if rule.rule == "even":
        return {team: Decimal(1) for team in usage_cents}
    if rule.rule == "weights":
        weights = rule.weights or {}
        return {team: weights.get(team, Decimal(0)) for team in usage_cents}
    return {team: Decimal(cents) for team, cents in usage_cents.items()}


def exact_remainder(exact: Mapping[str, Decimal]) -> dict[str, int]:
    """Exact amounts (currency units) as whole cents adding up to the rounded total: largest remainder."""
    cents = {name: amount * 100 for name, amount in exact.items()}
    total = to_cents(sum(exact.values(), Decimal(0)))
    shares = {name: int(value // 1) for name, value in cents.items()}
    left = total - sum(shares.values())
    by_fraction = sorted(cents, key=lambda name: (-(cents[name] - shares[name]), name))
    for name in by_fraction[:max(0, left)]:
        shares[name] += 1
    return shares


def largest_remainder(total: int, weights: Mapping[str, int]) -> dict[str, int]:
    """``total`` cents split in proportion to ``weights``, adding up exactly; all zero without weight."""
    weight = sum(weights.values())
    if weight <= 0 or total <= 0:
        return dict.fromkeys(weights, 0)
    shares = {name: total * w // weight for name, w in weights.items()}
    left = total - sum(shares.values())
    by_fraction = sorted(weights, key=lambda name: (-(total * weights[name] % weight), name))
    for name in by_fraction[:left]:
        shares[name] += 1
    return shares


def bill_month(usages: Iterable[Usage], sheet: PriceSheet, month: Month, teams: Iterable[str] = ()) -> MonthBill:
    """Every team's invoice for ``month`` from the usage records; ``teams`` get one even without usage."""
    with localcontext() as context:
        context.prec = PRECISION
        lines: dict[str, dict[LineKey, Line]] = defaultdict(dict)
        for team in teams:
            lines[team] = {}
        for usage in usages:
            for quantity, cost in pieces(usage, sheet, month.start, month.end):
                key = (usage.meter, usage.service, usage.environment, usage.process_type, usage.size)
                line = lines[usage.team].get(key)
                if line is None:
                    line = lines[usage.team][key] = Line(*key, unit=usage.unit)
                line.quantity += quantity
                line.cost += cost
        version = sheet.version
        invoices = {
            team: Invoice(team=team, month=month, currency=sheet.currency, price_sheet_version=version,
                          lines=[by_key[key] for key in sorted(by_key, key=line_order)])
            for team, by_key in sorted(lines.items())
        }
        parts = platform_parts(sheet, month)
        platform = to_cents(sum((cost for _, _, cost, _ in parts), Decimal(0)))
        usage_by_team = {team: invoice.usage_cents for team, invoice in invoices.items()}
        exact = dict.fromkeys(invoices, Decimal(0))
        for start, end, cost, period in parts:
            weights = team_weights(period.shared_cost, usage_by_team)
            total = sum(weights.values(), Decimal(0))
            for team, invoice in invoices.items():
                invoice.shared_basis.append(SharePart(start, end, period.shared_cost.rule,
                                                      period.shared_cost.describe(), cost, weights[team], total))
                if total > 0:
                    exact[team] += cost * weights[team] / total
        shares = exact_remainder(exact) if invoices else {}
        for team, invoice in invoices.items():
            invoice.shared_cents = shares[team]
            invoice.platform_cents = platform
        unallocated = platform - sum(shares.values())
        return MonthBill(month=month, currency=sheet.currency, invoices=invoices, platform_cents=platform,
                         unallocated_cents=unallocated,
                         price_sheet_version=version)


def daily_costs(usages: Iterable[Usage], sheet: PriceSheet, month: Month) -> dict[tuple[str, str], list[Decimal]]:
    """Exact cost per (service, meter) per day of the month: what the billing page's chart stacks."""
    with localcontext() as context:
        context.prec = PRECISION
        series: dict[tuple[str, str], list[Decimal]] = {}
        for usage in usages:
            first, last = max(usage.start, month.start), min(max(usage.end, usage.start + MICROSECOND), month.end)
            if first >= last:
                continue
            costs = series.setdefault((usage.service or "(team)", usage.meter), [Decimal(0)] * month.days)
            for index in range((first - month.start).days, (last - MICROSECOND - month.start).days + 1):
                day = month.start + timedelta(days=index)
                spent = (cost for _, cost in pieces(usage, sheet, day, day + timedelta(days=1)))
                costs[index] += sum(spent, Decimal(0))
        return dict(sorted(series.items()))


def usage_totals(usages: Iterable[Usage], month: Month) -> list[dict[str, Any]]:
    """Quantities per service, environment and meter (process type and size too) over ``month``."""
    totals: dict[LineKey, tuple[str, Decimal]] = {}
    with localcontext() as context:
        context.prec = PRECISION
        for usage in usages:
            key = (usage.service, usage.environment, usage.meter, usage.process_type, usage.size)
            unit, quantity = totals.get(key, (usage.unit, Decimal(0)))
            totals[key] = (unit, quantity + clipped(usage, month.start, month.end))
    return [
        {"service": service, "env": env, "meter": meter, "process_type": kind, "size": size,
         "quantity": json_number(quantity), "unit": unit}
        for (service, env, meter, kind, size), (unit, quantity) in sorted(totals.items())
    ]


def clipped(usage: Usage, start: datetime, end: datetime) -> Decimal:
    """The part of a record's quantity inside ``[start, end)``, in proportion to time."""
    if usage.end <= usage.start:
        return usage.quantity if start <= usage.start < end else Decimal(0)
    lo, hi = max(usage.start, start), min(usage.end, end)
    if lo >= hi:
        return Decimal(0)
    whole, span = micros(usage.end - usage.start), micros(hi - lo)
    return usage.quantity if span == whole else usage.quantity * span / whole


def csv_cell(value: Any) -> str:
    """A value as a CSV cell, with text a spreadsheet would run as a formula quoted."""
    text = str(value)
    if isinstance(value, str) and text.startswith(CSV_CELL_TRIGGERS):
        return "'" + text
    return text


def invoice_csv(document: Mapping[str, Any]) -> str:
    """An invoice document as CSV: one row per line, then the shared part and the total."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in document["lines"]:
        writer.writerow([csv_cell(line[column]) for column in CSV_COLUMNS])
    writer.writerow(["shared", "", "", "", "", "", "", document["shared_cents"]])
    writer.writerow(["total", "", "", "", "", "", "", document["total_cents"]])
    return buffer.getvalue()
