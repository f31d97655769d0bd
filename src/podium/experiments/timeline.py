"""Results over time: each day's results over everything up to the end of that day (UTC).

This is the cumulative view GrowthBook and Statsig draw: the point of day D holds the users
first exposed by the end of D and their events from their first exposure to the end of D,
read exactly as the current results are (``results.read_metric``: the same statistics, CUPED
and sequential testing as the experiment's settings say), so the last day's point is today's
results. With sequential testing the intervals are confidence sequences, valid however often
they are looked at, which is what makes a chart over time safe to watch.

The store does the work in one or two statements and returns rows per variant and day, never
per user or event:

- users enter on the day of their first exposure (with, for CUPED, their metric before it);
- a **binomial** metric: each user's first event at or after their first exposure, by its
  day, so a user converts from that day on;
- a **numeric** metric: each user's total per day from their first exposure on, turned by
  window functions into how each day changes the sums results need (of the totals, their
  squares, the users above zero and, for CUPED, the products with the metric before).

Python adds those changes up day by day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from podium.experiments.models import Experiment, ExperimentEvent, MetricKind
from podium.experiments.results import (
    Covariate,
    Group,
    MetricSums,
    Reading,
    first_exposures,
    once_per_row,
    read_metric,
)

MAX_DAYS = 400
"""Points at most in a series: the latest days when an experiment ran longer."""


@dataclass(slots=True)
class _Changes:
    """What one day adds to one variant's cumulative numbers."""

    users: int = 0
    converted: int = 0
    total: float = 0.0
    squares: float = 0.0
    x_total: float = 0.0
    x_squares: float = 0.0
    products: float = 0.0


@dataclass
class _Days:
    """Per variant, per day, the changes; then the running sums."""

    variants: Sequence[str]
    changes: dict[tuple[str, date], _Changes] = field(default_factory=lambda: defaultdict(_Changes))

    def at(self, variant: str, day: str | date) -> _Changes:
        return self.changes[(variant, day if isinstance(day, date) else date.fromisoformat(str(day)[:10]))]

    def days(self) -> list[date]:
        """Every day from the first with data to the last, the quiet ones between included."""
        if not self.changes:
            return []
        first, last = min(d for _, d in self.changes), max(d for _, d in self.changes)
        count = min((last - first).days + 1, MAX_DAYS)
        return [last - timedelta(days=count - 1 - i) for i in range(count)]


def day_of(session: Session, column: Any) -> ColumnElement[str]:
    """The UTC day of a stored time as ``YYYY-MM-DD`` text."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite keeps UTC times as 'YYYY-MM-DD HH:MM:SS.ffffff'


def _binomial(session: Session, experiment: Experiment, metric: str, cuped: bool, days: _Days) -> None:
    """Users by their first exposure's day and their first event's day after it (and the event before, for CUPED)."""
    first = first_exposures(experiment)
    m = aliased(ExperimentEvent, name="m")
    mine = and_(m.environment_id == experiment.environment_id, m.name == metric, m.user_id == first.c.user_id)
    converted = select(func.min(m.at)).where(mine, m.at >= first.c.at).scalar_subquery()
    before: ColumnElement[Any] = case((exists().where(mine, m.at < first.c.at), 1), else_=0) if cuped else literal(0)
    per_user = once_per_row(session, select(first.c.variant, first.c.at, converted.label("converted"),
                                            before.label("x")))
    entered, hit = day_of(session, per_user.c.at), day_of(session, per_user.c.converted)
    rows = session.execute(
        select(per_user.c.variant, entered, hit, per_user.c.x, func.count())
        .group_by(per_user.c.variant, entered, hit, per_user.c.x)
    )
    for variant, d0, d1, x, count in rows:
        start = days.at(variant, d0)
        start.users += count
        start.x_total += x * count
        start.x_squares += x * count
        if d1 is not None:
            conversion = days.at(variant, d1)
            conversion.converted += count
            conversion.total += count
            conversion.squares += count
            conversion.products += x * count


def _numeric(session: Session, experiment: Experiment, metric: str, cuped: bool, days: _Days) -> None:
    """Users by their first exposure's day; then how each day's totals change the sums of the users' totals."""
    first = first_exposures(experiment)
    m = aliased(ExperimentEvent, name="m")
    environment_id = experiment.environment_id
    x: ColumnElement[Any] = literal(0.0)
    if cuped:
        x = select(func.coalesce(func.sum(m.value), 0.0)).where(
            m.environment_id == environment_id, m.name == metric, m.user_id == first.c.user_id, m.at < first.c.at
        ).scalar_subquery()
    per_user = once_per_row(session, select(first.c.user_id, first.c.variant, first.c.at, x.label("x")))
    entered = day_of(session, per_user.c.at)
    for variant, d0, count, x_total, x_squares in session.execute(
        select(per_user.c.variant, entered, func.count(), func.sum(per_user.c.x),
               func.sum(per_user.c.x * per_user.c.x))
        .group_by(per_user.c.variant, entered)
    ):
        start = days.at(variant, d0)
        start.users += count
        start.x_total += float(x_total or 0.0)
        start.x_squares += float(x_squares or 0.0)

    day = day_of(session, m.at)
    per_day = (
        select(per_user.c.user_id, per_user.c.variant, per_user.c.x, day.label("day"), func.sum(m.value).label("t"))
        .join_from(per_user, m, and_(m.environment_id == environment_id, m.name == metric,
                                     m.user_id == per_user.c.user_id, m.at >= per_user.c.at))
        .group_by(per_user.c.user_id, per_user.c.variant, per_user.c.x, day)
        .subquery("per_day")
    )
    running = select(
        per_day, func.sum(per_day.c.t).over(partition_by=per_day.c.user_id, order_by=per_day.c.day).label("c")
    ).subquery("running")
    changes = select(
        running, func.lag(running.c.c, 1, 0.0).over(partition_by=running.c.user_id, order_by=running.c.day)
        .label("prev")
    ).subquery("changes")
    c, prev = changes.c.c, changes.c.prev
    for variant, d, total, squares, above, x_products in session.execute(
        select(
            changes.c.variant, changes.c.day, func.sum(changes.c.t), func.sum(c * c - prev * prev),
            func.sum(case((c > 0, 1), else_=0) - case((prev > 0, 1), else_=0)), func.sum(changes.c.x * changes.c.t),
        ).group_by(changes.c.variant, changes.c.day)
    ):
        step = days.at(variant, d)
        step.total += float(total or 0.0)
        step.squares += float(squares or 0.0)
        step.converted += int(above or 0)
        step.products += float(x_products or 0.0)


def over_time(
    session: Session, experiment: Experiment, service: str, env: str, metric: str | None = None,
    reading: Reading | None = None,
) -> dict[str, Any]:
    """The experiment's results at the end of each day with data: per variant, users, lift and its
    interval, p-value and chance to beat control, cumulative (``docs/experiments.md``)."""
    name = metric or experiment.metric
    kind = experiment.metric_kind if name == experiment.metric else MetricKind.BINOMIAL
    if reading is None:
        reading = Reading(bool(experiment.cuped), bool(experiment.sequential))
    variants, weights = list(experiment.variants), list(experiment.weights)
    days = _Days(variants)
    if kind == MetricKind.NUMERIC:
        _numeric(session, experiment, name, reading.cuped, days)
    else:
        _binomial(session, experiment, name, reading.cuped, days)
    running = {v: _Changes() for v in variants}
    every = sorted({d for _, d in days.changes})
    shown = days.days()
    points: list[dict[str, Any]] = []
    for day in _all_days(every, shown):
        for variant in variants:
            step = days.changes.get((variant, day))
            if step is not None:
                _add(running[variant], step)
        if day < shown[0]:
            continue
        groups = {
            v: Group(r.users, {name: MetricSums(r.converted, r.total, r.squares)},
                     Covariate(r.x_total, r.x_squares, r.products))
            for v, r in running.items()
        }
        results = read_metric(kind, groups, variants, name, weights, reading).to_dict()
        points.append({
            "day": day.isoformat(),
            "variants": [
                {key: row.get(key) for key in ("name", "users", "conversions", "rate", "mean", "lift", "ci_low",
                                               "ci_high", "p_value", "chance_to_beat_control") if key in row}
                for row in results["variants"]  # type: ignore[attr-defined]
            ],
        })
    return {
        "experiment": experiment.key, "service": service, "env": env, "metric": name, "kind": kind,
        "cuped": reading.cuped, "sequential": reading.sequential, "confidence": 0.95, "days": points,
    }


def _all_days(with_data: list[date], shown: list[date]) -> list[date]:
    """Every day with data and every day shown, in order."""
    return sorted(set(with_data) | set(shown))


def _add(total: _Changes, step: _Changes) -> None:
    total.users += step.users
    total.converted += step.converted
    total.total += step.total
    total.squares += step.squares
    total.x_total += step.x_total
    total.x_squares += step.x_squares
    total.products += step.products
