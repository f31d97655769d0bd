"""One probe of one check, and what a run of probes concludes.

``advance`` is the state machine of a check: a pure function of its counters and the
latest outcome, unit-tested with no server. ``probe`` does the network part: an HTTP GET
through the router (with the service's ``Host``) or a TCP connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx

from podium.health.models import CheckKind, CheckState
from podium.runtime.readiness import PROBE_USER_AGENT

BODY_LIMIT = 64 * 1024  # bytes of a response read for body_contains / json_field


def is_probe_line(line: str) -> bool:
    """A log line an app wrote about one of Podium's probes (it logged the user agent)."""
    return "Podium-Health/" in line


def probed(kind: str, path: str, host: str | None, port: int | None) -> str:
    """What a check probes, as a person would say it: ``GET /health``, ``TCP 127.0.0.1:5432``."""
    return f"TCP {host}:{port}" if kind == CheckKind.TCP else f"GET {path}"


@dataclass(frozen=True)
class ProbeTarget:
    """Everything the checker needs to probe one check, resolved from the store."""

    check_id: int
    service: str
    env: str
    name: str
    kind: str
    url: str = ""  # HTTP: the router's URL with the check's path
    host_header: str | None = None  # HTTP: <service>.<env>.localhost
    path: str = "/"
    host: str | None = None  # TCP
    port: int | None = None  # TCP
    interval: float = 10.0
    timeout: float = 5.0
    down_after: int = 3
    up_after: int = 2
    expect_status: int | None = None
    body_contains: str | None = None
    json_field: str | None = None

    @property
    def label(self) -> str:
        """``hello/production``, or ``hello/production (check db)`` for an extra check."""
        where = f"{self.service}/{self.env}"
        return where if self.name == "web" else f"{where} (check {self.name})"

    @property
    def request(self) -> str:
        return probed(self.kind, self.path, self.host, self.port)

    @property
    def effective_timeout(self) -> float:
        """The timeout, never longer than the interval, so one probe ends before the next is due."""
        return min(self.timeout, self.interval)


@dataclass(frozen=True)
class Outcome:
    """The result of one probe: ``error`` says why it failed, in a sentence for the incident."""

    ok: bool
    latency_ms: float
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Counters:
    """What a check has concluded so far: its state and how many results in a row agree."""

    state: CheckState = CheckState.UNKNOWN
    consecutive_ok: int = 0
    consecutive_fail: int = 0


def advance(counters: Counters, ok: bool, down_after: int, up_after: int) -> Counters:
    """The counters after one more result: down after ``down_after`` failures in a row,
    up after ``up_after`` successes in a row; otherwise the state stays what it was."""
    if ok:
        streak = counters.consecutive_ok + 1
        state = CheckState.UP if streak >= up_after else counters.state
        return Counters(state, streak, 0)
    streak = counters.consecutive_fail + 1
    state = CheckState.DOWN if streak >= down_after else counters.state
    return Counters(state, 0, streak)


def judge(target: ProbeTarget, status: int, body: bytes) -> str | None:
    """Why an HTTP answer fails the check, or None when it passes."""
    wanted = target.expect_status
    if (wanted is None and status >= 400) or (wanted is not None and status != wanted):
        return f"{target.request} answered {status}" + (f", not {wanted}" if wanted is not None else "")
    if target.body_contains is not None and target.body_contains.encode() not in body:
        return f"{target.request}: the body lacks {target.body_contains!r}"
    if target.json_field is not None:
        return json_field_problem(target, body)
    return None


def json_field_problem(target: ProbeTarget, body: bytes) -> str | None:
    """Whether the JSON body has ``a.b`` equal to ``value`` for a ``json_field`` of ``a.b=value``."""
    assert target.json_field is not None
    dotted, _, expected = target.json_field.partition("=")
    try:
        value: Any = json.loads(body)
    except ValueError:
        return f"{target.request}: the body is not JSON"
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return f"{target.request}: the JSON has no field {dotted!r}"
        value = value[key]
    if json_text(value) != expected:
        return f"{target.request}: {dotted} is {json_text(value)!r}, not {expected!r}"
    return None


def json_text(value: Any) -> str:
    """A JSON value as a check compares it: strings as they are, others as JSON (``true``, ``3``)."""
    return value if isinstance(value, str) else json.dumps(value)


async def probe(client: httpx.AsyncClient, target: ProbeTarget) -> Outcome:
    """Probe ``target`` once; never raises for what the network does."""
    if target.kind == CheckKind.TCP:
        return await probe_tcp(target)
    return await probe_http(client, target)


async def probe_http(client: httpx.AsyncClient, target: ProbeTarget) -> Outcome:
    """GET the target's URL; read at most ``BODY_LIMIT`` bytes; judge the answer."""
    started = time.perf_counter()
    timeout = target.effective_timeout
    # A connection per probe, as before the router kept client connections: a switch of any
    # route closes the router's idle connections, and a probe sent on one at that instant
    # would fail (httpx does not send it again), counting against a service that never failed.
    headers = {"User-Agent": PROBE_USER_AGENT, "Connection": "close"}
    if target.host_header:
        headers["Host"] = target.host_header
    body = bytearray()
    try:
        async with client.stream("GET", target.url, headers=headers, timeout=timeout) as response:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= BODY_LIMIT:
                    break
            status = response.status_code
    except httpx.TimeoutException:
        return Outcome(False, _ms(started), error=f"{target.request} timed out after {timeout:g}s")
    except httpx.HTTPError as exc:
        return Outcome(False, _ms(started), error=f"{target.request} failed: {type(exc).__name__}")
    latency = _ms(started)
    problem = judge(target, status, bytes(body))
    return Outcome(problem is None, latency, status, problem)


async def probe_tcp(target: ProbeTarget) -> Outcome:
    """Open a TCP connection to the target and close it again."""
    assert target.host is not None
    assert target.port is not None
    started = time.perf_counter()
    timeout = target.effective_timeout
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.port), timeout)
    except TimeoutError:
        return Outcome(False, _ms(started), error=f"{target.request} timed out after {timeout:g}s")
    except OSError as exc:
        # asyncio words a refusal as "Connect call failed (...)"; say what the errno says.
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        return Outcome(False, _ms(started), error=f"{target.request} failed: {reason}")
    latency = _ms(started)
    writer.close()
    with contextlib.suppress(OSError):  # a reset on close: the peer was reachable all the same
        await writer.wait_closed()
    return Outcome(True, latency)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
