"""The background loops, and the rule that runs them on exactly one server: the leader.

Health checks, the paging outbox and escalations, the crash counter of live releases,
metering, experiments' guardrails, add-on backups and care, and settling the rollouts of
servers that are gone all run where the lease is held. They start when this server is
elected and stop when it is deposed or closes. What every server does for itself (its
own rollouts and their watch windows, the API) is not here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from podium.billing.meters import write_requests
from podium.health.checker import Checker

if TYPE_CHECKING:
    from podium.core import Podium

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loop:
    """A background loop that can be started and stopped again, any number of times."""

    name: str
    start: Callable[[], None]
    stop: Callable[[], None]


class Every:
    """Run ``job`` now, then every ``seconds``, in a thread, until stopped."""

    def __init__(self, name: str, seconds: Callable[[], float], job: Callable[[], object]) -> None:
        self.name, self.seconds, self.job = name, seconds, job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop = threading.Event()  # a thread of an earlier term may still be finishing its round
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.job()
            except Exception:  # the store may be away: the next round tries again
                log.exception("%s: a round failed; trying again", self.name)
            if stop.wait(self.seconds()):
                return

    def loop(self) -> Loop:
        return Loop(self.name, self.start, self.stop)


class Runner:
    """Starts the leader's loops on election and the followers' on deposition, in order;
    stops them in the reverse order."""

    def __init__(self, leader: list[Loop], follower: list[Loop]) -> None:
        self.leader, self.follower = leader, follower
        self._running: list[Loop] = []
        self._lock = threading.Lock()

    def lead(self) -> None:
        self._switch(self.leader)

    def follow(self) -> None:
        self._switch(self.follower)

    def stop(self) -> None:
        self._switch([])

    def _switch(self, loops: list[Loop]) -> None:
        with self._lock:
            for loop in reversed(self._running):
                try:
                    loop.stop()
                except Exception:
                    log.exception("stopping %s failed", loop.name)
            self._running = []
            for loop in loops:
                try:
                    loop.start()
                except Exception:
                    log.exception("starting %s failed", loop.name)
                self._running.append(loop)


def leader_loops(core: Podium) -> list[Loop]:
    """Every loop that must run on one server of the store at a time."""
    settings = core.settings
    checkers: list[Checker] = []  # a checker runs once: each term of leading makes its own

    def start_checker() -> None:
        checker = Checker(settings, core.store, core.checks, core.incidents)
        checkers.append(checker)
        checker.start()

    def stop_checker() -> None:
        while checkers:
            checkers.pop().close()

    return [
        core.cluster.settler().loop(),  # first: a dead server's rollout is settled before anything looks at it
        Loop("crash counter", core.crashes.start, core.crashes.close),
        Loop("pager", core.pager.run, core.pager.close),
        Loop("checker", start_checker, stop_checker),
        Every("billing-meter", lambda: settings.billing_meter_interval, core.billing.collect).loop(),
        Loop("guardrails", core.guardrails.start, core.guardrails.close),
        Loop("add-on care", core.addon_care.start, core.addon_care.close),
        Loop("certificates", core.certificates.start, core.certificates.close),
    ]


def follower_loops(core: Podium) -> list[Loop]:
    """What a follower still does on its own: write the API requests it served, for billing
    (the leader's metering writes its own)."""
    counter = core.billing.requests

    def flush_requests() -> None:
        counts = counter.drain()
        if not counts:
            return
        try:
            with core.store.session() as session:
                write_requests(session, counts)
        except Exception:
            counter.restore(counts)
            raise

    return [Every("billing-requests", lambda: core.settings.billing_meter_interval, flush_requests).loop()]
