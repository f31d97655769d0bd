"""Logs from the engine: ``docker service logs --timestamps`` of a release's services, each
line as ``<UTC time> v<N> <type>-<slot>: <text>``, as the local runtime shows them."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from docker import DockerClient
from docker.errors import APIError

from podium.runtime.swarm.services import parse_service_name

FOLLOW_POLL_SECONDS = 0.5
# With details, the engine puts the task's labels between the time and the text.
LINE = re.compile(r"^(\S+) (?:(\S*com\.docker\.swarm\.\S*) )?(.*)$")


def _stamp(raw: str) -> str:
    """Nanoseconds cut to microseconds: ``2026-12-06T04:35:17.359354Z``."""
    return re.sub(r"\.(\d{6})\d*Z$", r".\1Z", raw)


def _slots(client: DockerClient, service_id: str) -> dict[str, int]:
    try:
        return {task["ID"]: int(task.get("Slot") or 0) for task in client.api.tasks(filters={"service": service_id})}
    except APIError:
        return {}


def service_lines(client: DockerClient, svc: Any, lines: int | str, since: int | None = None) -> list[tuple[str, str]]:
    """``(time, formatted line)`` of one service's last ``lines`` lines (``"all"`` for all)."""
    parsed = parse_service_name(svc.name)
    if parsed is None:
        return []
    _, version, process_type = parsed
    kwargs: dict[str, Any] = {"since": since} if since else {}
    try:
        raw = client.api.service_logs(svc.id, stdout=True, stderr=True, timestamps=True, details=True,
                                      tail=lines, **kwargs)
    except APIError:
        return []
    text = b"".join(raw) if not isinstance(raw, bytes) else raw
    slots = _slots(client, svc.id)
    found = []
    for line in text.decode(errors="replace").splitlines():
        match = LINE.match(line)
        if not match:
            continue
        stamp, details, body = match.groups()
        task = dict(item.split("=", 1) for item in (details or "").split(",") if "=" in item)
        slot = slots.get(task.get("com.docker.swarm.task.id", ""), 0)
        when = _stamp(stamp)
        found.append((when, f"{when} v{version} {process_type}-{slot}: {body}"))
    return found


def _matches(line: str, process: str | None) -> bool:
    if process is None:
        return True
    source = line.split(" ", 3)[2].rstrip(":") if line.count(" ") >= 3 else ""
    return source == process or source.rsplit("-", 1)[0] == process


def read(client: DockerClient, services: Iterable[Any], lines: int, process: str | None) -> list[str]:
    """The last ``lines`` lines of these services, oldest first, one process or type if asked."""
    stamped = [item for svc in services for item in service_lines(client, svc, lines)]
    stamped.sort(key=lambda item: item[0])
    kept = [line for _, line in stamped if _matches(line, process)]
    return kept[-lines:] if lines > 0 else []


async def follow(
    client: DockerClient, list_services: Callable[[], list[Any]], process: str | None,
) -> AsyncGenerator[str, None]:
    """New lines as the engine gets them, until cancelled (polled: the engine's follow stream
    blocks a thread per service, and services come and go with releases)."""
    seen: set[str] = set()
    since: int | None = None
    first = True
    while True:
        services = await asyncio.to_thread(list_services)
        batch: list[tuple[str, str]] = []
        for svc in services:
            batch.extend(await asyncio.to_thread(service_lines, client, svc, "all" if since else 0, since))
        batch.sort(key=lambda item: item[0])
        for _, line in batch:
            if line not in seen:
                seen.add(line)
                if not first and _matches(line, process):
                    yield line
        first = False
        since = int(time.time()) - 2  # whole seconds: overlap, and the seen lines drop repeats
        if len(seen) > 10_000:
            seen = {line for _, line in batch}
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
