"""Reading the logs of a service environment: the last lines, and following new ones."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from podium.deploy.rollout import tail

FOLLOW_POLL_SECONDS = 0.25


def source_of(path: Path) -> str:
    """``v3.web-1.log`` → ``v3 web-1``: which release and process a log file belongs to."""
    version, _, rest = path.name.partition(".")
    return f"{version} {rest.removesuffix('.log')}"


def read_logs(files: list[Path], lines: int) -> list[str]:
    """The last ``lines`` lines over all files, in time order, each tagged with its source.

    Lines start with the time they were written, so sorting them merges the files.
    """
    tagged = []
    for path in files:
        source = source_of(path)
        for line in tail(path, lines).splitlines():
            stamp, _, text = line.partition(" ")
            tagged.append((stamp, f"{stamp} {source}: {text}\n"))
    return [line for _, line in heapq.nlargest(lines, tagged)][::-1]


async def follow_logs(list_files: Callable[[], list[Path]]) -> AsyncIterator[str]:
    """New lines as they are written to any current log file (new files are picked up)."""
    offsets = {path: path.stat().st_size for path in list_files() if path.exists()}
    while True:
        await asyncio.sleep(FOLLOW_POLL_SECONDS)  # plain files offer no change event to await
        for path in list_files():
            try:
                size = path.stat().st_size
            except OSError:
                continue
            start = offsets.get(path, 0)
            if size < start:  # rotated
                start = 0
            if size == start:
                continue
            with path.open("rb") as handle:
                handle.seek(start)
                data = handle.read(size - start)
            complete, _, _ = data.rpartition(b"\n")
            offsets[path] = start + len(complete) + (1 if complete else 0)
            source = source_of(path)
            for raw in complete.decode(errors="replace").splitlines():
                stamp, _, text = raw.partition(" ")
                yield f"{stamp} {source}: {text}\n"
