"""Guardrail counts kept incrementally give the same numbers as aggregating every event, in any arrival order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from tests.experiments import test_events

from podium.catalog.auth import Actor
from podium.config import Settings
from podium.experiments.events import EventService
from podium.experiments.models import Experiment, MetricKind
from podium.experiments.results import aggregate
from podium.experiments.service import ExperimentService
from podium.experiments.tally import REBUILD_EVERY, Tally
from podium.store.db import Store

store, teams = test_events.store, test_events.teams  # fixtures: both stores, the teams

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
VARIANTS = ("control", "a", "b")
GUARDRAILS = ("error", "crash")


def full_counts(store: Store) -> tuple[list[int], dict[str, list[int]]]:
    with store.session() as session:
        experiment = session.scalar(select(Experiment))
        assert experiment is not None
        aggregates = aggregate(session, experiment, dict.fromkeys(GUARDRAILS, str(MetricKind.BINOMIAL)))
    groups = [aggregates.everyone(v) for v in VARIANTS]
    return [g.users for g in groups], {n: [g.metrics[n].converted for g in groups] for n in GUARDRAILS}


def random_events(rng: random.Random, count: int, start: int) -> list[dict[str, Any]]:
    """Exposures (some users to several variants, some late with earlier times) and guardrail events."""
    events: list[dict[str, Any]] = []
    for i in range(start, start + count):
        user = f"u{rng.randrange(120)}"
        at = (BASE + timedelta(minutes=rng.randrange(600))).isoformat()
        if rng.random() < 0.4:
            events.append({"id": f"e{i}", "type": "exposure", "user_id": user, "experiment": "guarded",
                           "variant": rng.choice([*VARIANTS, "unknown"]), "at": at})
        else:
            events.append({"id": f"e{i}", "type": "metric", "user_id": user,
                           "name": rng.choice([*GUARDRAILS, "signup"]), "at": at})
    return events


def test_an_incremental_tally_equals_the_full_aggregate_after_every_batch(
    store: Store, teams: dict[str, Actor]
) -> None:
    ExperimentService(Settings(), store).create(
        teams["admin"], "shop", "production", "guarded", metric="signup", variants=list(VARIANTS),
        guardrails=list(GUARDRAILS),
    )
    with store.session() as session:
        experiment = session.scalar(select(Experiment))
        assert experiment is not None
        tally = Tally.of(experiment)
    sender = EventService(store)
    rng = random.Random(4)  # noqa: S311 - a repeatable stream of test events
    sent = 0
    for _ in range(REBUILD_EVERY + 5):  # across a rebuild too
        batch = random_events(rng, rng.randrange(0, 60), sent)
        sent += len(batch)
        if batch:
            assert sender.record(teams["shop-team"], "shop", "production", batch).rejected == []
        with store.session() as session:
            tally.update(session)
        assert tally.counts() == full_counts(store)
    users, hits = tally.counts()
    assert sum(users) > 50
    assert all(sum(per_variant) > 0 for per_variant in hits.values())


def test_a_tally_follows_a_change_of_guardrails(store: Store, teams: dict[str, Actor]) -> None:
    service = ExperimentService(Settings(), store)
    service.create(teams["admin"], "shop", "production", "guarded", metric="signup", guardrails=["error"])
    with store.session() as session:
        experiment = session.scalar(select(Experiment))
        assert experiment is not None
        tally = Tally.of(experiment)
        assert tally.fits(experiment)
        experiment.guardrails = ["error", "crash"]
        assert not tally.fits(experiment)
