"""The meters: what each one reads, and how it writes usage records.

Every meter is restart-safe: it reads what happened from the store (releases, storage
samples) or the disk (log sizes) and keeps a cursor in the store, so a tick after a
restart picks up where the last one stopped. A record never crosses midnight UTC; a
meter extends its stream's record of the day instead of writing a new one each tick.

- process-seconds: while a release is live, each slot of its formation runs. A release
  is live from its ``live_at`` until the next release of its environment goes live; each
  tick records the seconds since the last one, per process type and size (app.json's
  ``formation.<type>.size``, ``standard`` when it names none). Times are cut to the second.
- storage byte-hours: the add-ons' ``addon_storage_samples(addon_id, at, bytes)``, each
  sample's size held until the next sample (skipped while those tables do not exist).
- API requests: counted in memory per team, service, environment and hour by the API's
  middleware, and added to that hour's record at each tick.
- log bytes: growth of the environment's log files, followed by inode so a rotation
  (``x.log`` → ``x.log.1``) is not counted twice.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, Table, func, inspect, select
from sqlalchemy.orm import Session

from podium.billing.models import Meter, MeterCursor, ReleaseMeter, UsageRecord
from podium.catalog.models import Environment, Service, Team
from podium.deploy.models import Artifact, Release, ReleaseStatus
from podium.store.db import UTCDateTime, utcnow

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
DEFAULT_SIZE = "standard"
STORAGE_SAMPLES = "addon_storage_samples"
ADDONS = "addons"
HOUR_IN_MICROSECONDS = Decimal(3_600_000_000)


def floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def ceil_second(moment: datetime) -> datetime:
    """The second after ``moment``, unless it falls on a whole second."""
    return floor_second(moment) + timedelta(seconds=1) if moment.microsecond else moment


def midnight(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def by_day(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at each midnight UTC it crosses."""
    pieces = []
    while start < end:
        cut = min(midnight(start) + DAY, end)
        pieces.append((start, cut))
        start = cut
    return pieces


@dataclass(frozen=True)
class Owner:
    """Whose usage a stream is: the team owning the service at the time, and where it ran."""

    team: str
    service: str
    environment: str


def append_usage(
    session: Session, source: str, owner: Owner, meter: Meter, start: datetime, end: datetime,
    quantity: Decimal, *, process_type: str = "", size: str = "",
) -> None:
    """Add usage to ``source``'s record of that day (same team and size), or write a new record.

    ``[start, end)`` must lie within one UTC day (see ``by_day``).
    """
    last = session.scalar(
        select(UsageRecord).where(UsageRecord.source == source).order_by(UsageRecord.end.desc()).limit(1)
    )
    if (
        last is not None
        and last.end <= start
        and midnight(last.start) == midnight(start)
        and (last.team, last.service, last.environment, last.size) == (owner.team, owner.service,
                                                                       owner.environment, size)
    ):
        last.end = end
        last.quantity += quantity
        return
    session.add(UsageRecord(
        team=owner.team, service=owner.service, environment=owner.environment, meter=meter.value,
        process_type=process_type, size=size, quantity=quantity, unit=meter.unit, start=start, end=end,
        source=source,
    ))


# Process-seconds ------------------------------------------------------------------------


def process_size(app_json: dict[str, Any], process_type: str) -> str:
    """The size app.json's formation gives a process type, lower case; ``standard`` by default."""
    formation = app_json.get("formation") if isinstance(app_json, dict) else None
    entry = formation.get(process_type) if isinstance(formation, dict) else None
    size = entry.get("size") if isinstance(entry, dict) else None
    return size.lower() if isinstance(size, str) and size else DEFAULT_SIZE


def meter_releases(session: Session, now: datetime) -> int:
    """Record the process-seconds of every release that is or was live since the last tick.

    Returns how many releases got new usage.
    """
    now = floor_second(now)
    done = select(ReleaseMeter.release_id).where(ReleaseMeter.done.is_(True))
    rows = session.execute(
        select(Release, Service.name, Environment.name, Team.name, Artifact.app_json)
        .join(Environment, Release.environment_id == Environment.id)
        .join(Service, Environment.service_id == Service.id)
        .join(Team, Service.owner_id == Team.id)
        .join(Artifact, Release.artifact_id == Artifact.id)
        .where(Release.live_at.is_not(None), Release.id.not_in(done))
        .order_by(Release.id)
    ).all()
    metered = 0
    for release, service, env, team, app_json in rows:
        assert release.live_at is not None
        cursor = session.get(ReleaseMeter, release.id)
        start = cursor.metered_until if cursor is not None else floor_second(release.live_at)
        if release.status == ReleaseStatus.LIVE:
            end, finished = max(start, now), False
        else:
            successor = session.scalar(
                select(func.min(Release.live_at)).where(
                    Release.environment_id == release.environment_id, Release.live_at > release.live_at
                )
            )
            end, finished = (max(start, floor_second(successor)) if successor is not None else start), True
        owner = Owner(team, service, env)
        for kind, count in sorted(release.formation.items()):
            if count <= 0 or kind == "release":
                continue
            size = process_size(app_json, kind)
            for piece_start, piece_end in by_day(start, end):
                seconds = (piece_end - piece_start) // SECOND
                append_usage(session, f"release:{release.id}:{kind}", owner, Meter.PROCESS_SECONDS, piece_start,
                             piece_end, Decimal(count * seconds), process_type=kind, size=size)
        metered += end > start
        if cursor is None:
            session.add(ReleaseMeter(release_id=release.id, metered_until=end, done=finished))
        else:
            cursor.metered_until, cursor.done = end, finished
    return metered


# API requests ---------------------------------------------------------------------------

RequestKey = tuple[str, str, str, datetime]  # team, service, environment, hour


class RequestCounter:
    """API requests per team, service, environment and hour, counted in memory until the next tick."""

    def __init__(self) -> None:
        self._counts: Counter[RequestKey] = Counter()
        self._lock = threading.Lock()

    def count(self, team: str, service: str, environment: str, at: datetime) -> None:
        hour = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        with self._lock:
            self._counts[(team, service, environment, hour)] += 1

    def drain(self) -> Counter[RequestKey]:
        """Every count so far, leaving none behind."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts

    def restore(self, counts: Counter[RequestKey]) -> None:
        """Put back counts whose writing failed, to be written at the next tick."""
        with self._lock:
            self._counts.update(counts)


def write_requests(session: Session, counts: Counter[RequestKey]) -> None:
    """Add request counts to each hour's record."""
    for (team, service, env, hour), count in sorted(counts.items()):
        source = f"api:{team}:{service}:{env}"
        record = session.scalar(
            select(UsageRecord).where(UsageRecord.source == source, UsageRecord.start == hour).limit(1)
        )
        if record is not None:
            record.quantity += count
            continue
        meter = Meter.API_REQUESTS
        session.add(UsageRecord(
            team=team, service=service, environment=env, meter=meter.value, quantity=Decimal(count),
            unit=meter.unit, start=hour, end=hour + HOUR, source=source,
        ))


# Log bytes ------------------------------------------------------------------------------


def file_sizes(directory: Path) -> dict[str, int]:
    """``"device:inode"`` → size of each file in ``directory``; empty when it does not exist."""
    sizes: dict[str, int] = {}
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return sizes
    for entry in entries:
        try:
            stat = entry.stat(follow_symlinks=False)
        except OSError:  # rotated away between listing and looking
            continue
        if entry.is_file(follow_symlinks=False):
            sizes[f"{stat.st_dev}:{stat.st_ino}"] = stat.st_size
    return sizes


def growth(before: dict[str, int], after: dict[str, int]) -> int:
    """Bytes written between two looks: each file's growth; a new (or truncated) file counts whole."""
    added = 0
    for key, size in after.items():
        old = before.get(key, 0)
        added += size - old if size >= old else size
    return added


def meter_logs(session: Session, deploy_root: Path, now: datetime, interval: float) -> int:
    """Record the log bytes each environment wrote since the last tick; returns the bytes recorded."""
    rows = session.execute(
        select(Environment.id, Environment.name, Service.name, Team.name)
        .join(Service, Environment.service_id == Service.id)
        .join(Team, Service.owner_id == Team.id)
        .order_by(Environment.id)
    ).all()
    total = 0
    for env_id, env, service, team in rows:
        key = f"logs:{env_id}"
        cursor = session.get(MeterCursor, key)
        sizes = file_sizes(deploy_root / service / env / "logs")
        before: dict[str, int] = cursor.position.get("files", {}) if cursor is not None else {}
        if cursor is None and not sizes:
            continue
        added = growth(before, sizes)
        if added:
            since = datetime.fromisoformat(cursor.position["at"]) if cursor is not None else now - timedelta(
                seconds=interval)
            start = min(max(since, midnight(now)), now)
            append_usage(session, key, Owner(team, service, env), Meter.LOG_BYTES, start, now, Decimal(added))
            total += added
        position = {"at": now.isoformat(), "files": sizes}
        if cursor is None:
            session.add(MeterCursor(key=key, position=position, updated_at=now))
        else:
            cursor.position, cursor.updated_at = position, now
    return total


# Database storage -----------------------------------------------------------------------


def storage_tables(session: Session) -> tuple[Table, Any] | None:
    """The add-ons' samples table and a query of each add-on's owner, or None while they are missing."""
    inspector = inspect(session.connection())
    if not (inspector.has_table(STORAGE_SAMPLES) and inspector.has_table(ADDONS)):
        return None
    columns = {column["name"] for column in inspector.get_columns(ADDONS)}
    addons = Table(ADDONS, MetaData(), *(Column(name) for name in columns & {"id", "environment_id", "service_id",
                                                                             "environment", "env"}))
    if "id" not in columns:
        return None
    if "environment_id" in columns:
        owners = (
            select(addons.c.id, Service.name, Environment.name, Team.name)
            .join(Environment, addons.c.environment_id == Environment.id)
            .join(Service, Environment.service_id == Service.id)
            .join(Team, Service.owner_id == Team.id)
        )
    elif "service_id" in columns and columns & {"environment", "env"}:
        env_column = addons.c.environment if "environment" in columns else addons.c.env
        owners = (
            select(addons.c.id, Service.name, env_column, Team.name)
            .join(Service, addons.c.service_id == Service.id)
            .join(Team, Service.owner_id == Team.id)
        )
    else:
        return None
    samples = Table(STORAGE_SAMPLES, MetaData(), Column("addon_id"), Column("at", UTCDateTime()),
                    Column("bytes", BigInteger))
    return samples, owners.order_by(addons.c.id)


def meter_storage(session: Session) -> int | None:
    """Record byte-hours from storage samples not yet integrated; None while the add-ons tables are missing.

    Each sample's size is held from its time until the next sample's; usage after the last
    sample waits for the next one.
    """
    found = storage_tables(session)
    if found is None:
        return None
    samples, owners = found
    integrated = 0
    for addon_id, service, env, team in session.execute(owners).all():
        key = f"addon:{addon_id}"
        cursor = session.get(MeterCursor, key)
        query = select(samples.c.at, samples.c.bytes).where(samples.c.addon_id == addon_id)
        if cursor is not None:
            query = query.where(samples.c.at >= datetime.fromisoformat(cursor.position["at"]))
        points = session.execute(query.order_by(samples.c.at)).all()
        if len(points) < 2:
            continue
        owner = Owner(team, service, env)
        for (start, size), (end, _) in itertools.pairwise(points):
            for piece_start, piece_end in by_day(start, end):
                span = (piece_end - piece_start) // timedelta(microseconds=1)
                quantity = Decimal(int(size)) * span / HOUR_IN_MICROSECONDS
                append_usage(session, key, owner, Meter.STORAGE_BYTE_HOURS, piece_start, piece_end, quantity)
            integrated += 1
        position = {"at": points[-1][0].isoformat()}
        if cursor is None:
            session.add(MeterCursor(key=key, position=position))
        else:
            cursor.position, cursor.updated_at = position, utcnow()
    return integrated
