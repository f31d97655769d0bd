"""One writer for the server's event batches: group commit through a bounded queue.

A request checks its events in its own thread (``events.check_batch``), hands the rows to
``EventWriter.write`` and waits. One thread takes whatever batches are waiting (up to
``GROUP_MAX``), writes them in one transaction, commits, and gives each request the number
of its rows that went in, so the answer (accepted, duplicates) is as exact as before and
nothing is acknowledged before it is committed. A failed group is written again batch by
batch, so one bad batch fails alone.

Why: SQLite has one writer at a time, and requests inserting at once wait for each other's
lock (its busy handler sleeps milliseconds at a time); a single writer never waits, pays
one commit per group, and runs SQLite's work (which releases the GIL) while the request
threads parse the next batches. The queue is bounded: when it is full a request waits,
which slows senders down instead of holding their events in memory.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from podium.experiments.events import insert_rows
from podium.store.db import Store

log = logging.getLogger(__name__)

QUEUE_BATCHES = 64
"""Batches waiting at most; a request finding the queue full waits for room."""

GROUP_MAX = 16
"""Batches written in one transaction at most."""


@dataclass(slots=True)
class _Job:
    rows: list[dict[str, Any]]
    done: Future[int] = field(default_factory=Future)


class EventWriter:
    """Writes checked event rows of one store from one thread, a group of batches per transaction."""

    def __init__(self, store: Store, *, queue_batches: int = QUEUE_BATCHES, group_max: int = GROUP_MAX) -> None:
        self.store = store
        self.group_max = group_max
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_batches)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def write(self, rows: list[dict[str, Any]]) -> int:
        """Store ``rows`` (already checked), leaving out ids stored before; how many went in, once committed."""
        with self._lock:
            if self._closed:  # shutting down: write in the caller's thread
                with self.store.session() as session:
                    return insert_rows(session, rows)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="podium-event-writer", daemon=True)
                self._thread.start()
            job = _Job(rows)
            self._queue.put(job)
        return job.done.result()

    def close(self) -> None:
        """Write every batch queued, then stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            stop = False
            while len(jobs) < self.group_max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
            self._write(jobs)
            if stop:
                return

    def _write(self, jobs: list[_Job]) -> None:
        try:
            with self.store.session() as session:
                counts = [insert_rows(session, job.rows) for job in jobs]
        except Exception:  # retried alone below, where each failure reaches its own request
            if len(jobs) == 1:
                self._fail(jobs[0])
                return
            for job in jobs:
                self._write([job])
            return
        for job, count in zip(jobs, counts, strict=True):
            job.done.set_result(count)

    def _fail(self, job: _Job) -> None:
        try:
            with self.store.session() as session:
                count = insert_rows(session, job.rows)
        except Exception as exc:  # the request that sent the batch gets the error
            log.warning("event batch not stored: %s", exc)
            job.done.set_exception(exc)
            return
        job.done.set_result(count)  # once committed
