"""After a release goes live: watch its health for a window, and count its crashes.

A release whose web processes fail their health check several times in a row within the
watch window is rolled back to the release it replaced, by Podium itself.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import select

from podium.artifacts.appjson import AppJson
from podium.catalog.models import Environment
from podium.deploy.health import Gate, probe
from podium.deploy.models import DeployState, Release, ReleaseStatus
from podium.deploy.rollout import group_name
from podium.errors import PodiumError
from podium.store.db import utcnow

if TYPE_CHECKING:
    from podium.deploy.service import DeployService, EnvRef

# Podium acting on its own (an auto-rollback) acts as the platform team, with no token.
from podium.deploy.service import SYSTEM_ACTOR, previous_live

log = logging.getLogger(__name__)
FAILURES_BEFORE_ROLLBACK = 3
AUTO_ROLLBACK = "Auto-rollback of v"  # how the description of a release made by an auto-rollback starts
# Each look is a supervisord RPC, which also wakes supervisord to notice (and restart) a
# dead process at once instead of on its next one-second tick.
CRASH_POLL_SECONDS = 0.2
CLOSE_SECONDS = 10.0  # longer than any probe's timeout (app.json's healthchecks allow a few seconds)


def is_auto_rollback(release: Release) -> bool:
    """Whether Podium made this release by itself, rolling back one that failed its watch."""
    return release.rollback_of is not None and release.description.startswith(AUTO_ROLLBACK)


class Watcher:
    """Auto-rollback watches, one per environment, and the crash counter of live releases."""

    def __init__(self, deploys: DeployService, window: float, interval: float = 1.0) -> None:
        self.deploys = deploys
        self.window = window
        self.interval = interval
        self._watches: dict[int, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pids: dict[tuple[str, str], int] = {}
        self._crash_thread = threading.Thread(target=self._count_crashes, name="crash-counter", daemon=True)

    def run(self) -> None:
        """Start counting crashes in the background."""
        self._crash_thread.start()

    def close(self) -> None:
        """Stop every watch, and wait for their threads: they probe through the deploy
        service's client, which closes after this."""
        self._stop.set()
        with self._lock:
            for event in self._watches.values():
                event.set()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=CLOSE_SECONDS)

    def cancel(self, environment_id: int) -> None:
        """A newer rollout takes over the environment: stop watching the old release."""
        with self._lock:
            event = self._watches.pop(environment_id, None)
        if event is not None:
            event.set()

    def start(self, ref: EnvRef, release_id: int, ports: list[int], app_json: AppJson) -> None:
        """Watch a release that just went live for the watch window (not one Podium rolled back to)."""
        if self.window <= 0:
            return
        with self.deploys.store.session() as session:
            release = session.get(Release, release_id)
            if release is None or is_auto_rollback(release):
                # Podium already acted on its own once: were the trouble outside the app (a
                # database down), watching this release too would roll back and forth.
                return
        cancelled = threading.Event()
        with self._lock:
            self._watches[ref.environment_id] = cancelled
        gate = Gate.from_app_json(app_json, deadline=self.window)
        thread = threading.Thread(
            target=self._watch, args=(ref, release_id, ports, gate, cancelled), name="watch", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _watch(self, ref: EnvRef, release_id: int, ports: list[int], gate: Gate, cancelled: threading.Event) -> None:
        failures, started, client = 0, utcnow(), self.deploys.probes
        while not cancelled.wait(self.interval) and not self._stop.is_set():
            if (utcnow() - started).total_seconds() > self.window:
                break
            problems = [p for p in (probe(client, port, gate) for port in ports) if p is not None]
            failures = failures + 1 if problems else 0
            if failures >= FAILURES_BEFORE_ROLLBACK:
                self._auto_rollback(ref, release_id, problems[0])
                break
        with self._lock:
            if self._watches.get(ref.environment_id) is cancelled:
                del self._watches[ref.environment_id]

    def _auto_rollback(self, ref: EnvRef, release_id: int, problem: str) -> None:
        with self.deploys.store.session() as session:
            release = session.get(Release, release_id)
            state = session.get(DeployState, ref.environment_id)
            if release is None or state is None or state.live_release_id != release_id:
                return
            previous = previous_live(session, ref.environment_id, release.version)
            if previous is None:
                return
            version, previous_version = release.version, previous.version
        try:
            rollback = self.deploys.rollback(
                SYSTEM_ACTOR, ref.service, ref.env, to=f"v{previous_version}", reason=f"{AUTO_ROLLBACK}{version}",
            )
        except PodiumError as exc:  # e.g. a deploy already holds the lock: it replaces v{version} anyway
            log.warning("auto-rollback of %s/%s v%s not started: %s", ref.service, ref.env, version, exc.detail)
            return
        # Said only once the rollback is under way: a release that was not rolled back must not claim it.
        with self.deploys.store.session() as session:
            release = session.get(Release, release_id)
            assert release is not None
            release.failure_reason = (
                f"rolled back automatically by v{rollback.version}: {FAILURES_BEFORE_ROLLBACK} failed health "
                f"checks within {self.window:.0f}s of going live ({problem})"
            )

    def _count_crashes(self) -> None:
        """Every restart of a live process is a crash recorded on its release, and counted
        for that process (by its name in the release: ``web-1``, ``worker-2``…)."""
        while not self._stop.wait(CRASH_POLL_SECONDS):
            try:
                self._poll_crashes()
            except Exception:  # the counter must outlive a passing store or supervisord error
                log.exception("crash counter")

    def _poll_crashes(self) -> None:
        """A process counts as crashed when supervisord restarted it: a new pid, or, for a process
        first seen now, a start after its release went live (or after its last recorded crash)."""
        with self.deploys.store.session() as session:
            live = list(session.scalars(select(Release).where(Release.status == ReleaseStatus.LIVE)))
            groups: dict[str, tuple[int, float]] = {}
            for release in live:
                environment = session.get(Environment, release.environment_id)
                if environment is None or release.live_at is None:
                    continue
                baseline = max(release.live_at, release.last_crash_at or release.live_at)
                groups[group_name(environment.service.name, environment.name, release.version)] = (
                    release.id, baseline.timestamp(),
                )
        if not groups:
            return
        crashed: dict[int, Counter[str]] = {}
        for info in self.deploys.node.supervisor.all_status():  # one call, however many releases are live
            if info.group not in groups or not info.pid:
                continue
            release_id, since = groups[info.group]
            key = (info.group, info.name)
            seen = self._pids.get(key)
            # supervisord reports start times truncated to the second, so a first start never looks
            # later than going live; a restart within that same second goes unnoticed.
            restarted = info.pid != seen if seen is not None else (info.started_at or 0) > since
            if restarted:
                crashed.setdefault(release_id, Counter())[info.name] += 1
            self._pids[key] = info.pid
        if crashed:
            with self.deploys.store.session() as session:
                for release_id, counts in crashed.items():
                    crashed_release = session.get(Release, release_id)
                    if crashed_release is not None:
                        crashed_release.crashes += counts.total()
                        crashed_release.restarts = dict(Counter(crashed_release.restarts) + counts)
                        crashed_release.last_crash_at = utcnow()
