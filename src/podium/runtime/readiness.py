"""Health gate of a rollout: probe each new web process until it answers, or give up.

Probes go through one ``httpx.Client`` that the deploy service keeps for its lifetime
(``probe_client``): building one costs tens of milliseconds of CPU (its SSL context), on
the critical path of every rollout if each made its own. Each probe closes its connection,
as the router does, so no idle connection to an app outlives the check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from podium.artifacts.appjson import AppJson
from podium.runtime.ports import port_accepts

DEFAULT_PATH = "/"
PORT_POLL_SECONDS = 0.005  # a refused connect costs microseconds: look for the port often
CHECK_SECONDS = 0.05  # between probes of a port that answered badly, and between looks at the processes


def probe_client() -> httpx.Client:
    """The client health probes share: no proxies from the environment, one connection per probe."""
    return httpx.Client(trust_env=False, headers={"Connection": "close"})


@dataclass(frozen=True)
class Gate:
    """What counts as healthy: ``path`` answering below ``max_status`` within ``deadline`` seconds."""

    path: str
    timeout: float
    max_status: int
    deadline: float
    initial_delay: float = 0.0
    content: str | None = None

    @classmethod
    def from_app_json(cls, app_json: AppJson, deadline: float) -> Gate:
        """app.json's ``healthchecks.web`` asks for a 2xx/3xx; without it, anything below 500 will do."""
        check = app_json.web_healthcheck()
        if check is None:
            return cls(path=DEFAULT_PATH, timeout=5.0, max_status=500, deadline=deadline)
        budget = max(deadline, check.initial_delay + check.attempts * (check.timeout + check.wait))
        return cls(
            path=check.path, timeout=check.timeout, max_status=400, deadline=budget,
            initial_delay=check.initial_delay, content=check.content,
        )


def probe(client: httpx.Client, port: int, gate: Gate) -> str | None:
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
    client: httpx.Client, ports: list[int], gate: Gate, *, still_running: Callable[[], str | None],
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
