"""The checker: every enabled check probed at its interval, from one asyncio loop in one thread.

Each check runs on a fixed-rate schedule (the next probe is due one interval after the
previous one was *due*, not after it ran), with its first probe spread over the interval
so a thousand checks do not all fire at once. Results are kept in memory and written in
batches by one store thread; a state change (down, up) is handed to ``IncidentService``
in that same thread, before the batch, so incidents follow the order checks saw things.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, insert, select, update

from podium.config import Settings
from podium.health.checks import CheckService
from podium.health.incidents import IncidentService
from podium.health.models import Check, CheckResult, CheckState
from podium.health.probe import Counters, Outcome, Target, advance, probe
from podium.health.rollup import compact
from podium.store.db import Store, utcnow

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0  # results wait at most this long before they are written
FIRST_COMPACTION_SECONDS = 60.0  # after start: a server that was off for days catches up soon
COMPACTION_SECONDS = 600.0
FULL_RELOAD_SECONDS = 60.0
GOLDEN = 0.6180339887498949  # spreads first probes evenly over the interval, by check id
ERROR_MAX = 500

# Plain table statements, run as executemany: the ORM's per-row work would hold up the loop.
RESULTS = CheckResult.metadata.tables[CheckResult.__tablename__]
CHECKS = Check.metadata.tables[Check.__tablename__]
STATE_UPDATE = (
    update(CHECKS)
    .where(CHECKS.c.id == bindparam("check_id"))
    .values(state=bindparam("state"), consecutive_ok=bindparam("consecutive_ok"),
            consecutive_fail=bindparam("consecutive_fail"), last_checked_at=bindparam("last_checked_at"),
            last_error=bindparam("last_error"))
)


def next_due(due: float, interval: float, now: float) -> tuple[float, int]:
    """When the next probe is due after the one due at ``due``, and how many slots were missed.

    Fixed rate: one interval after the previous *due* time, so time spent probing does not
    push the schedule back. A probe that overran whole slots skips them rather than burst.
    """
    due += interval
    if due >= now:
        return due, 0
    missed = int((now - due) // interval) + 1
    return due + missed * interval, missed


@dataclass
class Slot:
    """One check's place in the loop: what to probe, what it concluded, its task."""

    target: Target
    counters: Counters
    task: asyncio.Task[None] | None = None
    # Down with no incident open yet: a maintenance window held it back, or the checker
    # just started and does not know. The next failure tries to open it again.
    wants_incident: bool = False


@dataclass
class Event:
    """A check changed state: open or resolve its incident."""

    down: bool
    check_id: int
    summary: str
    at: datetime


@dataclass
class Lateness:
    """How late probes started against their schedule (the most recent ones), and how many ran."""

    samples: deque[float] = field(default_factory=lambda: deque(maxlen=200_000))
    probes: int = 0
    skipped: int = 0

    def add(self, seconds: float) -> None:
        self.probes += 1
        self.samples.append(seconds)

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) of the kept samples, in seconds; None before any probe."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Checker:
    """Probes every check in the background; ``start`` and ``close`` from any thread."""

    def __init__(
        self, settings: Settings, store: Store, checks: CheckService, incidents: IncidentService, *,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.checks = checks
        self.incidents = incidents
        self.flush_seconds = flush_seconds
        self.lateness = Lateness()
        self.slots: dict[int, Slot] = {}
        self._results: list[dict[str, Any]] = []
        self._states: dict[int, dict[str, Any]] = {}
        self._events: list[Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._client: httpx.AsyncClient | None = None
        self._generation = -1
        self._loaded_at = 0.0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="checker", daemon=True)
        # One store thread for results and incidents (their order matters), one for compaction.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checker-store")
        self._compactor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checker-compact")

    # Control, from other threads ------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread; returns once it has loaded the checks once."""
        self._thread.start()
        self._ready.wait(timeout=30)

    def close(self) -> None:
        """Stop probing, write what is pending, and end the thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=30)
        self._writer.shutdown(wait=True)
        self._compactor.shutdown(wait=True)

    def sync_now(self, timeout: float = 30.0) -> None:
        """Reload every check from the store now, not at the next sync."""
        self._call(self._sync(force=True), timeout)

    def flush_now(self, timeout: float = 30.0) -> None:
        """Write pending results and state changes now; returns once every batch so far is stored."""
        self._call(self._drain(), timeout)

    def _call(self, coroutine: Any, timeout: float) -> None:
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the checker is not running")
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # The loop -------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception:
            log.exception("the checker stopped")
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._wake = asyncio.Event(), asyncio.Event()
        limit = self.settings.check_max_connections
        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
        async with httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False) as client:
            self._client = client
            try:
                await self._sync(force=True)
            except Exception:  # the store may be busy: the next sync tries again
                log.exception("checker: loading the checks failed")
            self._ready.set()
            background = [
                asyncio.create_task(self._every(self.settings.check_sync_interval, self._sync), name="sync"),
                asyncio.create_task(self._flusher(), name="flush"),
                asyncio.create_task(self._compaction(), name="compact"),
            ]
            await self._stop.wait()
            for slot in self.slots.values():
                if slot.task is not None:
                    slot.task.cancel()
            for task in background:
                task.cancel()
            await asyncio.gather(*(s.task for s in self.slots.values() if s.task), *background,
                                 return_exceptions=True)
            await self._flush()

    async def _every(self, seconds: float, job: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                log.exception("checker: %s failed", getattr(job, "__name__", job))

    async def _sync(self, force: bool = False) -> None:
        """Fit the running checks to the store: start new ones, drop gone ones, apply changes."""
        loop = asyncio.get_running_loop()
        targets = await loop.run_in_executor(self._writer, self._load, force)
        if targets is None:
            return
        wanted = {target.check_id: (target, counters) for target, counters in targets}
        for check_id in [c for c in self.slots if c not in wanted]:
            gone = self.slots.pop(check_id)
            if gone.task is not None:
                gone.task.cancel()
        for check_id, (target, counters) in wanted.items():
            slot = self.slots.get(check_id)
            if slot is None:
                slot = Slot(target, counters, wants_incident=counters.state == CheckState.DOWN)
                self.slots[check_id] = slot
                slot.task = asyncio.create_task(self._run(slot), name=f"check-{check_id}")
            elif slot.target != target:
                rescheduled = slot.target.interval != target.interval
                slot.target = target  # the running task reads it at each probe
                if rescheduled and slot.task is not None:
                    slot.task.cancel()
                    slot.task = asyncio.create_task(self._run(slot), name=f"check-{check_id}")

    def _load(self, force: bool) -> list[tuple[Target, Counters]] | None:
        """What to probe, or None when nothing changed. Reading every check is the costly part,
        so it happens only on a new release, a change made through ``CheckService``, or every
        ``FULL_RELOAD_SECONDS`` for changes it cannot see (another Podium process, a deleted service)."""
        released = self.checks.ensure_web_checks()
        generation, now = self.checks.generation, time.monotonic()
        stale = now - self._loaded_at > FULL_RELOAD_SECONDS
        if not (force or released or stale or generation != self._generation):
            return None
        self._generation, self._loaded_at = generation, now
        return self.checks.targets()

    async def _run(self, slot: Slot) -> None:
        """Probe one check forever on a fixed-rate schedule."""
        loop = asyncio.get_running_loop()
        assert self._client is not None
        interval = slot.target.interval
        due = loop.time() + (slot.target.check_id * GOLDEN % 1.0) * interval
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            started = loop.time()
            self.lateness.add(started - due)
            at = utcnow()
            try:
                outcome = await probe(self._client, slot.target)
            except Exception as exc:  # a bug in a probe must not end the check's schedule
                log.exception("probe of check %s", slot.target.check_id)
                outcome = Outcome(False, 0.0, error=f"{slot.target.request}: {type(exc).__name__}")
            self._record(slot, outcome, at)
            due, missed = next_due(due, interval, loop.time())
            self.lateness.skipped += missed

    def _record(self, slot: Slot, outcome: Outcome, at: datetime) -> None:
        """Take one result: advance the state machine, queue the row, and any incident change."""
        target = slot.target
        before = slot.counters
        after = advance(before, outcome.ok, target.down_after, target.up_after)
        slot.counters = after
        error = outcome.error[:ERROR_MAX] if outcome.error else None
        self._results.append({
            "check_id": target.check_id, "at": at, "ok": outcome.ok, "latency_ms": outcome.latency_ms,
            "status_code": outcome.status_code, "error": error,
        })
        self._states[target.check_id] = {
            "id": target.check_id, "state": after.state.value, "consecutive_ok": after.consecutive_ok,
            "consecutive_fail": after.consecutive_fail, "last_checked_at": at, "last_error": error,
        }
        went_down = after.state == CheckState.DOWN and (before.state != CheckState.DOWN or slot.wants_incident)
        if went_down and not outcome.ok:
            slot.wants_incident = False  # the store thread says again if it could not open one
            summary = f"{target.label} is down: {outcome.error}"
            self._events.append(Event(True, target.check_id, summary, at))
        elif after.state == CheckState.UP and before.state == CheckState.DOWN:
            slot.wants_incident = False
            self._events.append(Event(False, target.check_id, f"{target.label} is up", at))
        if self._events and self._wake is not None:
            self._wake.set()

    async def _flusher(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("checker: writing results failed")

    async def _flush(self) -> None:
        """Hand the pending batch to the store thread; note the checks still owed an incident."""
        results, states, events = self._results, list(self._states.values()), self._events
        self._results, self._states, self._events = [], {}, []
        if not (results or states or events):
            return
        loop = asyncio.get_running_loop()
        held_back = await loop.run_in_executor(self._writer, self._write, results, states, events)
        for check_id in held_back:
            slot = self.slots.get(check_id)
            if slot is not None and slot.counters.state == CheckState.DOWN:
                slot.wants_incident = True

    async def _drain(self) -> None:
        await self._flush()
        # The store thread runs batches in order: once this no-op ran, every earlier one is done.
        await asyncio.get_running_loop().run_in_executor(self._writer, lambda: None)

    def _write(self, results: list[dict[str, Any]], states: list[dict[str, Any]], events: list[Event]) -> set[int]:
        """In the store thread: incidents first, then the results and states in one transaction.

        Returns the checks that went down but opened no incident (a maintenance window, or
        an error), so the next failure tries again.
        """
        held_back: set[int] = set()
        for event in events:
            try:
                if event.down:
                    if self.incidents.trigger_from_check(event.check_id, event.summary, event.at) is None:
                        held_back.add(event.check_id)
                else:
                    self.incidents.resolve_from_check(event.check_id, event.at)
            except Exception:
                log.exception("checker: incident change for check %s failed", event.check_id)
                if event.down:
                    held_back.add(event.check_id)
        ids = {row["id"] for row in states}
        with self.store.session() as session:
            # A check removed since its probe took its results with it.
            alive = set(session.scalars(select(Check.id).where(Check.id.in_(ids)))) if ids else set()
            rows = [r for r in results if r["check_id"] in alive]
            if rows:
                session.execute(insert(RESULTS), rows)
            changes = [{**s, "check_id": s["id"]} for s in states if s["id"] in alive]
            if changes:
                session.execute(STATE_UPDATE, changes)
        return held_back

    async def _compaction(self) -> None:
        await asyncio.sleep(FIRST_COMPACTION_SECONDS)
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self._compactor, self.compact, utcnow())
            except Exception:
                log.exception("checker: compacting results failed")
            await asyncio.sleep(COMPACTION_SECONDS)

    def compact(self, now: datetime) -> None:
        """Roll up results past the raw window; drop minute rollups past theirs."""
        compact(
            self.store, now, timedelta(hours=self.settings.check_raw_hours),
            timedelta(days=self.settings.check_minute_rollup_days),
        )
