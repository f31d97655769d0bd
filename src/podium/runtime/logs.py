"""Reading the logs of a service environment: the last lines, and following new ones.

Every line a process prints is stored as ``<UTC time> <text>``, e.g.
``2026-11-28T04:20:00.123456Z listening on 5000`` (see ``podium.runtime.stamp``). Each
file is in time order; past its size limit it moves to ``<file>.1``, which moves to
``<file>.2``. Reading merges the files by time, reaching into those backups when the
current files hold fewer lines than asked for, and tags each line with its source.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import re
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

from podium.runtime.stamp import backups_of

FOLLOW_POLL_SECONDS = 0.25
BLOCK_BYTES = 64 * 1024
STAMP_RE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z")
NO_STAMP = "-"  # what a line without a time (and no line before it) sorts and shows as

Stamped = tuple[str, str]  # (time, the line as the reader gets it)


def source_of(path: Path) -> str:
    """``v3.web-1.log`` → ``v3 web-1``: which release and process a log file belongs to."""
    version, _, rest = path.name.partition(".")
    return f"{version} {rest.removesuffix('.log')}"


def parse_lines(raw_lines: Iterable[bytes], source: str, stamp: str = NO_STAMP) -> Iterator[Stamped]:
    """``(time, "<time> <source>: <text>\\n")`` for each stored line, in order.

    A line that does not start with a time (written before lines were stamped, or by
    supervisord before the stamper started) takes the time of the line before it, so
    merging keeps it in place. Invalid UTF-8 shows as U+FFFD.
    """
    for raw in raw_lines:
        head, space, rest = raw.partition(b" ")
        if space and STAMP_RE.fullmatch(head):
            stamp, raw = head.decode("ascii"), rest
        text = raw.decode(errors="replace").removesuffix("\r")
        yield stamp, f"{stamp} {source}: {text}\n"


def last_lines(path: Path, count: int) -> list[bytes]:
    """The last ``count`` lines of one file, oldest first, without their newlines."""
    if count <= 0:
        return []
    try:
        handle = path.open("rb")
    except OSError:
        return []
    blocks: list[bytes] = []
    newlines = 0
    with handle:
        start = handle.seek(0, os.SEEK_END)
        while start > 0 and newlines <= count:
            size = min(BLOCK_BYTES, start)
            start -= size
            handle.seek(start)
            blocks.append(handle.read(size))
            newlines += blocks[-1].count(b"\n")
    lines = b"".join(reversed(blocks)).split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if start > 0:
        lines = lines[1:]  # the first piece may be the end of a longer line
    return lines[-count:]


def read_file(path: Path, lines: int) -> list[Stamped]:
    """The last ``lines`` lines written to ``path``, from its backups as well when needed."""
    raw = last_lines(path, lines)
    for backup in backups_of(path):
        if len(raw) >= lines:
            break
        raw = last_lines(backup, lines - len(raw)) + raw
    return list(parse_lines(raw, source_of(path)))


def read_logs(files: list[Path], lines: int) -> list[str]:
    """The last ``lines`` lines over all files, in time order, each tagged with its source.

    Each file is already in time order, so a stable merge keeps lines printed in the same
    instant in the order they were printed.
    """
    merged = heapq.merge(*(read_file(path, lines) for path in files), key=itemgetter(0))
    return [line for _, line in deque(merged, maxlen=lines)]


class _Followed:
    """One log file being followed: an open handle, the file it is, a line not yet ended."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self.handle = handle
        stat = os.fstat(handle.fileno())
        self.identity = (stat.st_dev, stat.st_ino)
        self.pending = b""
        self.stamp = NO_STAMP
        self.source = source_of(path)

    @classmethod
    def open(cls, path: Path, *, at_end: bool) -> _Followed | None:
        try:
            handle = path.open("rb")
        except OSError:
            return None
        if at_end:
            handle.seek(0, os.SEEK_END)
        return cls(path, handle)

    def read_new(self, *, final: bool = False) -> list[Stamped]:
        """Lines completed since the last read; ``final`` also ends a line left unended."""
        if os.fstat(self.handle.fileno()).st_size < self.handle.tell():  # truncated in place
            self.handle.seek(0)
        complete, newline, self.pending = (self.pending + self.handle.read()).rpartition(b"\n")
        raw = complete.split(b"\n") if newline else []
        if final and self.pending:
            raw.append(self.pending)
            self.pending = b""
        lines = list(parse_lines(raw, self.source, self.stamp))
        if lines:
            self.stamp = lines[-1][0]
        return lines

    def close(self) -> None:
        self.handle.close()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _read_followed(followed: dict[Path, _Followed], path: Path) -> list[Stamped]:
    """New lines of ``path``; after a rotation, the rest of the old file, then the new one."""
    state = followed.get(path)
    if state is None:  # a file that appeared while following: all of it is new
        state = _Followed.open(path, at_end=False)
        if state is None:
            return []
        followed[path] = state
    lines = state.read_new()
    current = _identity(path)
    if current is None or current == state.identity:
        return lines
    lines += state.read_new(final=True)
    state.close()
    del followed[path]
    newer = backups_of(path)[0]  # rotated twice since the last look: a whole file in between
    if _identity(newer) not in (None, state.identity, current):
        between = _Followed.open(newer, at_end=False)
        if between is not None:
            lines += between.read_new(final=True)
            between.close()
    return lines + _read_followed(followed, path)


async def follow_logs(list_files: Callable[[], list[Path]]) -> AsyncGenerator[str, None]:
    """New lines as they are written to any current log file (new files are picked up),
    each poll's lines merged by time. Lines survive rotation, unless a file is rotated
    three times between two polls."""
    followed: dict[Path, _Followed] = {}
    for path in list_files():
        state = _Followed.open(path, at_end=True)
        if state is not None:
            followed[path] = state
    try:
        while True:
            await asyncio.sleep(FOLLOW_POLL_SECONDS)  # plain files offer no change event to await
            paths = list_files()
            batch: list[Stamped] = []
            for path in paths:
                batch += _read_followed(followed, path)
            for gone in set(followed) - set(paths):
                followed.pop(gone).close()
            for _, line in sorted(batch, key=itemgetter(0)):
                yield line
    finally:
        for state in followed.values():
            state.close()
