"""Rollout workers shared fairly between teams.

Rollouts run on a few threads shared by every team. A plain pool hands them out first
come, first served, so one team with slow rollouts (a health check that waits long) can
hold every worker while other teams' deploys wait in line. ``TeamShares`` gives each team
at most ``per_team`` workers at once: a team's further rollouts queue behind its own, and
a free worker takes the oldest job of a team that is under its share.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


class TeamShares:
    """A thread pool whose jobs belong to teams; each team runs at most ``per_team`` at once.

    ``submit(team, fn, *args)`` returns a ``Future`` as ``ThreadPoolExecutor.submit`` does;
    ``shutdown(wait=True)`` lets every job already submitted run, then stops the threads.
    """

    def __init__(self, workers: int, per_team: int, name: str = "rollout") -> None:
        if workers < 1 or per_team < 1:
            raise ValueError("workers and per_team must be at least 1")
        self.per_team = per_team
        self._changed = threading.Condition()
        self._queues: dict[object, deque[tuple[Future[Any], Callable[[], Any]]]] = {}
        self._running: dict[object, int] = {}
        self._order: deque[object] = deque()  # teams with queued jobs, oldest first
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, team: object, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)`` as a job of ``team``."""
        future: Future[Any] = Future()
        with self._changed:
            if self._stopping:
                raise RuntimeError("cannot schedule new rollouts after shutdown")
            self._queues.setdefault(team, deque()).append((future, lambda: fn(*args, **kwargs)))
            if team not in self._order:
                self._order.append(team)
            self._changed.notify()
        return future

    def running(self, team: object) -> int:
        """Jobs of ``team`` running now."""
        with self._changed:
            return self._running.get(team, 0)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stop taking jobs; with ``cancel_futures``, drop the queued ones; with ``wait``, join the threads."""
        with self._changed:
            self._stopping = True
            if cancel_futures:
                for queue in self._queues.values():
                    for future, _ in queue:
                        future.cancel()
                self._queues.clear()
                self._order.clear()
            self._changed.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()

    def _next(self) -> tuple[object, Future[Any], Callable[[], Any]] | None:
        """The oldest queued job of a team under its share (caller holds the lock)."""
        for team in self._order:
            if self._running.get(team, 0) < self.per_team:
                queue = self._queues[team]
                future, job = queue.popleft()
                self._order.remove(team)
                if queue:
                    self._order.append(team)  # round robin: the team's next job waits its turn
                else:
                    del self._queues[team]
                self._running[team] = self._running.get(team, 0) + 1
                return team, future, job
        return None

    def _work(self) -> None:
        while True:
            with self._changed:
                picked = self._next()
                while picked is None:
                    if self._stopping and not self._queues:
                        return
                    self._changed.wait()
                    picked = self._next()
            team, future, job = picked
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job())
                    except BaseException as exc:  # handed to whoever holds the future, as an executor does
                        log.exception("a rollout job of %s failed", team)
                        future.set_exception(exc)
            finally:
                with self._changed:
                    self._running[team] -= 1
                    if not self._running[team]:
                        del self._running[team]
                    self._changed.notify_all()
