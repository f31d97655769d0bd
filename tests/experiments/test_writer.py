"""The server's event writer: batches from many threads written in groups, each answered exactly."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from tests.experiments import test_events
from tests.experiments.test_events import metric

from podium.catalog.auth import Actor
from podium.catalog.models import Environment
from podium.experiments.events import EventService, IngestResult, check_batch
from podium.experiments.models import ExperimentEvent
from podium.experiments.writer import EventWriter
from podium.store.db import Store

store, teams = test_events.store, test_events.teams  # fixtures: both stores, the teams


def count(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(ExperimentEvent)) or 0)


def test_concurrent_batches_are_stored_once_and_each_answer_is_exact(store: Store, teams: dict[str, Actor]) -> None:
    writer = EventWriter(store, queue_batches=4, group_max=8)  # a small queue: senders wait for room
    events = EventService(store, writer)
    answers: list[IngestResult] = []
    lock = threading.Lock()

    def sender(n: int) -> None:
        for round_ in range(5):
            # Every sender sends ids 0..49 of its round (shared with the others) and 50 of its own.
            batch = [metric(f"r{round_}-shared-{i}") for i in range(50)]
            batch += [metric(f"r{round_}-own-{n}-{i}") for i in range(50)]
            answer = events.record(teams["shop-team"], "shop", "production", batch)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events.close()
    assert count(store) == 5 * 50 + 6 * 5 * 50  # each shared id once, every own id
    assert sum(a.accepted for a in answers) == count(store)
    assert sum(a.duplicates for a in answers) == 5 * 5 * 50  # the five late senders of each round
    assert all(a.accepted + a.duplicates == 100 for a in answers)


def test_a_batch_that_cannot_be_stored_fails_alone(store: Store, teams: dict[str, Actor]) -> None:
    writer = EventWriter(store)
    with store.session() as session:  # the environment of service shop, production
        environment_id = session.scalars(select(Environment.id).where(Environment.name == "production")).first()
    assert environment_id is not None
    good = check_batch(environment_id, [metric(f"g{i}") for i in range(10)]).rows
    broken = [dict(good[0], event_id="bad", environment_id=None)]  # violates NOT NULL
    outcomes: dict[str, object] = {}

    def send(name: str, rows: list[dict[str, object]]) -> None:
        try:
            outcomes[name] = writer.write(rows)
        except Exception as exc:  # what the request would see
            outcomes[name] = exc

    threads = [threading.Thread(target=send, args=(name, rows)) for name, rows in (("good", good), ("bad", broken))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert outcomes["good"] == 10
    assert isinstance(outcomes["bad"], Exception)
    assert count(store) == 10


def test_after_close_batches_are_written_by_the_caller(store: Store, teams: dict[str, Actor]) -> None:
    events = EventService(store, EventWriter(store))
    first = events.record(teams["shop-team"], "shop", "production", [metric("a")])
    events.close()
    after = events.record(teams["shop-team"], "shop", "production", [metric("a"), metric("b")])
    assert (first.accepted, after.accepted, after.duplicates) == (1, 1, 1)
    assert count(store) == 2
