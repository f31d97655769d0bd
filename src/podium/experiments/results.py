"""Experiment results: the stored events folded into per-variant aggregates by the store, then the statistics.

Who counts where:

- A user counts in the variant of their **first exposure** to the experiment (the earliest
  ``at``; on a tie, the event stored first). Exposures naming a variant the experiment does
  not have are left out. A user exposed to more than one variant still counts once, in the
  first one, and the results warn about them: deterministic assignment never does that, so
  such users mean the assignment or the events are broken somewhere.
- A conversion is a metric event of that user, of that metric, **at or after** their first
  exposure. A binomial metric counts users with at least one; a numeric metric sums each
  user's values (0 for a user with none) and compares the means of those sums.
- A segment (``profession=marketing``) holds the users with that attribute value on any of
  their exposures; the value is compared as text.

The store does the work, in one statement: a GROUP BY per user over the exposures (the
first ``at``; the variant when there is one, looked up only for users who saw several),
then for each metric a correlated lookup of that user's events at or after it (``EXISTS``
for a binomial metric, ``SUM`` for a numeric one), all in index order, then sums per variant
and segment. Python receives a handful of rows, never the events. The two indexes on
``experiment_events`` cover every column these read (migration 0061), so the table itself
is touched only for a segment's attributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as scipy_stats
from sqlalchemy import CTE, ColumnElement, Select, Subquery, and_, case, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from podium.errors import Invalid
from podium.experiments import inference, stats
from podium.experiments.models import Experiment, ExperimentEvent, MetricKind
from podium.experiments.service import get_experiment_row
from podium.store.db import Store

SEGMENT_MAX = 200


@dataclass(frozen=True, slots=True)
class MetricSums:
    """One metric over one group of users: how many converted, the sum of their per-user totals and of their squares."""

    converted: int = 0
    total: float = 0.0
    squares: float = 0.0

    def __add__(self, other: MetricSums) -> MetricSums:
        return MetricSums(self.converted + other.converted, self.total + other.total, self.squares + other.squares)


@dataclass(frozen=True, slots=True)
class Covariate:
    """The primary metric before each user's first exposure (``x``): sums of x, x² and x·y (y the metric after)."""

    total: float = 0.0
    squares: float = 0.0
    products: float = 0.0

    def __add__(self, other: Covariate) -> Covariate:
        return Covariate(self.total + other.total, self.squares + other.squares, self.products + other.products)


@dataclass(frozen=True, slots=True)
class Group:
    """The users of one variant (in or out of the segment) and their sums per metric."""

    users: int
    metrics: dict[str, MetricSums]
    covariate: Covariate = Covariate()

    def __add__(self, other: Group) -> Group:
        names = self.metrics.keys() | other.metrics.keys()
        empty = MetricSums()
        return Group(
            self.users + other.users,
            {n: self.metrics.get(n, empty) + other.metrics.get(n, empty) for n in names},
            self.covariate + other.covariate,
        )


@dataclass(frozen=True, slots=True)
class Aggregates:
    """Per variant, the users in the segment and the others (everyone when there is no segment)."""

    variants: list[str]
    inside: dict[str, Group]
    outside: dict[str, Group]
    multiple: int  # users exposed to more than one variant

    def everyone(self, variant: str) -> Group:
        return self.inside[variant] + self.outside[variant]


def parse_segment(text: str | None) -> tuple[str, str] | None:
    """``"profession=marketing"`` as ``("profession", "marketing")``; Invalid when malformed."""
    if text is None or text == "":
        return None
    attribute, sep, value = text.partition("=")
    if not sep or not attribute or len(text) > SEGMENT_MAX:
        raise Invalid(f"segment must look like attribute=value (at most {SEGMENT_MAX} characters), not {text[:60]!r}")
    return attribute, value


def first_exposures(experiment: Experiment, segment: tuple[str, str] | None = None) -> Subquery:
    """Per exposed user: their first exposure's time and variant, whether they saw several variants,
    and whether they are in ``segment`` (always 1 without one): the ``first`` subquery results read."""
    variants = list(experiment.variants)
    environment_id, key = experiment.environment_id, experiment.key
    e = aliased(ExperimentEvent, name="e")
    x = aliased(ExperimentEvent, name="x")
    low, high = func.min(e.variant), func.max(e.variant)
    # Nearly every user saw one variant: that is it. Only the others need their first exposure looked up.
    first_variant = (
        select(x.variant)
        .where(x.environment_id == environment_id, x.experiment == key, x.user_id == e.user_id,
               x.variant.in_(variants))
        .order_by(x.at, x.id)
        .limit(1)
        .scalar_subquery()
    )
    in_segment: ColumnElement[Any] = literal(1)
    if segment is not None:
        attribute, value = segment
        in_segment = func.max(case((e.attributes[attribute].as_string() == value, 1), else_=0))
    return (
        select(
            e.user_id,
            func.min(e.at).label("at"),
            case((low == high, low), else_=first_variant).label("variant"),
            case((low == high, 0), else_=1).label("multiple"),
            in_segment.label("in_segment"),
        )
        .where(e.environment_id == environment_id, e.experiment == key, e.variant.in_(variants))
        .group_by(e.user_id)
        .subquery("first")
    )


def once_per_row(session: Session, stmt: Select[Any]) -> Subquery | CTE:
    """``stmt`` as a FROM whose rows are computed once, however often the outer query names their columns.

    SQLite computes a subquery with a LIMIT row by row as the outer query reads it (a co-routine,
    about 10% faster than writing a materialized CTE to a temporary table and reading it back);
    PostgreSQL is told to materialize the CTE.
    """
    if session.get_bind().dialect.name == "sqlite":
        return stmt.limit(-1).subquery("per_user")
    return stmt.cte("per_user").prefix_with("MATERIALIZED")


def aggregate(
    session: Session,
    experiment: Experiment,
    metrics: Mapping[str, str],
    segment: tuple[str, str] | None = None,
    covariate: str | None = None,
) -> Aggregates:
    """Users and per-metric sums per variant (and in or out of ``segment``), computed by the store.

    ``metrics`` maps each metric name to its kind: a binomial metric gets the number of users
    with an event, a numeric one the sum of the users' totals and of their squares.
    ``covariate`` names one of them to also sum over the events *before* each user's first
    exposure (for CUPED), with its squares and its products with the metric after.
    """
    variants = list(experiment.variants)
    environment_id = experiment.environment_id
    first = first_exposures(experiment, segment)
    m = aliased(ExperimentEvent, name="m")
    per_metric: list[Any] = []
    for i, (name, kind) in enumerate(metrics.items()):
        events = and_(m.environment_id == environment_id, m.name == name, m.user_id == first.c.user_id,
                      m.at >= first.c.at)
        if kind == MetricKind.NUMERIC:
            total = select(func.coalesce(func.sum(m.value), 0.0)).where(events).scalar_subquery()
            per_metric.append(total.label(f"m{i}"))
        else:
            per_metric.append(case((exists().where(events), 1), else_=0).label(f"m{i}"))
        if name == covariate:
            before = and_(m.environment_id == environment_id, m.name == name, m.user_id == first.c.user_id,
                          m.at < first.c.at)
            if kind == MetricKind.NUMERIC:
                pre = select(func.coalesce(func.sum(m.value), 0.0)).where(before).scalar_subquery()
                per_metric.append(pre.label("x"))
            else:
                per_metric.append(case((exists().where(before), 1), else_=0).label("x"))
    per_user = once_per_row(session, select(first.c.variant, first.c.in_segment, first.c.multiple, *per_metric))
    columns: list[Any] = [per_user.c.variant, per_user.c.in_segment, func.count(), func.sum(per_user.c.multiple)]
    for i, kind in enumerate(metrics.values()):
        column = per_user.c[f"m{i}"]
        squares = column * column if kind == MetricKind.NUMERIC else column
        columns += [func.sum(case((column > 0, 1), else_=0)), func.sum(column), func.sum(squares)]
    if covariate is not None:
        x_col, y_col = per_user.c.x, per_user.c[f"m{list(metrics).index(covariate)}"]
        columns += [func.sum(x_col), func.sum(x_col * x_col), func.sum(x_col * y_col)]
    rows = session.execute(select(*columns).group_by(per_user.c.variant, per_user.c.in_segment)).all()

    empty = Group(0, {name: MetricSums() for name in metrics})
    inside = dict.fromkeys(variants, empty)
    outside = dict.fromkeys(variants, empty)
    multiple = 0
    for variant, flag, users, multi, *sums in rows:
        prior = Covariate(*(float(v or 0.0) for v in sums[3 * len(metrics):])) if covariate else Covariate()
        group = Group(int(users), {
            name: MetricSums(int(sums[3 * i] or 0), float(sums[3 * i + 1] or 0.0), float(sums[3 * i + 2] or 0.0))
            for i, name in enumerate(metrics)
        }, prior)
        (inside if flag else outside)[variant] = group
        multiple += int(multi or 0)
    return Aggregates(variants, inside, outside, multiple)


def binomial_data(groups: dict[str, Group], variants: Sequence[str], metric: str) -> list[stats.VariantData]:
    return [stats.VariantData(v, groups[v].users, groups[v].metrics[metric].converted) for v in variants]


def numeric_data(groups: dict[str, Group], variants: Sequence[str], metric: str) -> list[stats.NumericVariantData]:
    """Mean and sample variance of the users' totals, from the sums the store returned."""
    out = []
    for v in variants:
        n, sums = groups[v].users, groups[v].metrics[metric]
        mean = sums.total / n if n else 0.0
        variance = max(0.0, (sums.squares - n * mean * mean) / (n - 1)) if n > 1 else 0.0
        out.append(stats.NumericVariantData(v, n, mean, variance))
    return out


def one_sided_worse(control: stats.VariantData, treatment: stats.VariantData) -> float | None:
    """p-value of "the treatment's rate is higher than the control's": the pooled z-test, one-sided."""
    if control.users == 0 or treatment.users == 0:
        return None
    pooled = (control.conversions + treatment.conversions) / (control.users + treatment.users)
    se = (pooled * (1 - pooled) * (1 / control.users + 1 / treatment.users)) ** 0.5
    if se == 0:
        return None
    z = (treatment.conversions / treatment.users - control.conversions / control.users) / se
    return float(scipy_stats.norm.sf(z))


@dataclass(frozen=True, slots=True)
class Reading:
    """How to read results: CUPED on the pre-exposure metric, sequential (always-valid) p-values."""

    cuped: bool = False
    sequential: bool = False


def moments(groups: dict[str, Group], variants: Sequence[str], metric: str) -> list[tuple[str, inference.Moments]]:
    """Each variant's sums of the metric (y) and of its pre-exposure value (x), for CUPED."""
    out = []
    for v in variants:
        group, sums = groups[v], groups[v].metrics[metric]
        pre = group.covariate
        out.append((v, inference.Moments(group.users, sums.total, sums.squares, pre.total, pre.squares, pre.products)))
    return out


def read_metric(
    kind: str, groups: dict[str, Group], variants: Sequence[str], metric: str, weights: Sequence[float],
    reading: Reading = Reading(),
) -> stats.ExperimentResults:
    """One metric's results from each variant's sums, read as ``reading`` says."""
    if reading.cuped:
        shown: stats.MetricKind = "numeric" if kind == MetricKind.NUMERIC else "binomial"
        data = moments(groups, variants, metric)
        return stats.cuped_results(shown, data, weights, sequential=reading.sequential)
    if kind == MetricKind.NUMERIC:
        return stats.numeric_results(numeric_data(groups, variants, metric), weights, sequential=reading.sequential)
    return stats.binomial_results(binomial_data(groups, variants, metric), weights, sequential=reading.sequential)


def guardrail_rows(
    aggregates: Aggregates, metric: str, weights: Sequence[float], sequential: bool = False
) -> dict[str, Any]:
    """A guardrail metric's results (binomial: users with at least one event), each variant with ``p_worse``.

    Lower is better for a guardrail, so its chance to beat control is the chance of *fewer* events.
    """
    variants = aggregates.variants
    groups = {v: aggregates.everyone(v) for v in variants}
    data = binomial_data(groups, variants, metric)
    shown = stats.binomial_results(data, weights, higher_is_better=False, sequential=sequential)
    row: dict[str, Any] = {"metric": metric, "higher_is_better": False, **shown.to_dict()}
    for i, variant_row in enumerate(row["variants"]):
        variant_row["p_worse"] = None if i == 0 else one_sided_worse(data[0], data[i])
    return row


def experiment_results(
    session: Session,
    experiment: Experiment,
    service: str,
    env: str,
    metric: str | None = None,
    segment: str | None = None,
    reading: Reading | None = None,
) -> dict[str, Any]:
    """The results document of ``docs/experiments.md``: the metric's numbers per variant, SRM, guardrails, segment.

    ``metric`` defaults to the experiment's primary metric (with its kind); another metric
    is read as binomial (users with at least one event). ``reading`` defaults to the
    experiment's own settings.
    """
    name = metric or experiment.metric
    kind = experiment.metric_kind if name == experiment.metric else MetricKind.BINOMIAL
    if reading is None:
        reading = Reading(bool(experiment.cuped), bool(experiment.sequential))
    parsed = parse_segment(segment)
    guardrails = [g for g in experiment.guardrails if isinstance(g, str)]
    metrics = {g: str(MetricKind.BINOMIAL) for g in guardrails}
    metrics[name] = kind
    aggregates = aggregate(session, experiment, metrics, parsed, covariate=name if reading.cuped else None)
    variants, weights = aggregates.variants, list(experiment.weights)
    everyone = {v: aggregates.everyone(v) for v in variants}
    main = read_metric(kind, everyone, variants, name, weights, reading)
    document: dict[str, Any] = {
        "experiment": experiment.key,
        "service": service,
        "env": env,
        "metric": name,
        "status": experiment.status,
        "cuped": reading.cuped,
        "sequential": reading.sequential,
        "confidence": 0.95,
        **main.to_dict(),
        "multiple_exposures": aggregates.multiple,
    }
    if aggregates.multiple:
        users = sum(g.users for g in everyone.values())
        document["warnings"].append(
            f"{aggregates.multiple} of {users} users were exposed to more than one variant "
            "(each counts in the variant of their first exposure): the assignment or the events are inconsistent"
        )
    document["guardrails"] = [guardrail_rows(aggregates, g, weights, reading.sequential) for g in guardrails]
    document["segment"] = None
    if parsed is not None:
        attribute, value = parsed
        document["segment"] = {
            "attribute": attribute,
            "value": value,
            "segment": read_metric(kind, aggregates.inside, variants, name, weights, reading).to_dict(),
            "rest": read_metric(kind, aggregates.outside, variants, name, weights, reading).to_dict(),
        }
    return document


class ResultsService:
    """Reads experiment results; any team may."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def results(
        self, service: str, env: str, key: str, *, metric: str | None = None, segment: str | None = None,
        cuped: bool | None = None, sequential: bool | None = None,
    ) -> dict[str, Any]:
        """The results of experiment ``key`` of ``service``'s environment ``env``.

        ``cuped`` and ``sequential`` override the experiment's own settings for this reading.
        """
        _check_metric(metric)
        with self.store.session() as session:
            experiment = get_experiment_row(session, service, env, key)
            reading = _reading(experiment, cuped, sequential)
            return experiment_results(session, experiment, service, env, metric, segment, reading)

    def over_time(
        self, service: str, env: str, key: str, *, metric: str | None = None, cuped: bool | None = None,
        sequential: bool | None = None,
    ) -> dict[str, Any]:
        """The results of experiment ``key`` at the end of each day, cumulative (``podium.experiments.timeline``)."""
        from podium.experiments.timeline import over_time  # it builds on this module

        _check_metric(metric)
        with self.store.session() as session:
            experiment = get_experiment_row(session, service, env, key)
            return over_time(session, experiment, service, env, metric, _reading(experiment, cuped, sequential))


def _check_metric(metric: str | None) -> None:
    if metric is not None and not 1 <= len(metric) <= 100:
        raise Invalid("metric must be 1 to 100 characters")


def _reading(experiment: Experiment, cuped: bool | None, sequential: bool | None) -> Reading:
    """How to read the experiment: its own CUPED and sequential settings unless overridden."""
    return Reading(
        bool(experiment.cuped) if cuped is None else cuped,
        bool(experiment.sequential) if sequential is None else sequential,
    )
