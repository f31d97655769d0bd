"""Guardrail counts kept up to date from the events stored since the last look, not recomputed.

What a guardrail needs of a running experiment is, per variant, how many users were exposed
(counted in the variant of their first exposure) and how many of them had at least one event
of each guardrail metric at or after that first exposure: the same numbers as
``results.aggregate`` (tested against it). A ``Tally`` keeps each exposed user's first
exposure and the guardrail metrics they hit, and each round reads only the event rows stored
after the highest id it has seen:

- a new exposure of a user not seen yet, or earlier than their first one, makes them *dirty*:
  their guardrail events stored before are read again (a handful of index lookups), since
  they may count from the new first exposure on;
- a new guardrail event counts when its user is exposed and it is at or after their first
  exposure; one of a user not exposed yet is left for the exposure that may come later (that
  makes the user dirty, and the read finds it). The first update reads every event once.

On PostgreSQL a transaction may commit rows with lower ids after rows with higher ones were
read, so there every ``REBUILD_EVERY`` rounds the tally is rebuilt from all the events (on
SQLite, one writer at a time, ids become visible in order).

The reads name only columns of the covering indexes (only exposures have an experiment,
only metric events a name; the row id is in every index), so SQLite never visits the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from podium.experiments.models import Experiment, ExperimentEvent

REBUILD_EVERY = 30
"""Rounds between two full rebuilds of a tally (what a late-committed row can be missed for, at most)."""

_CHUNK = 500  # users per lookup of their guardrail events


@dataclass(slots=True)
class _User:
    at: datetime  # first exposure
    order: int  # its row id: the first stored wins a tie
    variant: int
    hits: int = 0  # bit i: had guardrail metric i at or after ``at``


@dataclass
class Tally:
    """One running experiment's guardrail counts, brought up to date by ``update``."""

    experiment_id: int
    environment_id: int
    key: str
    variants: tuple[str, ...]
    metrics: tuple[str, ...]
    seen: int = 0  # the highest event row id read
    rounds: int = 0
    users: dict[str, _User] = field(default_factory=dict)

    @classmethod
    def of(cls, experiment: Experiment) -> Tally:
        names = tuple(g for g in experiment.guardrails if isinstance(g, str))
        return cls(experiment.id, experiment.environment_id, experiment.key, tuple(experiment.variants), names)

    def fits(self, experiment: Experiment) -> bool:
        """Whether this tally still counts ``experiment`` as it is now (same variants and guardrails)."""
        names = tuple(g for g in experiment.guardrails if isinstance(g, str))
        return (self.variants, self.metrics) == (tuple(experiment.variants), names)

    def update(self, session: Session) -> None:
        """Read the event rows stored since the last update (all of them on the first, and every so often)."""
        self.rounds += 1
        # SQLite has one writer at a time, so row ids become visible in order: no rebuild needed there.
        if self.rounds % REBUILD_EVERY == 0 and session.get_bind().dialect.name != "sqlite":
            self.users, self.seen = {}, 0
        top = session.scalar(select(func.max(ExperimentEvent.id))) or 0
        if top <= self.seen:
            return
        e = ExperimentEvent
        # After the first update the window is a few new rows: the columns are wrapped so that
        # the planner walks the row ids from ``seen`` on instead of every row of the environment.
        later = self.seen > 0
        environment = (e.environment_id + 0) if later else e.environment_id
        window = (environment == self.environment_id, e.id > self.seen, e.id <= top)
        experiment = func.coalesce(e.experiment, "") if later else e.experiment
        index = {name: i for i, name in enumerate(self.variants)}
        dirty: set[str] = set()
        exposures = session.execute(
            select(e.user_id, e.at, e.id, e.variant)
            .where(*window, experiment == self.key, e.variant.in_(self.variants))
        )
        for user_id, at, row_id, variant in exposures:
            known = self.users.get(user_id)
            if known is None or (at, row_id) < (known.at, known.order):
                self.users[user_id] = _User(at, row_id, index[str(variant)])
                dirty.add(user_id)
        if self.metrics:
            if self.seen:  # events stored before this window may count from a new first exposure
                ordered = sorted(dirty)
                for start in range(0, len(ordered), _CHUNK):
                    chunk = ordered[start:start + _CHUNK]
                    for user_id in chunk:
                        self.users[user_id].hits = 0
                    self._hits(session, e.id <= self.seen, e.user_id.in_(chunk))
            self._hits(session, *window[1:], by_id=later)
        self.seen = top

    def _hits(self, session: Session, *where: ColumnElement[bool], by_id: bool = False) -> None:
        """Mark the users with a guardrail event at or after their first exposure, among the rows ``where`` picks.

        A user had one exactly when their latest such event is at or after it: one GROUP BY per
        metric over the covering index, a row per user back.
        """
        e = ExperimentEvent
        environment = (e.environment_id + 0) if by_id else e.environment_id
        metric = func.coalesce(e.name, "") if by_id else e.name
        for bit, name in enumerate(self.metrics):
            rows = session.execute(
                select(e.user_id, func.max(e.at))
                .where(environment == self.environment_id, metric == name, *where)
                .group_by(e.user_id)
            )
            for user_id, latest in rows:
                user = self.users.get(user_id)
                if user is not None and latest >= user.at:
                    user.hits |= 1 << bit

    def counts(self) -> tuple[list[int], dict[str, list[int]]]:
        """Users per variant, and per guardrail metric the users per variant who had one."""
        users = [0] * len(self.variants)
        hits = {name: [0] * len(self.variants) for name in self.metrics}
        masks = [(name, 1 << i) for i, name in enumerate(self.metrics)]
        for user in self.users.values():
            users[user.variant] += 1
            if user.hits:
                for name, mask in masks:
                    if user.hits & mask:
                        hits[name][user.variant] += 1
        return users, hits
