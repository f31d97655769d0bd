"""Operating-system helpers every part of Podium shares: files replaced atomically, files
only their owner reads, what ``/proc`` says about a process, and the last lines of a log."""

from __future__ import annotations

import os
import pwd
import struct
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


ACL_XATTR = "system.posix_acl_access"
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF


def _acl_entries(folder: Path) -> list[tuple[int, int, int]]:
    """The folder's access ACL as (tag, permissions, id) entries; the mode's three when it has none."""
    try:
        acl = os.getxattr(folder, ACL_XATTR)
    except OSError:
        acl = b""
    if len(acl) >= 12:
        return [struct.unpack_from("<HHI", acl, 4 + 8 * i) for i in range((len(acl) - 4) // 8)]
    mode = folder.stat().st_mode
    return [(ACL_USER_OBJ, (mode >> 6) & 7, ACL_UNDEFINED_ID), (ACL_GROUP_OBJ, (mode >> 3) & 7, ACL_UNDEFINED_ID),
            (ACL_OTHER, mode & 7, ACL_UNDEFINED_ID)]


def may_search(folder: Path, uid: int) -> bool:
    """Whether user ``uid`` (not root; its groups are not looked at) may search ``folder``."""
    info = folder.stat()
    if info.st_uid == uid:
        return bool(info.st_mode & 0o100)
    entries = _acl_entries(folder)
    mask = next((perm for tag, perm, _ in entries if tag == ACL_MASK), 7)
    named = [perm for tag, perm, ident in entries if tag == ACL_USER and ident == uid]
    if named:
        return bool(named[0] & mask & 1)
    return bool(info.st_mode & 0o001)


def grant_search(folder: Path, uid: int) -> None:
    """Add ``uid`` with search rights to the folder's ACL, keeping every other entry."""
    entries = [entry for entry in _acl_entries(folder) if not (entry[0] == ACL_USER and entry[2] == uid)]
    entries.append((ACL_USER, 1, uid))
    group = next(perm for tag, perm, _ in entries if tag == ACL_GROUP_OBJ)
    mask = next((perm for tag, perm, _ in entries if tag == ACL_MASK), group)
    entries = [entry for entry in entries if entry[0] != ACL_MASK] + [(ACL_MASK, mask | 1, ACL_UNDEFINED_ID)]
    entries.sort(key=lambda entry: (entry[0], entry[2]))  # the kernel wants them by tag, then id
    acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
    try:
        os.setxattr(folder, ACL_XATTR, acl)
    except OSError:  # no ACLs on this file system
        folder.chmod(folder.stat().st_mode | 0o001)
