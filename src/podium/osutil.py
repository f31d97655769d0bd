"""Operating-system helpers every part of Podium shares: files replaced atomically, files
only their owner reads, what ``/proc`` says about a process, and the last lines of a log."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

OWNER_ONLY = 0o600
TAIL_LINES = 20
TAIL_BYTES = 64 * 1024  # enough for the last lines of any log; never the whole file


def atomic_write(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` at once: a reader sees the old file or the new one,
    never a part. The parent directory is made if missing; ``mode`` is set before the
    file appears (a leftover temporary file keeps its old mode on open: it is set again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
    if mode is not None:
        os.fchmod(fd, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def write_private(path: os.PathLike[str] | str, text: str, *, mode: int = OWNER_ONLY) -> None:
    """Write a file only its owner can read (0600 unless ``mode`` says otherwise), atomically."""
    atomic_write(Path(path), text, mode=mode)


def proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state is [0], ppid [1],
    starttime [19]); None when the process does not exist."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (0 if it does not run): tells a reused pid apart."""
    fields = proc_stat(pid)
    try:
        return int(fields[19]) if fields is not None else 0
    except (IndexError, ValueError):
        return 0


def alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (and is the process that started at ``started``); a zombie
    nobody has reaped yet counts as gone."""
    fields = proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def user_of(pid: int) -> str | None:
    """The name of the user ``pid`` runs as (its real uid), or its uid when it has no name;
    None when the process does not exist."""
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a file (read from at most its last 64 KiB); empty when
    it cannot be read. Invalid UTF-8 shows as U+FFFD."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - TAIL_BYTES))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
