"""After a release goes live: watch its health for a window.

A release whose web processes fail their health check several times in a row within the
watch window is rolled back to the release it replaced, by Podium itself. Each server
watches the releases its own rollouts made live; crashes of every live release are
counted by one server (``podium.deploy.crashes``).

The watch probes at once when the release goes live, then backs off while it passes
(1 s, 2 s, 4 s … up to the interval of the environment's web check), so a healthy app's
log holds a handful of probe lines rather than one a second; a failed probe brings back
probing every second until the app passes again or is rolled back. An app that breaks
on going live is rolled back sooner than with probes every second (its probes at 0, 1
and 2 s fail); one that breaks late in the window is noticed at the next probe, up to
one check interval later (the checker probes it as often meanwhile).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from sqlalchemy import select

from podium.artifacts.appjson import AppJson
from podium.catalog.auth import Actor
from podium.config import Settings
from podium.deploy.gate import health_check
from podium.deploy.models import DeployState, Release, ReleaseCause, previous_live
from podium.deploy.rollout import EnvRef
from podium.errors import PodiumError
from podium.health.models import Check
from podium.runtime.interface import HealthCheck, RunningRelease, Runtime
from podium.store.db import Store

log = logging.getLogger(__name__)
FAILURES_BEFORE_ROLLBACK = 3
CLOSE_SECONDS = 10.0  # longer than any probe's timeout (app.json's healthchecks allow a few seconds)
WEB_CHECK = "web"  # the check every deployed app gets (podium.health.checks)


def next_wait(previous: float, failed: bool, *, fast: float, slowest: float) -> float:
    """Seconds from one probe of a watched release to the next.

    ``previous`` is the wait before the probe just made (0 for the first, made at once).
    After a failure: ``fast``, so a broken release is caught as quickly as ever. After a
    pass: ``fast`` once, then each wait twice the one before, up to ``slowest``."""
    if failed or previous <= 0:
        return fast
    return max(fast, min(previous * 2, slowest))


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
    """Auto-rollback watches, one per environment.

    Inert until ``run``: a rollout tells it of every release that goes live, and only a
    running watcher watches them."""

    def __init__(self, settings: Settings, store: Store, runtime: Runtime, interval: float = 1.0) -> None:
        self.store = store
        self.runtime = runtime
        self.window = settings.watch_window
        self.interval = interval  # between probes while one fails, and the first step of the back-off
        self.check_interval = settings.check_interval  # the back-off's ceiling without a web check
        self.rollbacks: Rollbacks | None = None
        self._watches: dict[int, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, rollbacks: Rollbacks) -> None:
        """Start watching the releases that go live from now on, rolling back through ``rollbacks``."""
        self.rollbacks = rollbacks

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
            web_interval = session.scalar(
                select(Check.interval).where(Check.environment_id == ref.environment_id, Check.name == WEB_CHECK)
            )
        slowest = web_interval if web_interval is not None else self.check_interval
        cancelled = threading.Event()
        with self._lock:
            self._watches[ref.environment_id] = cancelled
        check = health_check(app_json, deadline=self.window)
        thread = threading.Thread(
            target=self._watch, args=(ref, release_id, running, check, slowest, cancelled), name="watch",
            daemon=True,
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _watch(
        self, ref: EnvRef, release_id: int, running: RunningRelease, check: HealthCheck, slowest: float,
        cancelled: threading.Event,
    ) -> None:
        failures, wait, started = 0, 0.0, time.monotonic()
        while not cancelled.wait(wait) and not self._stop.is_set():
            if time.monotonic() - started > self.window:
                break
            problems = self.runtime.probe(running, check)
            failures = failures + 1 if problems else 0
            if failures >= FAILURES_BEFORE_ROLLBACK:
                self._auto_rollback(ref, release_id, problems[0])
                break
            wait = next_wait(wait, bool(problems), fast=self.interval, slowest=slowest)
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
