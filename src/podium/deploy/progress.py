"""Rollout progress that clients can follow while it happens."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from podium.store.db import utcnow


@dataclass
class _Feed:
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False


class ProgressBoard:
    """Per release id, the events of its rollout, with waiting for the next one."""

    def __init__(self) -> None:
        self._feeds: dict[int, _Feed] = {}
        self._changed = threading.Condition()

    def post(self, release_id: int, *, stage: str, status: str, message: str = "", done: bool = False) -> None:
        """Record an event and wake every follower."""
        with self._changed:
            feed = self._feeds.setdefault(release_id, _Feed())
            feed.events.append(
                {"at": utcnow().isoformat(), "stage": stage, "status": status, "message": message}
            )
            feed.done = feed.done or done
            self._changed.notify_all()

    def known(self, release_id: int) -> bool:
        with self._changed:
            return release_id in self._feeds

    def follow(self, release_id: int, timeout: float = 600.0) -> Iterator[dict[str, Any]]:
        """Every event of a release so far, then each new one, until the rollout is done."""
        seen = 0
        with self._changed:
            feed = self._feeds.setdefault(release_id, _Feed())

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
