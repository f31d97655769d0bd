"""Event ingestion on both stores: each event checked, good ones kept, a batch sent twice stored once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from podium.catalog.auth import Actor, authenticate
from podium.catalog.service import CatalogService
from podium.config import Settings
from podium.errors import Forbidden, Invalid, NotFound, TooLarge
from podium.experiments.events import MAX_BATCH, EventService
from podium.experiments.models import ExperimentEvent
from podium.store.db import Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store: a fresh SQLite file, or a fresh database on the test PostgreSQL cluster."""
    if request.param == "sqlite":
        opened = Store(Settings(data_dir=tmp_path).store_url)
        opened.migrate()
        yield opened
        opened.dispose()
        return
    superuser_url: str = request.getfixturevalue("postgres_url")
    name = f"podium_{uuid.uuid4().hex[:12]}"
    admin = create_engine(superuser_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        opened = Store(make_url(superuser_url).set(database=name).render_as_string(hide_password=False))
        opened.migrate()
        yield opened
        opened.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def teams(store: Store) -> dict[str, Actor]:
    """The platform team, ``shop-team`` owning service ``shop``, and ``other`` owning nothing."""
    catalog = CatalogService(store)
    token = catalog.bootstrap_admin()
    with store.session() as session:
        admin = authenticate(session, token)
    actors = {"admin": admin}
    for name in ("shop-team", "other"):
        catalog.create_team(admin, name)
        _, secret = catalog.create_token(admin, name)
        with store.session() as session:
            actors[name] = authenticate(session, secret)
    catalog.create_service(admin, "shop", "shop-team", "", "production")
    return actors


def stored(store: Store) -> list[tuple[str, str, str, str | None, str | None, float]]:
    with store.session() as session:
        rows = session.execute(
            select(ExperimentEvent.event_id, ExperimentEvent.type, ExperimentEvent.user_id,
                   ExperimentEvent.variant, ExperimentEvent.name, ExperimentEvent.value)
            .order_by(ExperimentEvent.event_id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def exposure(event_id: str, user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"id": event_id, "type": "exposure", "user_id": user, "experiment": "big-button",
            "variant": "treatment", **extra}


def metric(event_id: str, user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"id": event_id, "type": "metric", "user_id": user, "name": "signup", **extra}


def test_a_batch_sent_twice_is_stored_once(store: Store, teams: dict[str, Actor]) -> None:
    events = EventService(store)
    batch = [exposure("e1", attributes={"profession": "marketing", "age": 31, "beta": True}),
             metric("e2", value=2.5, at="2026-12-03T10:00:00Z")]
    first = events.record(teams["shop-team"], "shop", "production", batch)
    assert (first.accepted, first.duplicates, first.rejected) == (2, 0, [])
    again = events.record(teams["shop-team"], "shop", "production", batch)
    assert (again.accepted, again.duplicates) == (0, 2)
    # The same id in the other environment is another event.
    elsewhere = events.record(teams["shop-team"], "shop", "staging", batch[:1])
    assert (elsewhere.accepted, elsewhere.duplicates) == (1, 0)
    assert stored(store) == [
        ("e1", "exposure", "u1", "treatment", None, 1.0),
        ("e1", "exposure", "u1", "treatment", None, 1.0),
        ("e2", "metric", "u1", None, "signup", 2.5),
    ]
    with store.session() as session:
        row = session.scalar(select(ExperimentEvent).where(ExperimentEvent.event_id == "e2"))
        assert row is not None
        assert row.at == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_an_id_repeated_within_a_batch_and_a_partly_new_batch(store: Store, teams: dict[str, Actor]) -> None:
    events = EventService(store)
    events.record(teams["shop-team"], "shop", "production", [metric("a"), metric("b")])
    result = events.record(teams["shop-team"], "shop", "production",
                           [metric("b"), metric("c"), metric("c", value=9.0), metric("d")])
    assert (result.accepted, result.duplicates) == (2, 2)
    assert [row[0] for row in stored(store)] == ["a", "b", "c", "d"]
    assert stored(store)[2][-1] == 1.0  # the first of the repeated ids is the one kept


BAD: list[tuple[Any, str]] = [
    ("not an object", "an event must be an object"),
    ({"type": "metric", "user_id": "u", "name": "x"}, "id must be a non-empty string"),
    (metric("x" * 65), "id is longer than 64 characters"),
    ({"id": "t", "type": "click", "user_id": "u"}, "type must be 'exposure' or 'metric'"),
    (metric("u", user=""), "user_id must be a non-empty string"),
    (metric("u2", user="x" * 201), "user_id is longer than 200 characters"),
    ({"id": "x1", "type": "exposure", "user_id": "u", "variant": "a"}, "experiment must be a non-empty string"),
    ({"id": "x2", "type": "exposure", "user_id": "u", "experiment": "a"}, "variant must be a non-empty string"),
    ({"id": "m1", "type": "metric", "user_id": "u"}, "name must be a non-empty string"),
    (metric("v1", value="3"), "value must be a number"),
    (metric("v2", value=True), "value must be a number"),
    (metric("v3", value=float("inf")), "value must be finite"),
    (metric("t1", at="yesterday"), "is not an ISO-8601 timestamp"),
    (metric("t2", at="2026-12-03T10:00:00"), "has no timezone"),
    (metric("t3", at="2999-01-01T00:00:00Z"), "ahead of the server's clock"),
    (metric("t4", at=17), "at must be an ISO-8601 timestamp string"),
    (metric("a1", attributes=["x"]), "attributes must be an object"),
    (metric("a2", attributes={"nested": {"a": 1}}), "attribute 'nested' must be a string, a number or a boolean"),
    (metric("a3", attributes={"s": "x" * 501}), "at most 500 characters"),
    (metric("n1", user="a\x00b"), "user_id contains a NUL character"),
]


def test_bad_events_are_rejected_by_index_and_the_good_ones_kept(store: Store, teams: dict[str, Actor]) -> None:
    batch: list[Any] = [metric("good-0")]
    for event, _ in BAD:
        batch += [event, metric(f"good-{len(batch)}")]
    result = EventService(store).record(teams["shop-team"], "shop", "production", batch)
    assert result.accepted == len(BAD) + 1
    assert result.duplicates == 0
    assert [r.index for r in result.rejected] == [2 * i + 1 for i in range(len(BAD))]
    for rejected, (_, reason) in zip(result.rejected, BAD, strict=True):
        assert reason in rejected.reason
    assert len(stored(store)) == len(BAD) + 1
    assert all(row[0].startswith("good-") for row in stored(store))


def test_a_time_slightly_ahead_is_kept_and_a_missing_time_is_now(store: Store, teams: dict[str, Actor]) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    before = datetime.now(UTC)
    result = EventService(store).record(teams["shop-team"], "shop", "production",
                                        [metric("soon", at=soon), metric("now")])
    assert result.accepted == 2
    with store.session() as session:
        at = session.scalar(select(ExperimentEvent.at).where(ExperimentEvent.event_id == "now"))
    assert at is not None
    assert before <= at <= datetime.now(UTC)


def test_a_bad_envelope_refuses_the_whole_batch(store: Store, teams: dict[str, Actor]) -> None:
    events = EventService(store)
    with pytest.raises(TooLarge, match="at most 10,000 events"):
        events.record(teams["shop-team"], "shop", "production", [metric(f"e{i}") for i in range(MAX_BATCH + 1)])
    with pytest.raises(NotFound, match="service 'nope' not found"):
        events.record(teams["shop-team"], "nope", "production", [metric("e")])
    with pytest.raises(Invalid, match="env must be one of staging, production"):
        events.record(teams["shop-team"], "shop", "qa", [metric("e")])
    with pytest.raises(Forbidden, match="team 'other' may not change service 'shop'"):
        events.record(teams["other"], "shop", "production", [metric("e")])
    assert stored(store) == []


def test_a_full_batch_goes_in_at_once(store: Store, teams: dict[str, Actor]) -> None:
    batch = [exposure(f"x{i}", user=f"u{i}") if i % 5 == 0 else metric(f"m{i}", user=f"u{i}")
             for i in range(MAX_BATCH)]
    events = EventService(store)
    assert events.record(teams["shop-team"], "shop", "production", batch).accepted == MAX_BATCH
    again = events.record(teams["shop-team"], "shop", "production", [*batch[:5000], metric("new")])
    assert (again.accepted, again.duplicates) == (1, 5000)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(ExperimentEvent)) == MAX_BATCH + 1


def test_events_read_back_exactly_as_sent(store: Store, teams: dict[str, Actor]) -> None:
    """The store's fast insert writes what SQLAlchemy reads back: UTC times to the microsecond, attributes, none."""
    at = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    batch = [
        {"id": "a", "type": "exposure", "user_id": "u1", "experiment": "e", "variant": "control",
         "attributes": {"plan": "pro", "seats": 3, "trial": False}, "at": "2026-03-01T11:00:00.123456+01:00"},
        {"id": "b", "type": "metric", "user_id": "u1", "name": "revenue", "value": 12.5,
         "at": "2026-03-01T10:00:00Z"},
    ]  # fmt: skip
    assert EventService(store).record(teams["shop-team"], "shop", "production", batch).accepted == 2
    with store.session() as session:
        rows = {row.event_id: row for row in session.scalars(select(ExperimentEvent))}
        exposure, metric = rows["a"], rows["b"]
        assert exposure.at == at
        assert metric.at == at.replace(microsecond=0)
        assert exposure.attributes == {"plan": "pro", "seats": 3, "trial": False}
        assert metric.attributes is None
        assert (metric.value, metric.name, metric.experiment) == (12.5, "revenue", None)
        assert exposure.received_at.tzinfo is not None
        newest = session.scalar(select(ExperimentEvent).order_by(ExperimentEvent.at.desc()).limit(1))
        assert newest is not None
        assert newest.event_id == "a"
