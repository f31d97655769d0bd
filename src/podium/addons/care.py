"""The platform's care of the add-ons: daily backups and their retention, storage samples, probes.

The product team owns its data; the platform owns the guarantee. ``Caretaker`` runs two
background threads under ``podium server``: one probes the database server and, when it
is down, opens an incident per affected service environment that pages the *platform*
team; the other, once a minute, samples each database's size (``addon_storage_samples``,
which billing turns into byte-hours), takes the backups that are due, prunes those past
retention and finishes credential rotations whose release went live while no one watched.
Each job is also a method, so tests run it with explicit times.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from podium.addons import backups as files
from podium.addons.models import Addon, AddonBackup, AddonState, AddonStorageSample, BackupKind
from podium.addons.postgres import database_size
from podium.addons.service import AddonService, BackupInfo
from podium.catalog.auth import Actor
from podium.catalog.models import PLATFORM_TEAM
from podium.errors import Conflict, NotFound, PodiumError
from podium.runtime import RuntimeFailure
from podium.store.db import utcnow

log = logging.getLogger(__name__)

JOBS_TICK = 60.0  # seconds between looks for due backups, samples and rotations to finish


class Caretaker:
    """Background care of every add-on of one ``AddonService``."""

    def __init__(self, addons: AddonService) -> None:
        self.addons = addons
        self.settings = addons.settings
        self.store = addons.store
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._fails = self._oks = 0
        self._sampled_at: datetime | None = None

    def run_schedule(self, now: datetime | None = None) -> list[BackupInfo]:
        """A scheduled backup of each active add-on whose newest backup is older than the interval."""
        interval = self.settings.addons_backup_interval
        if interval <= 0:
            return []
        moment = now or utcnow()
        made = []
        with self.store.session() as session:
            due = []
            for addon in session.scalars(select(Addon).where(Addon.state == AddonState.ACTIVE)):
                newest = session.scalar(select(AddonBackup.created_at).where(AddonBackup.addon_id == addon.id)
                                        .order_by(AddonBackup.created_at.desc()).limit(1))
                if newest is None or (moment - newest).total_seconds() >= interval:
                    due.append(addon.id)
        for addon_id in due:
            try:
                made.append(self.addons.take_backup(addon_id, BackupKind.SCHEDULED, PLATFORM_TEAM))
            except PodiumError as exc:
                log.warning("add-on %s: the scheduled backup failed: %s", addon_id, exc.detail)
        return made

    def prune(self, now: datetime | None = None) -> list[int]:
        """Delete backups past the retention period (never final ones, never an add-on's newest)."""
        retention = timedelta(days=self.settings.addons_backup_retention_days)
        with self.store.session() as session:
            rows = list(session.scalars(select(AddonBackup)))
            kept = [files.Kept(r.id, r.addon_id, r.kind, r.created_at) for r in rows]
            doomed = set(files.prunable(kept, now or utcnow(), retention))
            paths = []
            for row in rows:
                if row.id in doomed:
                    paths.append(Path(row.path))
                    session.delete(row)
        for path in paths:  # after the rows are gone: a file without a row is harmless, the reverse is not
            path.unlink(missing_ok=True)
        return sorted(doomed)

    def sample_storage(self, now: datetime | None = None) -> int:
        """Record each active database's size (``addon_storage_samples``); how many were sampled."""
        active = self.addons.active()
        if not active or not self.addons.server.exists():
            return 0
        moment = now or utcnow()
        with self.addons.server.superuser().connect() as conn:
            sizes = [(addon_id, database_size(conn, database)) for addon_id, _, _, database in active]
        with self.store.session() as session:
            for addon_id, size in sizes:
                if size is not None:
                    session.add(AddonStorageSample(addon_id=addon_id, at=moment, bytes=size))
        self._sampled_at = moment
        return sum(1 for _, size in sizes if size is not None)

    def probe(self) -> bool | None:
        """Look at the database server once; None when there is nothing to look after.

        After ``addons_probe_down_after`` failures in a row, each active add-on's service
        environment gets an incident that pages the platform team; after
        ``addons_probe_up_after`` successes they are resolved.
        """
        active = self.addons.active()
        if not active or not self.addons.server.exists():
            return None
        try:
            with self.addons.server.superuser().connect() as conn:
                conn.execute("SELECT 1")
            up, reason = True, ""
        except (RuntimeFailure, OSError) as exc:
            up, reason = False, exc.detail if isinstance(exc, PodiumError) else str(exc).strip()
        if up:
            self._fails, self._oks = 0, self._oks + 1
            if self._oks >= self.settings.addons_probe_up_after:
                self._resolve_incidents()
        else:
            self._fails, self._oks = self._fails + 1, 0
            if self._fails >= self.settings.addons_probe_down_after:
                self._open_incidents(active, reason)
        return up

    def _open_incidents(self, active: list[tuple[int, str, str, str]], reason: str) -> None:
        for addon_id, service, env, _ in active:
            with self.store.session() as session:
                addon = session.get(Addon, addon_id)
                if addon is None or addon.incident_id is not None:
                    continue
            summary = f"the database server of {service}/{env} is down ({self.addons.server.label}): {reason}"
            incident = self.addons.incidents.open(Actor.system(), service, env, summary[:500], team=PLATFORM_TEAM)
            with self.store.session() as session:
                addon = session.get(Addon, addon_id)
                if addon is not None:
                    addon.incident_id = incident.id

    def _resolve_incidents(self) -> None:
        with self.store.session() as session:
            rows = session.scalars(select(Addon).where(Addon.incident_id.is_not(None)))
            open_ones = [(addon.id, addon.incident_id) for addon in rows]
        for addon_id, incident_id in open_ones:
            assert incident_id is not None
            with contextlib.suppress(Conflict, NotFound):  # resolved by a person already, or gone
                self.addons.incidents.resolve(Actor.system(), incident_id)
            with self.store.session() as session:
                addon = session.get(Addon, addon_id)
                if addon is not None:
                    addon.incident_id = None

    def run_jobs(self, now: datetime | None = None) -> None:
        """One round of the background jobs: storage samples, due backups, pruning, rotations."""
        moment = now or utcnow()
        jobs: list[Callable[[], object]] = [
            lambda: self._sample_if_due(moment), lambda: self.run_schedule(moment), lambda: self.prune(moment),
            lambda: [self.addons.settle_rotation(addon_id) for addon_id, *_ in self.addons.active()],
        ]
        for job in jobs:
            try:
                job()
            except Exception:  # one failing job must not stop the others, nor the next round
                log.exception("add-ons: a background job failed")

    def _sample_if_due(self, now: datetime) -> None:
        last = self._sampled_at
        if last is None or (now - last).total_seconds() >= self.settings.addons_sample_interval:
            self.sample_storage(now)

    # Lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the database server if add-ons use it, then probe it and run the jobs in the background."""
        if self.addons.server.exists() and self.addons.active():
            try:
                self.addons.server.ensure_running()
            except PodiumError as exc:  # the probe pages the platform team about it
                log.error("add-ons: the database server did not start: %s", exc.detail)
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._every, args=(self.settings.addons_probe_interval, self.probe),
                             name="addons-probe", daemon=True),
            threading.Thread(target=self._every, args=(JOBS_TICK, self.run_jobs), name="addons-jobs", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _every(self, seconds: float, job: Callable[[], object]) -> None:
        """Run ``job`` now (catching up after a restart), then every ``seconds`` until closed."""
        while True:
            try:
                job()
            except Exception:  # the next round tries again
                log.exception("add-ons: %s failed; trying again in %gs", getattr(job, "__name__", job), seconds)
            if self._stop.wait(seconds):
                return

    def close(self) -> None:
        """Stop the background work; the database server keeps running, like the apps."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []


