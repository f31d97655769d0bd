"""Service level objectives: error budget and burn rate over a rolling window ending now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from podium.errors import Invalid
from podium.metrics.availability import Timeline, combine, tally
from podium.metrics.period import to_seconds

MAX_WINDOW_DAYS = 365
BURN_WINDOWS = (("burn_rate_1h", timedelta(hours=1)), ("burn_rate_6h", timedelta(hours=6)))


def check_objective(objective: float, window_days: int) -> None:
    """An objective strictly between 0 and 1 (0.999 is 99.9%) over 1 to 365 days; else Invalid."""
    if not 0 < objective < 1:
        raise Invalid(f"objective {objective!r} must be between 0 and 1, exclusive: 0.999 means 99.9%")
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise Invalid(f"window of {window_days} days: use 1 to {MAX_WINDOW_DAYS} days")


@dataclass(frozen=True)
class SloStatus:
    """Where a service stands against its objective at ``window_end``."""

    objective: float
    window_days: int
    window_start: datetime
    window_end: datetime
    availability: float | None
    error_budget_seconds: float | None  # the downtime the objective allows over the window
    budget_consumed_seconds: float  # the downtime there was
    budget_remaining_fraction: float | None  # 1 untouched, 0 spent, below 0 overspent
    burn_rate: float | None  # 1: the budget would be spent exactly at the window's end
    burn_rate_1h: float | None
    burn_rate_6h: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "window_days": self.window_days,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "availability": self.availability,
            "error_budget_seconds": self.error_budget_seconds,
            "budget_consumed_seconds": self.budget_consumed_seconds,
            "budget_remaining_fraction": self.budget_remaining_fraction,
            "burn_rate": self.burn_rate,
            "burn_rate_1h": self.burn_rate_1h,
            "burn_rate_6h": self.burn_rate_6h,
        }


def _burn(timelines: Sequence[Timeline], start: datetime, end: datetime) -> tuple[float, float]:
    """Downtime and observed seconds over ``[start, end)``."""
    total = combine(tally(t, to_seconds(start), to_seconds(end)) for t in timelines)
    return total.downtime, total.observed


def slo_status(timelines: Sequence[Timeline], objective: float, window_days: int, now: datetime) -> SloStatus:
    """Error budget and burn rates of an objective over ``window_days`` ending at ``now``.

    The budget is ``(1 - objective) * observed time`` (maintenance is not observed); the
    burn rate over a span is its downtime fraction divided by ``1 - objective``.
    """
    check_objective(objective, window_days)
    allowed = 1.0 - objective
    start = now - timedelta(days=window_days)
    downtime, observed = _burn(timelines, start, now)
    budget = allowed * observed if observed > 0 else None
    rates: dict[str, float | None] = {}
    for name, span in BURN_WINDOWS:
        down, seen = _burn(timelines, now - span, now)
        rates[name] = (down / seen) / allowed if seen > 0 else None
    return SloStatus(
        objective=objective,
        window_days=window_days,
        window_start=start,
        window_end=now,
        availability=1.0 - downtime / observed if observed > 0 else None,
        error_budget_seconds=budget,
        budget_consumed_seconds=downtime,
        budget_remaining_fraction=1.0 - downtime / budget if budget else None,
        burn_rate=(downtime / observed) / allowed if observed > 0 else None,
        burn_rate_1h=rates["burn_rate_1h"],
        burn_rate_6h=rates["burn_rate_6h"],
    )
