"""The router's nginx workers, as /proc shows them: which run, which a reload started, and
waiting for the old ones to exit. A switch is over once every worker from before it is gone.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from podium.osutil import alive, proc_stat
from podium.runtime import RuntimeFailure

# An old worker exits once its in-flight requests are done, or after this many seconds
# (long polls, websockets): the bound on how long a switch waits for old workers.
WORKER_SHUTDOWN_TIMEOUT = 10
RELOAD_TIMEOUT = WORKER_SHUTDOWN_TIMEOUT + 10.0
NEW_WORKER_POLL = 0.002  # the master forks its new workers within milliseconds of a reload
WORKERS = os.cpu_count() or 1  # nginx workers, one per CPU (as `auto` would), named so a reload can count them
DRAIN_POLL = 0.005  # /proc reads only: cheap enough to notice an old worker's exit at once


@dataclass(frozen=True)
class Switch:
    """A route change nginx has taken: its new workers route by the new configuration, and
    the workers from before the reload have been told to stop accepting connections.

    Those old workers exit once their requests in flight are done; until they have, such
    a request may still be on its way to the previous ports.
    """

    old_workers: frozenset[tuple[int, int]]
    error_log: Path

    def wait_drained(self) -> None:
        """Return once every worker from before the change has exited (bounded by
        ``RELOAD_TIMEOUT``): from then on nothing routes to the previous ports."""
        wait_gone(self.old_workers, self.error_log)


def wait_gone(workers: frozenset[tuple[int, int]], error_log: Path) -> None:
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while any(alive(pid, started) for pid, started in workers):
        if time.monotonic() >= deadline:
            raise RuntimeFailure(
                f"nginx workers from before the reload still run after {RELOAD_TIMEOUT:g}s; see {error_log}"
            )
        time.sleep(DRAIN_POLL)


def children(parent: int) -> frozenset[tuple[int, int]]:
    """(pid, starttime) of the live children of ``parent``: an nginx master's workers."""
    try:  # the kernel's own list (the master has one thread); scanning /proc is the fallback
        listed = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        listed = None
    if listed is not None:
        found = ((int(pid), proc_stat(int(pid))) for pid in listed)
        return frozenset(
            (pid, int(fields[19])) for pid, fields in found if fields and fields[0] not in ("Z", "X")
        )
    children = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields and fields[0] not in ("Z", "X") and int(fields[1]) == parent:
                children.add((int(entry.name), int(fields[19])))
    return frozenset(children)


def kill(pid: int) -> None:
    send_signal(pid, signal.SIGKILL)


def send_signal(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signum)


def all_workers(master: int) -> frozenset[tuple[int, int]]:
    """The master's workers once it has forked all it runs (bounded): a reload tells its new
    workers from these, so one forked late by a fresh start must not pass for a new one."""
    deadline = time.monotonic() + RELOAD_TIMEOUT
    workers = children(master)
    while len(workers) < WORKERS and time.monotonic() < deadline and alive(master, None):
        time.sleep(NEW_WORKER_POLL)
        workers = children(master)
    return workers
