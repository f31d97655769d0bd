"""The price sheet: TOML the platform team edits, read into exact Decimals.

A sheet names its currency and a list of price periods, each applying from a date
(00:00 UTC) until the next one's. The first period names every meter and the platform's
fixed monthly cost; a later one names only what changes and inherits the rest::

    currency = "USD"

    [[prices]]
    from = 2026-01-01
    platform_monthly = 3000.00
    [prices.meters]
    process_seconds = { standard = 0.0000125, performance = 0.00005 }
    storage_byte_hours = 0.000000000000137
    api_requests = 0.000001
    log_bytes = 0.0000000005
    build_seconds = 0.0001

Numbers are read as ``Decimal`` straight from the text (never through a float), so
``0.1`` is exactly one tenth.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any

from podium.billing.models import Meter
from podium.catalog.rules import is_name
from podium.errors import Invalid

DEFAULT_SIZE = "standard"
SIZE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
PERIOD_KEYS = {"from", "platform_monthly", "meters", "shared_cost"}
SHARE_RULES = ("usage", "even", "weights")


@dataclass(frozen=True)
class ShareRule:
    """How the platform's fixed cost is shared across teams.

    ``usage``: in proportion to each team's usage cost that month; ``even``: the same for
    every team; ``weights``: in proportion to fixed weights per team (a team not listed
    weighs 0).
    """

    rule: str = "usage"
    weights: Mapping[str, Decimal] | None = None

    def describe(self) -> str:
        if self.rule == "usage":
            return "in proportion to each team's usage cost this month"
        if self.rule == "even":
            return "evenly across every team"
        listed = ", ".join(f"{team} {format(weight, 'f')}" for team, weight in sorted((self.weights or {}).items()))
        return f"by fixed weights ({listed}; a team not listed weighs 0)"
MAX_SHEET_BYTES = 256 * 1024


@dataclass(frozen=True)
class PricePeriod:
    """The prices in force from ``starts`` (00:00 UTC) until the next period starts."""

    starts: date
    platform_monthly: Decimal
    # meter → size → price per unit; meters without sizes use the key "".
    meters: Mapping[str, Mapping[str, Decimal]]
    shared_cost: ShareRule = ShareRule()

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.starts, time(), tzinfo=UTC)

    def unit_price(self, meter: str, size: str = "") -> Decimal:
        """The price of one unit of ``meter``; an unknown process size costs what ``standard`` does."""
        table = self.meters[meter]
        if "" in table:
            return table[""]
        return table.get(size.lower(), table[DEFAULT_SIZE])


@dataclass(frozen=True)
class PriceSheet:
    """A parsed price sheet, with its text and the version (a digest of the text) invoices cite."""

    currency: str
    periods: tuple[PricePeriod, ...]
    text: str

    @property
    def version(self) -> str:
        return sheet_version(self.text)

    def period_at(self, moment: datetime) -> PricePeriod | None:
        """The period in force at ``moment``; None before the first one (usage then is free)."""
        starts = [period.starts_at for period in self.periods]
        index = bisect.bisect_right(starts, moment) - 1
        return self.periods[index] if index >= 0 else None

    def changes_within(self, start: datetime, end: datetime) -> list[datetime]:
        """The moments strictly inside ``(start, end)`` where a new period starts."""
        return [p.starts_at for p in self.periods if start < p.starts_at < end]

    def as_dict(self) -> dict[str, Any]:
        """The sheet as JSON-friendly data: prices as decimal strings, never floats."""
        return {
            "currency": self.currency,
            "version": self.version,
            "prices": [
                {
                    "from": period.starts.isoformat(),
                    "platform_monthly": format(period.platform_monthly, "f"),
                    "shared_cost": {
                        "rule": period.shared_cost.rule,
                        "weights": None if period.shared_cost.weights is None else
                        {team: format(w, "f") for team, w in sorted(period.shared_cost.weights.items())},
                        "description": period.shared_cost.describe(),
                    },
                    "meters": {
                        meter: (format(sizes[""], "f") if "" in sizes
                                else {size: format(price, "f") for size, price in sizes.items()})
                        for meter, sizes in period.meters.items()
                    },
                }
                for period in self.periods
            ],
        }


def sheet_version(text: str) -> str:
    """A sheet's version: the first 12 hex digits of the SHA-256 of its text."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_sheet_text() -> str:
    """The price sheet shipped with Podium (``billing/price_sheet.toml``)."""
    return resources.files("podium.billing").joinpath("price_sheet.toml").read_text(encoding="utf-8")


def parse_sheet(text: str) -> PriceSheet:
    """Read a price sheet; Invalid, saying where and why, when it does not parse or breaks a rule."""
    if len(text.encode("utf-8", "replace")) > MAX_SHEET_BYTES:
        raise Invalid(f"price sheet: larger than {MAX_SHEET_BYTES // 1024} KiB")
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise Invalid(f"price sheet is not valid TOML: {exc}") from None
    unknown = set(data) - {"currency", "prices"}
    if unknown:
        raise Invalid(f"price sheet: unknown key {sorted(unknown)[0]!r} (expected currency and [[prices]])")
    currency = data.get("currency", "USD")
    if not isinstance(currency, str) or not CURRENCY_RE.fullmatch(currency):
        raise Invalid("price sheet: currency must be a three-letter code such as \"USD\"")
    raw_periods = data.get("prices")
    if not isinstance(raw_periods, list) or not raw_periods:
        raise Invalid("price sheet: needs at least one [[prices]] table")
    periods: list[PricePeriod] = []
    for index, raw in enumerate(raw_periods, start=1):
        periods.append(_period(raw, f"prices[{index}]", periods[-1] if periods else None))
    return PriceSheet(currency=currency, periods=tuple(periods), text=text)


def _period(raw: Any, where: str, previous: PricePeriod | None) -> PricePeriod:
    if not isinstance(raw, dict):
        raise Invalid(f"price sheet: {where} must be a table")
    unknown = set(raw) - PERIOD_KEYS
    if unknown:
        raise Invalid(f"price sheet: {where}: unknown key {sorted(unknown)[0]!r}")
    starts = raw.get("from")
    if isinstance(starts, datetime) or not isinstance(starts, date):
        raise Invalid(f"price sheet: {where}.from must be a date such as 2026-01-01")
    if previous is not None and starts <= previous.starts:
        raise Invalid(f"price sheet: {where}.from ({starts}) must come after {previous.starts}")
    if "platform_monthly" in raw:
        platform = _amount(raw["platform_monthly"], f"{where}.platform_monthly")
    elif previous is not None:
        platform = previous.platform_monthly
    else:
        raise Invalid(f"price sheet: {where} is the first period and must set platform_monthly")
    given = raw.get("meters", {})
    if not isinstance(given, dict):
        raise Invalid(f"price sheet: {where}.meters must be a table")
    unknown = set(given) - {meter.value for meter in Meter}
    if unknown:
        known = ", ".join(meter.value for meter in Meter)
        raise Invalid(f"price sheet: {where}.meters: unknown meter {sorted(unknown)[0]!r} (known: {known})")
    meters: dict[str, Mapping[str, Decimal]] = dict(previous.meters) if previous is not None else {}
    for meter in Meter:
        if meter.value in given:
            meters[meter.value] = _meter_prices(meter, given[meter.value], f"{where}.meters.{meter.value}")
        elif previous is None:
            raise Invalid(f"price sheet: {where} is the first period and must price every meter: "
                          f"{meter.value} is missing")
    if "shared_cost" in raw:
        shared = _share_rule(raw["shared_cost"], f"{where}.shared_cost")
    else:
        shared = previous.shared_cost if previous is not None else ShareRule()
    return PricePeriod(starts=starts, platform_monthly=platform, meters=meters, shared_cost=shared)


def _share_rule(raw: Any, where: str) -> ShareRule:
    """``{rule = "usage" | "even" | "weights", weights = {team = number}}``."""
    if not isinstance(raw, dict):
        raise Invalid(f"price sheet: {where} must be a table such as {{ rule = \"even\" }}")
    unknown = set(raw) - {"rule", "weights"}
    if unknown:
        raise Invalid(f"price sheet: {where}: unknown key {sorted(unknown)[0]!r} (expected rule and weights)")
    rule = raw.get("rule")
    if rule not in SHARE_RULES:
        raise Invalid(f"price sheet: {where}.rule must be one of {', '.join(SHARE_RULES)}")
    if rule != "weights":
        if "weights" in raw:
            raise Invalid(f"price sheet: {where}.weights is only for rule = \"weights\"")
        return ShareRule(rule)
    given = raw.get("weights")
    if not isinstance(given, dict) or not given:
        raise Invalid(f"price sheet: {where}.weights must name at least one team: {{ checkout = 2, search = 1 }}")
    weights: dict[str, Decimal] = {}
    for team, value in given.items():
        if not is_name(team):
            raise Invalid(f"price sheet: {where}.weights: {team[:40]!r} is not a team name")
        weights[team] = _amount(value, f"{where}.weights.{team}")
    if sum(weights.values()) <= 0:
        raise Invalid(f"price sheet: {where}.weights must not all be 0")
    return ShareRule(rule, weights)


def _meter_prices(meter: Meter, raw: Any, where: str) -> dict[str, Decimal]:
    if not isinstance(raw, dict):
        return {"": _amount(raw, where)}
    if meter is not Meter.PROCESS_SECONDS:
        raise Invalid(f"price sheet: {where} must be a number (only process_seconds is priced by size)")
    prices: dict[str, Decimal] = {}
    for size, value in raw.items():
        if not SIZE_RE.fullmatch(size):
            raise Invalid(f"price sheet: {where}: {size!r} is not a size name (lower case, digits, - . _)")
        prices[size] = _amount(value, f"{where}.{size}")
    if DEFAULT_SIZE not in prices:
        raise Invalid(f"price sheet: {where} must price the {DEFAULT_SIZE!r} size")
    return prices


def _amount(raw: Any, where: str) -> Decimal:
    """A price: a TOML number (or a numeric string), finite and not negative."""
    if isinstance(raw, bool) or not isinstance(raw, int | Decimal | str):
        raise Invalid(f"price sheet: {where} must be a number")
    try:
        value = Decimal(raw) if not isinstance(raw, Decimal) else raw
    except InvalidOperation:
        raise Invalid(f"price sheet: {where} must be a number, not {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise Invalid(f"price sheet: {where} must be a number of at least 0")
    return value
