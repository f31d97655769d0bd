"""Experiment verbs: create, edit, start, stop, decide; the exposure cap; stale experiments.

An experiment belongs to one service environment and to the service's owning team: the
owner, the platform team, or a team holding a live ``config`` grant may change it, and
every change is recorded in the audit log in the same transaction. The lifecycle
``draft → running → stopped → decided`` moves only through ``transition``, which refuses
a step from a state it does not apply to. A coverage above the exposure cap needs an
override with a reason, which is stored on the experiment and audited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import PLATFORM_TEAM, Environment, Right, Service
from podium.catalog.rules import REASON_MAX, check_text
from podium.catalog.service import authorize, get_environment, get_service, get_team
from podium.config import Settings
from podium.errors import Conflict, Invalid
from podium.experiments.definitions import DefinitionsCache, etag_of
from podium.experiments.flags import FlagService
from podium.experiments.groups import SavedGroupService
from podium.experiments.models import Decision, Experiment, ExperimentStatus, MetricKind
from podium.experiments.rules import (
    GUARDRAILS_MAX,
    HYPOTHESIS_MAX,
    check_conditions,
    check_hash_version,
    check_key,
    check_label,
    check_names,
    check_namespace,
    check_share,
    check_variants,
    check_weights,
    keyed_row,
    shown,
)
from podium.store.db import Store, utcnow

__all__ = [
    "ExperimentInfo",
    "ExperimentService",
    "etag_of",
    "get_experiment_row",
    "stop_running",
    "transition",
]

# Which step leads from which state; anything else is refused with a 409.
TRANSITIONS: dict[ExperimentStatus, frozenset[ExperimentStatus]] = {
    ExperimentStatus.DRAFT: frozenset({ExperimentStatus.RUNNING}),
    ExperimentStatus.RUNNING: frozenset({ExperimentStatus.STOPPED, ExperimentStatus.DECIDED}),
    ExperimentStatus.STOPPED: frozenset({ExperimentStatus.DECIDED}),
    ExperimentStatus.DECIDED: frozenset(),
}
VERBS = {ExperimentStatus.RUNNING: "start", ExperimentStatus.STOPPED: "stop", ExperimentStatus.DECIDED: "decide"}

EDITABLE = frozenset({
    "hypothesis", "variants", "weights", "coverage", "metric", "metric_kind", "guardrails", "seed",
    "hash_version", "namespace", "conditions", "cuped", "sequential",
})
# How results are read (CUPED, sequential) changes no user's variant: it may change at any time.
ANALYSIS = frozenset({"cuped", "sequential"})
EDITABLE_WHILE_RUNNING = frozenset({"hypothesis", "coverage", "conditions", "guardrails"}) | ANALYSIS
EDITABLE_WHEN_OVER = frozenset({"hypothesis"}) | ANALYSIS


@dataclass(frozen=True)
class CapOverride:
    """Who let an experiment run above the exposure cap, when and why."""

    by: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class DecisionInfo:
    """What was decided: ship a variant to everyone, or discard (everyone gets the control)."""

    decision: str
    variant: str | None
    by: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class ExperimentInfo:
    """An experiment as the API, CLI and web show it (the contract's experiment JSON)."""

    key: str
    service: str
    env: str
    hypothesis: str
    status: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    coverage: float
    cap: float
    seed: str
    hash_version: int
    namespace: tuple[str, float, float] | None
    conditions: Mapping[str, Any]
    metric: str
    metric_kind: str
    guardrails: tuple[str, ...]
    cuped: bool
    sequential: bool
    cap_override: CapOverride | None
    started_at: datetime | None
    started_by: str | None
    stopped_at: datetime | None
    stopped_by: str | None
    stop_reason: str | None
    decision: DecisionInfo | None
    stale: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Experiment, service: str, env: str, *, cap: float, stale_after: timedelta) -> ExperimentInfo:
        override = None
        if row.cap_override_at is not None:
            override = CapOverride(row.cap_override_by or "", row.cap_override_at, row.cap_override_reason or "")
        decision = None
        if row.decision is not None and row.decided_at is not None:
            decision = DecisionInfo(
                row.decision, row.decided_variant, row.decided_by or "", row.decided_at, row.decision_reason or ""
            )
        ns = row.namespace
        return cls(
            key=row.key, service=service, env=env, hypothesis=row.hypothesis, status=row.status,
            variants=tuple(row.variants), weights=tuple(row.weights), coverage=row.coverage, cap=cap,
            seed=row.seed or row.key, hash_version=row.hash_version,
            namespace=(str(ns[0]), float(ns[1]), float(ns[2])) if ns else None,
            conditions=dict(row.conditions), metric=row.metric, metric_kind=row.metric_kind,
            guardrails=tuple(row.guardrails), cuped=bool(row.cuped), sequential=bool(row.sequential),
            cap_override=override,
            started_at=row.started_at, started_by=row.started_by, stopped_at=row.stopped_at,
            stopped_by=row.stopped_by, stop_reason=row.stop_reason, decision=decision,
            stale=is_stale(row, stale_after), created_by=row.created_by, created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """The experiment as JSON-ready data: lists for tuples, ISO 8601 for times."""
        data: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


Experiments = list[ExperimentInfo]  # an alias: inside the service class, ``list`` names its verb


def is_stale(row: Experiment, stale_after: timedelta) -> bool:
    """Running for longer than ``stale_after`` without a decision."""
    return (
        row.status == ExperimentStatus.RUNNING
        and row.started_at is not None
        and utcnow() - row.started_at > stale_after
    )


def get_experiment_row(session: Session, service: str, env: str, key: str) -> Experiment:
    """The experiment ``key`` of ``service``'s environment ``env``, or NotFound."""
    return keyed_row(session, Experiment, service, env, key)


def transition(
    row: Experiment, to: ExperimentStatus, *, by: str, reason: str | None = None,
    decision: Decision | None = None, variant: str | None = None,
) -> None:
    """Move an experiment to ``to``, recording who, when and why; Conflict from a state it does not apply to.

    The one place the lifecycle changes: ``start`` (draft → running), ``stop``
    (running → stopped), ``decide`` (running or stopped → decided, with ``decision``).
    """
    current = ExperimentStatus(row.status)
    if to not in TRANSITIONS[current]:
        allowed = [s for s, targets in TRANSITIONS.items() if to in targets]
        raise Conflict(
            f"cannot {VERBS.get(to, to.value)} experiment {row.key!r}: it is {current.value}"
            + (f" (only a {' or '.join(s.value for s in allowed)} experiment can)" if allowed else "")
        )
    now = utcnow()
    if to is ExperimentStatus.RUNNING:
        row.started_at, row.started_by = now, by
    elif to is ExperimentStatus.STOPPED:
        row.stopped_at, row.stopped_by, row.stop_reason = now, by, reason or ""
    else:
        if decision is None:
            raise Invalid("a decision is ship or discard")
        row.decision, row.decided_variant = decision.value, variant
        row.decided_at, row.decided_by, row.decision_reason = now, by, reason or ""
    row.status = to.value
    row.updated_at = now


def stop_running(session: Session, experiment: Experiment, by: str, reason: str) -> bool:
    """Stop a running experiment in ``session`` (everyone gets the control); False if it was not running.

    For stops Podium makes by itself (a guardrail, an incident): ``stopped_by`` is ``by``
    and the audit event, ``experiment.auto_stop``, is filed under the owning team.
    """
    if experiment.status != ExperimentStatus.RUNNING:
        return False
    environment = session.get(Environment, experiment.environment_id)
    service = environment.service if environment is not None else None
    before = _snapshot(experiment)
    transition(experiment, ExperimentStatus.STOPPED, by=by, reason=reason)
    actor = (
        Actor(team=service.owner.name, team_id=service.owner_id, token_id=None) if service is not None
        else Actor(team=PLATFORM_TEAM, team_id=0, token_id=None)
    )
    audit.record(
        session, actor, "experiment.auto_stop", service=service.name if service is not None else None,
        target=_target(experiment, environment.name if environment is not None else "?"),
        before=before, after=_snapshot(experiment),
    )
    return True


class ExperimentService:
    """Experiments (and, as ``flags``, feature flags; as ``groups``, the teams' saved groups) of the
    service environments of one store."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.flags = FlagService(store)
        self.groups = SavedGroupService(store)  # the teams' saved groups, which conditions name
        self._definitions = DefinitionsCache(store)  # what SDKs poll, built once per change

    @property
    def cap(self) -> float:
        return self.settings.experiments_exposure_cap

    @property
    def stale_after(self) -> timedelta:
        return timedelta(days=self.settings.experiments_stale_days)

    def info(self, row: Experiment, service: str, env: str) -> ExperimentInfo:
        return ExperimentInfo.of(row, service, env, cap=self.cap, stale_after=self.stale_after)

    # Reading ----------------------------------------------------------------------------

    def get(self, service: str, env: str, key: str) -> ExperimentInfo:
        """One experiment of a service environment."""
        with self.store.session() as session:
            return self.info(get_experiment_row(session, service, env, key), service, env)

    def list(self, service: str, env: str) -> Experiments:
        """A service environment's experiments, by key."""
        with self.store.session() as session:
            environment = get_environment(session, get_service(session, service), env)
            rows = session.scalars(
                select(Experiment).where(Experiment.environment_id == environment.id).order_by(Experiment.key)
            )
            return [self.info(row, service, env) for row in rows]

    def for_team(self, team: str, *, stale_only: bool = False) -> Experiments:
        """The experiments of every service ``team`` owns (only the stale ones with ``stale_only``)."""
        with self.store.session() as session:
            owner = get_team(session, team)
            stmt = (
                select(Experiment, Service.name, Environment.name)
                .join(Environment, Experiment.environment_id == Environment.id)
                .join(Service, Environment.service_id == Service.id)
                .where(Service.owner_id == owner.id)
                .order_by(Service.name, Environment.name, Experiment.key)
            )
            if stale_only:
                stmt = stmt.where(
                    Experiment.status == ExperimentStatus.RUNNING, Experiment.started_at < utcnow() - self.stale_after
                )
            infos = [self.info(row, svc, env) for row, svc, env in session.execute(stmt)]
            return [i for i in infos if i.stale] if stale_only else infos

    def definitions(self, service: str, env: str) -> tuple[dict[str, Any], str]:
        """What SDKs fetch for a service environment, and its ETag: every experiment but drafts, every flag.

        Kept per environment and built again only after a change there; the document is
        shared: do not change it.
        """
        kept = self._definitions.get(service, env)
        return kept.document, kept.etag

    def evaluate(
        self, service: str, env: str, user_id: str, attributes: Mapping[str, Any] | None = None
    ) -> dict[str, str | None]:
        """Every experiment's variant for a user, as the SDK would give it (None: not exposed); logs no exposure."""
        return self._definitions.get(service, env).evaluator.variants(user_id, attributes)

    def evaluate_flags(
        self, service: str, env: str, user_id: str, attributes: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Every flag's value for a user, as the SDK would give it."""
        evaluator = self._definitions.get(service, env).evaluator
        return {key: evaluator.flag(key, user_id, attributes) for key in evaluator.flags()}

    # Changing ---------------------------------------------------------------------------

    def create(
        self, actor: Actor, service: str, env: str, key: str, *, metric: str, hypothesis: str = "",
        variants: Sequence[str] = ("control", "treatment"), weights: Sequence[float] | None = None,
        coverage: float | None = None, metric_kind: str = MetricKind.BINOMIAL, guardrails: Sequence[str] = (),
        seed: str | None = None, hash_version: int = 2, namespace: Sequence[Any] | None = None,
        conditions: Mapping[str, Any] | None = None, override_cap: bool = False, reason: str | None = None,
        cuped: bool = False, sequential: bool = False,
    ) -> ExperimentInfo:
        """Create a draft; ``coverage`` defaults to the cap. Above the cap it needs ``override_cap`` and a reason."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            environment = get_environment(session, svc, env)
            check_key("experiment", key)
            names = check_variants(variants)
            row = Experiment(
                environment_id=environment.id, key=key, hypothesis=check_text("hypothesis", hypothesis, HYPOTHESIS_MAX),
                status=ExperimentStatus.DRAFT.value, variants=names, weights=check_weights(weights, len(names)),
                coverage=check_share("coverage", self.cap if coverage is None else coverage, allow_zero=False),
                seed=check_label("seed", seed) if seed is not None else None,
                hash_version=check_hash_version(hash_version), namespace=check_namespace(namespace),
                conditions=check_conditions("conditions", dict(conditions or {})),
                metric=check_label("metric", metric), metric_kind=_metric_kind(metric_kind),
                guardrails=check_names("guardrail", guardrails, GUARDRAILS_MAX), created_by=actor.team,
                cuped=_flag("cuped", cuped), sequential=_flag("sequential", sequential),
            )
            self._check_cap(row, actor, override_cap, reason, coverage_changed=True)
            exists = select(Experiment.id).where(Experiment.environment_id == environment.id, Experiment.key == key)
            if session.scalar(exists) is not None:
                raise Conflict(f"experiment {key!r} exists already in {service}/{env}")
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise Conflict(f"experiment {key!r} exists already in {service}/{env}") from None
            self._audit(session, actor, "experiment.create", svc, env, row, None)
            return self.info(row, service, env)

    def update(
        self, actor: Actor, service: str, env: str, key: str, changes: Mapping[str, Any], *,
        override_cap: bool = False, reason: str | None = None,
    ) -> ExperimentInfo:
        """Edit an experiment: a draft freely; a running one only its hypothesis, coverage, conditions, guardrails.

        ``changes`` maps field names to new values; fields left out keep theirs.
        """
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            unknown = sorted(set(changes) - EDITABLE)
            if unknown:
                raise Invalid(f"cannot edit {', '.join(unknown)}: editable fields are {', '.join(sorted(EDITABLE))}")
            row = get_experiment_row(session, service, env, key)
            before = _snapshot(row)
            changed = {name for name, value in changes.items() if _differs(row, name, value)}
            editable = {
                ExperimentStatus.DRAFT: EDITABLE, ExperimentStatus.RUNNING: EDITABLE_WHILE_RUNNING,
            }.get(ExperimentStatus(row.status), EDITABLE_WHEN_OVER)
            frozen = sorted(changed - editable)
            if frozen:
                raise Conflict(
                    f"experiment {key!r} is {row.status}: only {', '.join(sorted(editable))} may change, "
                    f"not {', '.join(frozen)}"
                )
            self._apply(row, {name: value for name, value in changes.items() if name in changed})
            self._check_cap(row, actor, override_cap, reason, coverage_changed="coverage" in changed)
            row.updated_at = utcnow()
            self._audit(session, actor, "experiment.update", svc, env, row, before)
            return self.info(row, service, env)

    def delete(self, actor: Actor, service: str, env: str, key: str) -> None:
        """Delete a draft; an experiment that has run stays, for its results and history."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            row = get_experiment_row(session, service, env, key)
            if row.status != ExperimentStatus.DRAFT:
                raise Conflict(f"cannot delete experiment {key!r}: it is {row.status} (only a draft can be deleted)")
            audit.record(
                session, actor, "experiment.delete", service=svc.name, target=_target(row, env), before=_snapshot(row)
            )
            session.delete(row)

    def start(
        self, actor: Actor, service: str, env: str, key: str, *, override_cap: bool = False, reason: str | None = None
    ) -> ExperimentInfo:
        """Start a draft: users in its coverage get variants. Above the cap it needs an override with a reason."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            row = get_experiment_row(session, service, env, key)
            before = _snapshot(row)
            if row.status == ExperimentStatus.DRAFT:
                self._check_cap(row, actor, override_cap, reason, coverage_changed=False)
            transition(row, ExperimentStatus.RUNNING, by=actor.team)
            self._audit(session, actor, "experiment.start", svc, env, row, before)
            return self.info(row, service, env)

    def stop(self, actor: Actor, service: str, env: str, key: str, *, reason: str = "") -> ExperimentInfo:
        """Stop a running experiment: everyone gets the control until a decision."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            row = get_experiment_row(session, service, env, key)
            before = _snapshot(row)
            transition(row, ExperimentStatus.STOPPED, by=actor.team, reason=check_text("reason", reason, REASON_MAX))
            self._audit(session, actor, "experiment.stop", svc, env, row, before)
            return self.info(row, service, env)

    def decide(
        self, actor: Actor, service: str, env: str, key: str, *, decision: str, variant: str | None, reason: str
    ) -> ExperimentInfo:
        """Record the decision on a running or stopped experiment: ship ``variant`` to everyone, or discard it."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            try:
                verdict = Decision(decision)
            except ValueError:
                raise Invalid(f"decision must be ship or discard, not {shown(decision, 20)}") from None
            if not reason.strip():
                raise Invalid("a decision needs a reason: say what the results showed")
            check_text("reason", reason, REASON_MAX)
            row = get_experiment_row(session, service, env, key)
            if verdict is Decision.SHIP and variant not in row.variants:
                names = ", ".join(row.variants)
                what = "ship needs the variant to ship" if variant is None else f"no variant {shown(variant)}"
                raise Invalid(f"{what}: use one of {names}")
            if verdict is Decision.DISCARD and variant is not None:
                raise Invalid("discard takes no variant: everyone gets the control")
            before = _snapshot(row)
            transition(row, ExperimentStatus.DECIDED, by=actor.team, reason=reason, decision=verdict, variant=variant)
            self._audit(session, actor, "experiment.decide", svc, env, row, before)
            return self.info(row, service, env)

    # Helpers ----------------------------------------------------------------------------

    def _check_cap(
        self, row: Experiment, actor: Actor, override_cap: bool, reason: str | None, *, coverage_changed: bool
    ) -> None:
        """Refuse a coverage above the cap unless overridden with a reason; record the override.

        An override holds for the coverage it was given with: a new coverage above the cap needs
        a new one, a coverage within the cap clears it (the audit log keeps its history).
        """
        if override_cap and not (reason or "").strip():
            raise Invalid("an override of the exposure cap needs a reason")
        if row.coverage <= self.cap:
            if coverage_changed:
                row.cap_override_by = row.cap_override_at = row.cap_override_reason = None
            return
        if override_cap:
            row.cap_override_by, row.cap_override_at = actor.team, utcnow()
            row.cap_override_reason = check_text("reason", (reason or "").strip(), REASON_MAX)
            return
        if row.cap_override_at is not None and not coverage_changed:
            return
        raise Invalid(
            f"coverage {row.coverage:g} is above the exposure cap {self.cap:g}: lower it, or pass "
            "override_cap with a reason to exceed the cap on purpose"
        )

    def _apply(self, row: Experiment, changes: Mapping[str, Any]) -> None:
        """Set the changed fields on ``row``, each checked; variants and weights are checked together."""
        if "hypothesis" in changes:
            row.hypothesis = check_text("hypothesis", _required(changes, "hypothesis"), HYPOTHESIS_MAX)
        if "variants" in changes:
            row.variants = check_variants(_required(changes, "variants"))
        if "variants" in changes or "weights" in changes:
            # No weights (or null) with new variants, or weights: null, means equal weights.
            row.weights = check_weights(changes.get("weights"), len(row.variants))
        if "coverage" in changes:
            row.coverage = check_share("coverage", _required(changes, "coverage"), allow_zero=False)
        if "metric" in changes:
            row.metric = check_label("metric", _required(changes, "metric"))
        if "metric_kind" in changes:
            row.metric_kind = _metric_kind(_required(changes, "metric_kind"))
        if "guardrails" in changes:
            row.guardrails = check_names("guardrail", changes["guardrails"] or [], GUARDRAILS_MAX)
        if "seed" in changes:
            row.seed = check_label("seed", changes["seed"]) if changes["seed"] is not None else None
        if "hash_version" in changes:
            row.hash_version = check_hash_version(_required(changes, "hash_version"))
        if "namespace" in changes:
            row.namespace = check_namespace(changes["namespace"])
        if "conditions" in changes:
            row.conditions = check_conditions("conditions", changes["conditions"] or {})
        for name in ANALYSIS & changes.keys():
            setattr(row, name, _flag(name, _required(changes, name)))

    def _audit(
        self, session: Session, actor: Actor, action: str, svc: Service, env: str, row: Experiment,
        before: dict[str, Any] | None,
    ) -> None:
        audit.record(
            session, actor, action, service=svc.name, target=_target(row, env), before=before, after=_snapshot(row)
        )


def _required(changes: Mapping[str, Any], name: str) -> Any:
    value = changes[name]
    if value is None:
        raise Invalid(f"{name} cannot be null")
    return value


def _differs(row: Experiment, name: str, value: Any) -> bool:
    """Whether an edit of ``name`` to ``value`` changes anything (so sending a field unchanged is no edit)."""
    current: Any = {
        "variants": row.variants, "weights": row.weights, "namespace": row.namespace, "seed": row.seed,
    }.get(name, getattr(row, name, None))
    if name == "weights" and value is None:
        return True
    if name in ("variants", "weights", "guardrails", "namespace") and value is not None and current is not None:
        return bool(list(value) != list(current))
    return bool(value != current)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{name} must be true or false")
    return value


def _metric_kind(kind: str) -> str:
    try:
        return MetricKind(kind).value
    except ValueError:
        raise Invalid(f"metric_kind must be binomial or numeric, not {shown(str(kind), 20)}") from None


def _target(row: Experiment, env: str) -> str:
    return f"experiment {env}/{row.key}"


def _snapshot(row: Experiment) -> dict[str, Any]:
    """What the audit log records of an experiment before and after a change."""
    snapshot: dict[str, Any] = _jsonable({
        "key": row.key, "status": row.status, "hypothesis": row.hypothesis, "variants": row.variants,
        "weights": row.weights, "coverage": row.coverage, "seed": row.seed, "hash_version": row.hash_version,
        "namespace": row.namespace, "conditions": row.conditions, "metric": row.metric,
        "metric_kind": row.metric_kind, "guardrails": row.guardrails, "cuped": row.cuped,
        "sequential": row.sequential,
        "cap_override": {"by": row.cap_override_by, "at": row.cap_override_at, "reason": row.cap_override_reason}
        if row.cap_override_at is not None else None,
        "stopped_by": row.stopped_by, "stop_reason": row.stop_reason, "decision": row.decision,
        "decided_variant": row.decided_variant, "decision_reason": row.decision_reason,
    })
    return snapshot
