"""Probing the local runtime's web processes: each new one until it answers (the health
gate of a rollout), or each live one once (the watch after going live).

Probes go through one ``httpx.Client`` that the local runtime keeps for its lifetime
(``probe_client``): building one costs tens of milliseconds of CPU (its SSL context), on
the critical path of every rollout if each made its own. Each probe closes its connection,
as the router does, so no idle connection to an app outlives the check.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from podium import __version__
from podium.runtime.interface import HealthCheck
from podium.runtime.ports import port_accepts

PORT_POLL_SECONDS = 0.005  # a refused connect costs microseconds: look for the port often
CHECK_SECONDS = 0.05  # between probes of a port that answered badly, and between looks at the processes


PROBE_USER_AGENT = f"Podium-Health/{__version__}"
"""Every health probe says who it is (the health gate's, the watch's, the checker's), so an
app's access log, and Podium's log views, can tell probes from users."""


def probe_client() -> httpx.Client:
    """The client health probes share: no proxies from the environment, one connection per probe."""
    return httpx.Client(trust_env=False, headers={"Connection": "close", "User-Agent": PROBE_USER_AGENT})


def probe(client: httpx.Client, port: int, gate: HealthCheck) -> str | None:
    """One probe of one process: None when healthy, else why not."""
    try:
        response = client.get(f"http://127.0.0.1:{port}{gate.path}", timeout=gate.timeout)
    except httpx.HTTPError as exc:
        return f"GET {gate.path} on port {port}: {type(exc).__name__}"
    if response.status_code >= gate.max_status:
        return f"GET {gate.path} on port {port} answered {response.status_code}"
    if gate.content is not None and gate.content not in response.text:
        return f"GET {gate.path} on port {port}: body lacks {gate.content!r}"
    return None


def wait_healthy(
    client: httpx.Client, ports: list[int], gate: HealthCheck, *, still_running: Callable[[], str | None],
    interval: float = CHECK_SECONDS,
) -> str | None:
    """Probe every port until all are healthy (None) or the deadline passes (the last reason).

    A port is probed as soon as it accepts connections, which is looked for every few
    milliseconds: the app gives no signal of readiness but its answer. ``still_running`` is
    asked every ``interval`` and returns why the processes died, if they did, so a crashing
    release fails at once instead of at the deadline.
    """
    started = time.monotonic()
    pending = set(ports)
    reason = "no answer yet"
    if gate.initial_delay:
        time.sleep(gate.initial_delay)  # the app asked for this delay in app.json
    next_look = time.monotonic() + interval
    while pending:
        listening = True
        for port in sorted(pending):
            if not port_accepts(port):
                listening, reason = False, f"nothing listens on port {port} yet"
                continue
            problem = probe(client, port, gate)
            if problem is None:
                pending.discard(port)
            else:
                reason = problem
        if not pending:
            return None
        now = time.monotonic()
        if now >= next_look:
            died = still_running()
            if died is not None:
                return died
            next_look = now + interval
        if now - started > gate.deadline:
            return f"health check failed after {gate.deadline:.0f}s: {reason}"
        time.sleep(PORT_POLL_SECONDS if not listening else interval)
    return None
