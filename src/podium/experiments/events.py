"""Event ingestion: the exposures and metric values apps send, checked one by one, stored once.

A batch is one envelope (service, environment, up to ``MAX_BATCH`` events). A bad envelope
refuses the whole batch; a bad event is rejected by its index with a reason and the good
ones are kept. The sender's ``id`` makes sending idempotent: an event whose id is already
stored in that service environment (or repeats earlier in the batch) is a duplicate, counted
and not stored again. The good events go in with one ``INSERT … ON CONFLICT DO NOTHING``
executed for the whole batch, so a batch costs one round trip to the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from podium.catalog.auth import Actor
from podium.catalog.models import ENVIRONMENTS, Environment, Right, Service
from podium.catalog.service import authorize, get_environment, get_service
from podium.errors import Invalid, TooLarge
from podium.experiments.models import EventType, ExperimentEvent
from podium.store.db import Store, utcnow

if TYPE_CHECKING:
    from podium.experiments.writer import EventWriter

MAX_BATCH = 10_000
"""Events in one batch at most; more refuses the whole batch."""

FUTURE_SKEW = timedelta(days=1)
"""An event may claim a time at most this far ahead of the server's clock (clocks drift; days do not)."""

ID_MAX = 64
USER_MAX = 200
NAME_MAX = 100  # experiment, variant and metric names (the columns' lengths)
ATTRIBUTES_MAX = 50  # keys per event
ATTRIBUTE_KEY_MAX = 100
ATTRIBUTE_VALUE_MAX = 500

EVENTS: Table = cast(Table, ExperimentEvent.__table__)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event left out of a batch: its position in the batch and why."""

    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of a batch: stored, already stored (or repeated in it), rejected."""

    accepted: int
    duplicates: int
    rejected: list[Rejected] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [{"index": r.index, "reason": r.reason} for r in self.rejected],
        }


class BadEvent(ValueError):
    """One event of a batch is malformed; the message is the reason given back to the sender."""


def _text(event: Mapping[str, Any], key: str, longest: int) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise BadEvent(f"{key} must be a non-empty string")
    if len(value) > longest:
        raise BadEvent(f"{key} is longer than {longest} characters")
    if "\x00" in value:
        raise BadEvent(f"{key} contains a NUL character")
    return value


@lru_cache(maxsize=4096)
def _parse_at(raw: str) -> datetime:
    """An ISO-8601 time with a timezone, in UTC (SDKs send many events with the same time)."""
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise BadEvent(f"at {raw[:40]!r} is not an ISO-8601 timestamp") from None
    if at.tzinfo is None:
        raise BadEvent(f"at {raw[:40]!r} has no timezone: add Z or +00:00")
    return at.astimezone(UTC)


def _at(event: Mapping[str, Any], now: datetime) -> datetime:
    raw = event.get("at")
    if raw is None:
        return now
    if not isinstance(raw, str):
        raise BadEvent("at must be an ISO-8601 timestamp string with a timezone")
    at = _parse_at(raw)
    if at > now + FUTURE_SKEW:
        raise BadEvent(f"at {raw[:40]!r} is more than {FUTURE_SKEW.days} day ahead of the server's clock")
    return at


def _value(event: Mapping[str, Any]) -> float:
    raw = event.get("value", 1.0)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise BadEvent("value must be a number")
    value = float(raw)
    if not math.isfinite(value):
        raise BadEvent("value must be finite")
    return value


def _attributes(event: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = event.get("attributes")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadEvent("attributes must be an object")
    if len(raw) > ATTRIBUTES_MAX:
        raise BadEvent(f"attributes has more than {ATTRIBUTES_MAX} keys")
    for key, value in raw.items():
        if not key or len(key) > ATTRIBUTE_KEY_MAX or "\x00" in key:
            raise BadEvent(f"attribute names must be 1 to {ATTRIBUTE_KEY_MAX} characters")
        if isinstance(value, str):
            if len(value) > ATTRIBUTE_VALUE_MAX or "\x00" in value:
                raise BadEvent(f"attribute {key!r}: a string value is at most {ATTRIBUTE_VALUE_MAX} characters")
        elif isinstance(value, float) and not math.isfinite(value):
            raise BadEvent(f"attribute {key!r} must be finite")
        elif not isinstance(value, (bool, int, float)):
            raise BadEvent(f"attribute {key!r} must be a string, a number or a boolean")
    return raw


def parse_event(raw: object, environment_id: int, now: datetime) -> dict[str, Any]:
    """One event as a row of ``experiment_events``, or BadEvent with the reason."""
    if not isinstance(raw, dict):
        raise BadEvent("an event must be an object")
    event_id = _text(raw, "id", ID_MAX)
    kind = raw.get("type")
    user_id = _text(raw, "user_id", USER_MAX)
    experiment = variant = name = None
    if kind == EventType.EXPOSURE:
        experiment = _text(raw, "experiment", NAME_MAX)
        variant = _text(raw, "variant", NAME_MAX)
    elif kind == EventType.METRIC:
        name = _text(raw, "name", NAME_MAX)
    else:
        raise BadEvent("type must be 'exposure' or 'metric'")
    return {
        "environment_id": environment_id,
        "event_id": event_id,
        "type": kind,
        "user_id": user_id,
        "experiment": experiment,
        "variant": variant,
        "name": name,
        "value": _value(raw),
        "attributes": _attributes(raw),
        "at": _at(raw, now),
        "received_at": now,
    }


def insert_ignoring_duplicates(session: Session) -> Insert:
    """``INSERT INTO experiment_events … ON CONFLICT (environment_id, event_id) DO NOTHING`` for this store."""
    conflict = [EVENTS.c.environment_id, EVENTS.c.event_id]
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(EVENTS).on_conflict_do_nothing(index_elements=conflict)
    return sqlite.insert(EVENTS).on_conflict_do_nothing(index_elements=conflict)


@dataclass(slots=True)
class CheckedBatch:
    """A batch after its checks: the rows to store, the events rejected, the ids it repeated."""

    rows: list[dict[str, Any]]
    rejected: list[Rejected]
    repeated: int

    def result(self, stored: int) -> IngestResult:
        """What became of the batch once ``stored`` of its rows went in (the others were stored before)."""
        return IngestResult(accepted=stored, duplicates=self.repeated + len(self.rows) - stored,
                            rejected=self.rejected)


def check_batch(environment_id: int, events: Sequence[object], now: datetime | None = None) -> CheckedBatch:
    """Check each event of a batch: rows for the good ones (each id once), the bad ones with a reason."""
    if len(events) > MAX_BATCH:
        raise TooLarge(f"a batch holds at most {MAX_BATCH:,} events, this one has {len(events):,}: split it")
    moment = now or utcnow()
    rows: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    repeated = 0
    for index, raw in enumerate(events):
        try:
            row = parse_event(raw, environment_id, moment)
        except BadEvent as exc:
            rejected.append(Rejected(index, str(exc)))
            continue
        if row["event_id"] in seen:
            repeated += 1
            continue
        seen.add(row["event_id"])
        rows.append(row)
    return CheckedBatch(rows, rejected, repeated)


def insert_rows(session: Session, rows: list[dict[str, Any]]) -> int:
    """Store checked rows, leaving out those whose id the environment has already; how many went in."""
    if not rows:
        return 0
    if session.get_bind().dialect.name == "sqlite":
        return _insert_sqlite(session, rows)
    # RETURNING counts what went in on every driver (executemany's rowcount is -1 on psycopg);
    # SQLAlchemy sends the rows as multi-row VALUES statements, a few per batch.
    return len(session.execute(insert_ignoring_duplicates(session).returning(EVENTS.c.id), rows).all())


def ingest(
    session: Session, environment_id: int, events: Sequence[object], now: datetime | None = None
) -> IngestResult:
    """Check each event, and store the good ones of the environment not stored before."""
    checked = check_batch(environment_id, events, now)
    return checked.result(insert_rows(session, checked.rows))


_COLUMNS = ("environment_id", "event_id", "type", "user_id", "experiment", "variant", "name", "value",
            "attributes", "at", "received_at")
# Built from the table's own constant names; every value is bound.
_SQLITE_INSERT = (
    f"INSERT INTO {EVENTS.name} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "  # noqa: S608
    "ON CONFLICT (environment_id, event_id) DO NOTHING"
)


def _insert_sqlite(session: Session, rows: list[dict[str, Any]]) -> int:
    """The rows in one ``executemany`` on the session's own SQLite connection; how many went in.

    Values are written as SQLAlchemy writes them on SQLite (times as ``YYYY-MM-DD
    HH:MM:SS.ffffff`` in UTC, attributes as JSON text, ``null`` for none), so rows read back
    the same; ``total_changes`` counts the rows the conflict clause let in. It skips
    SQLAlchemy's statement building and type processing per row, most of an ingest's time.
    """
    times: dict[datetime, str] = {}

    def stamp(moment: datetime) -> str:
        text = times.get(moment)
        if text is None:
            text = times[moment] = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return text

    dumps = json.dumps
    values = [
        (row["environment_id"], row["event_id"], row["type"], row["user_id"], row["experiment"], row["variant"],
         row["name"], row["value"], "null" if row["attributes"] is None else dumps(row["attributes"]),
         stamp(row["at"]), stamp(row["received_at"]))
        for row in rows
    ]
    raw = session.connection().connection.driver_connection
    assert raw is not None
    before = raw.total_changes
    raw.executemany(_SQLITE_INSERT, values)
    return int(raw.total_changes - before)


def may_send_events(session: Session, actor: Actor, service: Service) -> None:
    """Forbidden unless ``actor`` may send events for ``service``: a team that may change its config.

    The environment's app token is accepted by the route before it gets here.
    """
    authorize(session, actor, service, Right.CONFIG)


def resolve_environment(session: Session, service_name: str, env: str) -> tuple[Service, Environment]:
    """The service and its environment named in an envelope; Invalid or NotFound otherwise."""
    if env not in ENVIRONMENTS:
        raise Invalid(f"env must be one of {', '.join(ENVIRONMENTS)}, not {env[:40]!r}")
    service = get_service(session, service_name)
    return service, get_environment(session, service, env)


class EventService:
    """Takes event batches into the store.

    With ``writer`` (the server's), checked rows go through its queue and are written in groups
    (``podium.experiments.writer``); without it, each batch is written in the caller's transaction.
    """

    def __init__(self, store: Store, writer: EventWriter | None = None) -> None:
        self.store = store
        self.writer = writer

    def record(self, actor: Actor, service: str, env: str, events: Sequence[object]) -> IngestResult:
        """Store a batch sent by a team: it must be allowed to change the service's config."""
        with self.store.session() as session:
            found, environment = resolve_environment(session, service, env)
            may_send_events(session, actor, found)
            if self.writer is None:
                return ingest(session, environment.id, events)
            environment_id = environment.id
        return self._write(environment_id, events)

    def record_for_environment(self, environment_id: int, events: Sequence[object]) -> IngestResult:
        """Store a batch sent with an app token, which is scoped to this environment already."""
        if self.writer is None:
            with self.store.session() as session:
                return ingest(session, environment_id, events)
        return self._write(environment_id, events)

    def _write(self, environment_id: int, events: Sequence[object]) -> IngestResult:
        assert self.writer is not None
        checked = check_batch(environment_id, events)  # in the request's own thread
        return checked.result(self.writer.write(checked.rows) if checked.rows else 0)

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        if self.writer is not None:
            self.writer.close()
