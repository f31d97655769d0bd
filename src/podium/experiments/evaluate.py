"""Answers from a definitions document: which variant a user gets, what a flag is for them.

The document is what ``GET /services/{S}/environments/{E}/definitions`` returns (see
docs/experiments.md, "Definitions"). The SDK and the evaluate endpoint both answer
through ``Evaluator``, so an app and the platform never disagree. Standard library only:
the application SDK imports it.

Rules, per experiment: ``force`` set (stopped or decided) → that variant for everyone, no
exposure; running → the user must satisfy ``conditions`` and then is assigned as GrowthBook
would (``CompiledExperiment``), with an exposure to log when a variant comes out; any other
status, or an unknown key → None. Conditions see the user's attributes plus ``id`` (the
user id) unless the attributes name their own ``id``.

Per flag: disabled → ``default_value``; the first rule whose condition matches → its
``value``; else ``value`` when ``hash(key, user_id, 2) < rollout``, else ``default_value``.
An unknown flag → the caller's default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from podium.experiments import conditions
from podium.experiments.assign import CompiledExperiment, hash

RUNNING = "running"


class Assignment(NamedTuple):
    """A user's variant of one experiment (None: not in it) and whether to log an exposure."""

    variant: str | None
    exposure: bool


NOT_IN = Assignment(None, False)


class FlagAnswer(NamedTuple):
    """A flag's value for a user and why: ``disabled``, ``rule`` (a rule matched), ``rollout``
    (the user is in the rollout) or ``default`` (outside it)."""

    value: Any
    reason: str


@dataclass(frozen=True, slots=True)
class _Experiment:
    key: str
    status: str
    variants: tuple[str, ...]
    conditions: Mapping[str, Any]
    force: str | None
    compiled: CompiledExperiment


@dataclass(frozen=True, slots=True)
class _Flag:
    key: str
    enabled: bool
    value: Any
    default_value: Any
    rollout: float
    rules: tuple[tuple[Mapping[str, Any], Any], ...]


def _experiment(entry: Mapping[str, Any]) -> _Experiment:
    key = str(entry["key"])
    variants = tuple(str(v) for v in entry["variants"])
    weights = entry.get("weights")
    namespace = entry.get("namespace")
    force = entry.get("force")
    return _Experiment(
        key=key,
        status=str(entry.get("status", "")),
        variants=variants,
        conditions=dict(entry.get("conditions") or {}),
        force=None if force is None else str(force),
        compiled=CompiledExperiment(
            key,
            variants,
            None if weights is None else [float(w) for w in weights],
            float(entry.get("coverage", 1.0)),
            entry.get("seed") or None,
            int(entry.get("hash_version", 2)),
            None if not namespace else (str(namespace[0]), float(namespace[1]), float(namespace[2])),
        ),
    )


def _flag(entry: Mapping[str, Any]) -> _Flag:
    return _Flag(
        key=str(entry["key"]),
        enabled=bool(entry.get("enabled", False)),
        value=entry.get("value", True),
        default_value=entry.get("default_value", False),
        rollout=float(entry.get("rollout", 1.0)),
        rules=tuple((dict(rule.get("condition") or {}), rule.get("value")) for rule in entry.get("rules") or ()),
    )


def _with_id(user_id: str, attributes: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if attributes is None:
        return {"id": user_id}
    if "id" in attributes:
        return attributes
    return {"id": user_id, **attributes}


class Evaluator:
    """Local answers over one definitions document; every experiment compiled once.

    Entries that are not well formed are left out (an app asking for them gets None or its
    default), so a bad document never raises into an app.
    """

    def __init__(self, document: Mapping[str, Any] | None) -> None:
        document = document or {}
        self.service: str | None = document.get("service")
        self.env: str | None = document.get("env")
        self._experiments: dict[str, _Experiment] = {}
        # Running experiments without conditions: a variant is the compiled assignment alone.
        self.direct: dict[str, Callable[[str], str | None]] = {}
        self._flags: dict[str, _Flag] = {}
        groups = document.get("savedGroups", document.get("saved_groups"))
        # Saved groups by id, for $inGroup / $notInGroup (GrowthBook's ``savedGroups``).
        self._groups: dict[str, list[Any]] = (
            {str(k): v for k, v in groups.items() if isinstance(v, list)} if isinstance(groups, dict) else {}
        )
        for entry in document.get("experiments") or ():
            try:
                compiled = _experiment(entry)
            except (KeyError, TypeError, ValueError, IndexError):
                continue
            self._experiments[compiled.key] = compiled
            if compiled.force is None and compiled.status == RUNNING and not compiled.conditions:
                self.direct[compiled.key] = compiled.compiled.assign
        for entry in document.get("flags") or ():
            try:
                flag = _flag(entry)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            self._flags[flag.key] = flag

    def experiments(self) -> list[str]:
        """The keys of the experiments in the document (drafts are never in it)."""
        return list(self._experiments)

    def flags(self) -> list[str]:
        """The keys of the flags in the document."""
        return list(self._flags)

    def assignment(self, key: str, user_id: str, attributes: Mapping[str, Any] | None = None) -> Assignment:
        """The user's variant of experiment ``key`` and whether an exposure should be logged for it."""
        experiment = self._experiments.get(key)
        if experiment is None:
            return NOT_IN
        if experiment.force is not None:
            return Assignment(experiment.force, False)
        if experiment.status != RUNNING:
            return NOT_IN
        if experiment.conditions and not conditions.matches(
            experiment.conditions, _with_id(user_id, attributes), self._groups
        ):
            return NOT_IN
        variant = experiment.compiled.assign(user_id)
        return Assignment(variant, variant is not None)

    def variant(self, key: str, user_id: str, attributes: Mapping[str, Any] | None = None) -> str | None:
        """The user's variant of experiment ``key``, or None when they are not in it."""
        return self.assignment(key, user_id, attributes).variant

    def exposure_needed(self, key: str) -> bool:
        """Whether a variant given for ``key`` is an exposure worth logging (the experiment runs)."""
        experiment = self._experiments.get(key)
        return experiment is not None and experiment.force is None and experiment.status == RUNNING

    def variants(self, user_id: str, attributes: Mapping[str, Any] | None = None) -> dict[str, str | None]:
        """Every experiment's variant for the user (what the evaluate endpoint returns)."""
        return {key: self.variant(key, user_id, attributes) for key in self._experiments}

    def flag(self, key: str, user_id: str, attributes: Mapping[str, Any] | None = None, default: Any = None) -> Any:
        """The flag's value for the user; ``default`` when the document has no flag ``key``."""
        answer = self.flag_answer(key, user_id, attributes)
        return default if answer is None else answer.value

    def flag_answer(self, key: str, user_id: str, attributes: Mapping[str, Any] | None = None) -> FlagAnswer | None:
        """The flag's value for the user and the reason for it; None when there is no flag ``key``."""
        flag = self._flags.get(key)
        if flag is None:
            return None
        if not flag.enabled:
            return FlagAnswer(flag.default_value, "disabled")
        if flag.rules:
            seen = _with_id(user_id, attributes)
            for condition, value in flag.rules:
                if conditions.matches(condition, seen, self._groups):
                    return FlagAnswer(value, "rule")
        n = hash(flag.key, user_id, 2)
        if n is not None and n < flag.rollout:
            return FlagAnswer(flag.value, "rollout")
        return FlagAnswer(flag.default_value, "default")

    def has_flag(self, key: str) -> bool:
        return key in self._flags

    def has_experiment(self, key: str) -> bool:
        return key in self._experiments
