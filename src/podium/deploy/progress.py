"""Rollout progress that clients can follow while it happens."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from podium.deploy.models import ReleaseStatus, Stage
from podium.store.db import utcnow

# A finished rollout's events stay this long for a client that comes to follow it late
# (its final record stays in the store); then they go, so the board does not grow forever.
KEEP_DONE_SECONDS = 300.0


@dataclass
class _Feed:
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False


class ProgressBoard:
    """Per release id, the events of its rollout, with waiting for the next one.

    A rollout's events are dropped ``keep_done`` seconds after its last one; a follower
    already reading them reads on to the end.
    """

    def __init__(self, keep_done: float = KEEP_DONE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._feeds: dict[int, _Feed] = {}
        self._done: deque[tuple[float, int]] = deque()  # (when, release id), oldest first
        self._changed = threading.Condition()
        self._keep_done = keep_done
        self._clock = clock

    def post(
        self, release_id: int, *, stage: Stage, status: ReleaseStatus, message: str = "", done: bool = False
    ) -> None:
        """Record an event and wake every follower."""
        with self._changed:
            now = self._clock()
            self._forget_done(now)
            feed = self._feeds.setdefault(release_id, _Feed())
            feed.events.append(
                {"at": utcnow().isoformat(), "stage": str(stage), "status": str(status), "message": message}
            )
            if done and not feed.done:
                self._done.append((now, release_id))
            feed.done = feed.done or done
            self._changed.notify_all()

    def known(self, release_id: int) -> bool:
        """Whether the board holds the release's events: it is under way, or ended recently."""
        with self._changed:
            self._forget_done(self._clock())
            return release_id in self._feeds

    def follow(self, release_id: int, timeout: float = 600.0) -> Iterator[dict[str, Any]]:
        """Every event of a release so far, then each new one, until the rollout is done;
        nothing for a release the board does not hold."""
        seen = 0
        with self._changed:
            feed = self._feeds.get(release_id)
        if feed is None:
            return

        def moved() -> bool:
            return len(feed.events) > seen or feed.done

        while True:
            with self._changed:
                self._changed.wait_for(moved, timeout=timeout)
                new, done = feed.events[seen:], feed.done
            yield from new
            seen += len(new)
            if done or not new:
                return

    def forget(self, release_ids: Iterable[int]) -> None:
        """Drop these releases' events at once (their service is deleted): a store may give
        a new service's releases the same ids, and its followers must not see old events."""
        with self._changed:
            for release_id in release_ids:
                self._feeds.pop(release_id, None)
            self._done = deque((when, rid) for when, rid in self._done if rid in self._feeds)

    def _forget_done(self, now: float) -> None:
        while self._done and now - self._done[0][0] >= self._keep_done:
            _, release_id = self._done.popleft()
            self._feeds.pop(release_id, None)
