"""Health gate of a rollout: probe each new web process until it answers, or give up."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from podium.artifacts.appjson import AppJson

DEFAULT_PATH = "/"


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
    ports: list[int], gate: Gate, *, still_running: Callable[[], str | None], interval: float = 0.05
) -> str | None:
    """Probe every port until all are healthy (None) or the deadline passes (the last reason).

    ``still_running`` is asked between probes and returns why the processes died, if they
    did, so a crashing release fails at once instead of at the deadline.
    """
    started = time.monotonic()
    pending = set(ports)
    reason = "no answer yet"
    with httpx.Client() as client:
        if gate.initial_delay:
            time.sleep(gate.initial_delay)  # the app asked for this delay in app.json
        while pending:
            for port in sorted(pending):
                problem = probe(client, port, gate)
                if problem is None:
                    pending.discard(port)
                else:
                    reason = problem
            if not pending:
                return None
            died = still_running()
            if died is not None:
                return died
            if time.monotonic() - started > gate.deadline:
                return f"health check failed after {gate.deadline:.0f}s: {reason}"
            time.sleep(interval)  # the app gives no signal of readiness but its answer
    return None
