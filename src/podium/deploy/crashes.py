"""The crash counter of live releases: every restart of a live process is a crash,
recorded on its release and counted for that process.

It looks at every live release of the store, whichever server deployed it, so one server
runs it at a time: the leader (``podium.cluster.loops``), or the only server.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from sqlalchemy import select

from podium.catalog.models import Environment
from podium.deploy.models import Release, ReleaseStatus
from podium.runtime.interface import ReleaseRef, Runtime
from podium.store.db import Store, utcnow

log = logging.getLogger(__name__)
# Each look is a look at the runtime (a supervisord RPC, which also wakes supervisord to
# notice and restart a dead process at once instead of on its next one-second tick).
CRASH_POLL_SECONDS = 0.2


class CrashCounter:
    """Counts the crashes of live releases in a thread, from ``start`` to ``close``; it can
    be started again after a close (a server that leads again)."""

    def __init__(self, store: Store, runtime: Runtime) -> None:
        self.store = store
        self.runtime = runtime
        self._pids: dict[tuple[ReleaseRef, str], int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop = threading.Event()  # a thread of an earlier start may still be finishing its look
        self._pids = {}  # restarts while another server counted were counted there
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="crash-counter", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(CRASH_POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # the counter must outlive a passing store or runtime error
                log.exception("crash counter")

    def poll(self) -> None:
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
