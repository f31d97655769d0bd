"""After a release goes live: watch its health for a window, and count its crashes.

A release whose web processes fail their health check several times in a row within the
watch window is rolled back to the release it replaced, by Podium itself.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Protocol

from sqlalchemy import select

from podium.artifacts.appjson import AppJson
from podium.catalog.auth import Actor
from podium.catalog.models import Environment
from podium.config import Settings
from podium.deploy.gate import health_check
from podium.deploy.models import DeployState, Release, ReleaseCause, ReleaseStatus, previous_live
from podium.deploy.rollout import EnvRef
from podium.errors import PodiumError
from podium.runtime.interface import HealthCheck, ReleaseRef, RunningRelease, Runtime
from podium.store.db import Store, utcnow

log = logging.getLogger(__name__)
FAILURES_BEFORE_ROLLBACK = 3
# Each look is a look at the runtime (a supervisord RPC, which also wakes supervisord to
# notice and restart a dead process at once instead of on its next one-second tick).
CRASH_POLL_SECONDS = 0.2
CLOSE_SECONDS = 10.0  # longer than any probe's timeout (app.json's healthchecks allow a few seconds)


class Rollbacks(Protocol):
    """How the watch rolls a release back: the deploy service's verb."""

    def rollback(
        self, actor: Actor, service: str, env: str, to: str | None = None, reason: str = "", *,
        cause: ReleaseCause = ReleaseCause.ROLLBACK,
    ) -> Release:
        """A new release from an older one's artifact and config; ``PodiumError`` when it
        cannot start (another rollout holds the environment)."""


def is_auto_rollback(release: Release) -> bool:
    """Whether Podium made this release by itself, rolling back one that failed its watch."""
    return release.cause == ReleaseCause.AUTO_ROLLBACK


class Watcher:
    """Auto-rollback watches, one per environment, and the crash counter of live releases.

    Inert until ``run``: a rollout tells it of every release that goes live, and only a
    running watcher watches them."""

    def __init__(self, settings: Settings, store: Store, runtime: Runtime, interval: float = 1.0) -> None:
        self.store = store
        self.runtime = runtime
        self.window = settings.watch_window
        self.interval = interval
        self.rollbacks: Rollbacks | None = None
        self._watches: dict[int, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pids: dict[tuple[ReleaseRef, str], int] = {}
        self._crash_thread = threading.Thread(target=self._count_crashes, name="crash-counter", daemon=True)

    def run(self, rollbacks: Rollbacks) -> None:
        """Start watching the releases that go live from now on, rolling back through
        ``rollbacks``, and start counting crashes in the background."""
        self.rollbacks = rollbacks
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

    def start(self, ref: EnvRef, release_id: int, running: RunningRelease, app_json: AppJson) -> None:
        """Watch a release that just went live for the watch window (not one Podium rolled back to)."""
        if self.window <= 0 or self.rollbacks is None or self._stop.is_set():
            return
        with self.store.session() as session:
            release = session.get(Release, release_id)
            if release is None or is_auto_rollback(release):
                # Podium already acted on its own once: were the trouble outside the app (a
                # database down), watching this release too would roll back and forth.
                return
        cancelled = threading.Event()
        with self._lock:
            self._watches[ref.environment_id] = cancelled
        check = health_check(app_json, deadline=self.window)
        thread = threading.Thread(
            target=self._watch, args=(ref, release_id, running, check, cancelled), name="watch", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _watch(
        self, ref: EnvRef, release_id: int, running: RunningRelease, check: HealthCheck, cancelled: threading.Event
    ) -> None:
        failures, started = 0, utcnow()
        while not cancelled.wait(self.interval) and not self._stop.is_set():
            if (utcnow() - started).total_seconds() > self.window:
                break
            problems = self.runtime.probe(running, check)
            failures = failures + 1 if problems else 0
            if failures >= FAILURES_BEFORE_ROLLBACK:
                self._auto_rollback(ref, release_id, problems[0])
                break
        with self._lock:
            if self._watches.get(ref.environment_id) is cancelled:
                del self._watches[ref.environment_id]

    def _auto_rollback(self, ref: EnvRef, release_id: int, problem: str) -> None:
        with self.store.session() as session:
            release = session.get(Release, release_id)
            state = session.get(DeployState, ref.environment_id)
            if release is None or state is None or state.live_release_id != release_id:
                return
            previous = previous_live(session, ref.environment_id, release.version)
            if previous is None:
                return
            version, previous_version = release.version, previous.version
        assert self.rollbacks is not None
        try:
            rollback = self.rollbacks.rollback(
                Actor.system(), ref.service, ref.env, to=f"v{previous_version}",
                reason=f"Auto-rollback of v{version}", cause=ReleaseCause.AUTO_ROLLBACK,
            )
        except PodiumError as exc:  # e.g. a deploy already holds the lock: it replaces v{version} anyway
            log.warning("auto-rollback of %s/%s v%s not started: %s", ref.service, ref.env, version, exc.detail)
            return
        # Said only once the rollback is under way: a release that was not rolled back must not claim it.
        with self.store.session() as session:
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
        """A process counts as crashed when the runtime restarted it: a new pid, or, for a process
        first seen now, a start after its release went live (or after its last recorded crash)."""
        with self.store.session() as session:
            live = list(session.scalars(select(Release).where(Release.status == ReleaseStatus.LIVE)))
            releases: dict[ReleaseRef, tuple[int, float]] = {}
            for release in live:
                environment = session.get(Environment, release.environment_id)
                if environment is None or release.live_at is None:
                    continue
                baseline = max(release.live_at, release.last_crash_at or release.live_at)
                ref = ReleaseRef(environment.service.name, environment.name, release.version)
                releases[ref] = (release.id, baseline.timestamp())
        if not releases:
            return
        crashed: dict[int, Counter[str]] = {}
        endings: dict[int, dict[str, str]] = {}
        for process in self.runtime.all_live_processes(list(releases)):  # one look, however many are live
            assert process.service is not None
            assert process.env is not None
            assert process.version is not None
            ref = ReleaseRef(process.service, process.env, process.version)
            if ref not in releases or not process.pid:
                continue
            release_id, since = releases[ref]
            key = (ref, process.name)
            seen = self._pids.get(key)
            # supervisord reports start times truncated to the second, so a first start never looks
            # later than going live; a restart within that same second goes unnoticed.
            restarted = process.pid != seen if seen is not None else (process.started_at or 0) > since
            if restarted:
                crashed.setdefault(release_id, Counter())[process.name] += 1
                if process.last_exit is not None:  # how it ended, e.g. "oom" (the sandbox's cgroups)
                    endings.setdefault(release_id, {})[process.name] = process.last_exit
            self._pids[key] = process.pid
        if crashed:
            with self.store.session() as session:
                for release_id, counts in crashed.items():
                    crashed_release = session.get(Release, release_id)
                    if crashed_release is not None:
                        crashed_release.crashes += counts.total()
                        crashed_release.restarts = dict(Counter(crashed_release.restarts) + counts)
                        crashed_release.last_crash_at = utcnow()
                        crashed_release.last_exits = {**crashed_release.last_exits, **endings.get(release_id, {})}
