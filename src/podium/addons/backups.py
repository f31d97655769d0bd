"""Backups as files: ``pg_dump -Fc`` out, ``pg_restore`` in, a SHA-256 for each, and retention.

A dump is written to a hidden ``.partial`` file and renamed only once ``pg_dump``
succeeded and its checksum is known, so a backup file is whole or absent. A restore
checks the checksum before it touches the database, and runs in one transaction: if it
fails, the database is as it was.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from podium.addons.postgres import Endpoint, pg_binary
from podium.errors import Conflict
from podium.runtime import RuntimeFailure

CHUNK = 1024 * 1024
ERROR_TAIL = 800


@dataclass(frozen=True)
class Dumped:
    """A finished backup file."""

    path: Path
    size: int
    sha256: str
    seconds: float


@dataclass(frozen=True)
class Kept:
    """What retention needs to know of a stored backup."""

    id: int
    addon_id: int
    kind: str
    created_at: datetime


def _environment(endpoint: Endpoint) -> dict[str, str]:
    # The password goes in the environment, never on a command line that `ps` shows.
    return {**os.environ, "PGPASSWORD": endpoint.password}


def _run(argv: list[str], endpoint: Endpoint, what: str) -> None:
    done = subprocess.run(argv, env=_environment(endpoint), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip()[-ERROR_TAIL:] or f"exit status {done.returncode}"
        raise RuntimeFailure(f"{what} failed: {reason}")


def dump(endpoint: Endpoint, database: str, folder: Path, name: str) -> Dumped:
    """``pg_dump -Fc`` of ``database`` into ``folder/name``; the file appears only when complete."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    partial = folder / f".{name}.partial"
    started = time.perf_counter()
    try:
        _run([pg_binary("pg_dump"), "-Fc", "-f", str(partial), "-d", endpoint.conninfo(database, with_password=False)],
             endpoint, "pg_dump")
        os.chmod(partial, 0o600)  # a dump holds the app's data
        digest, size = sha256_of(partial), partial.stat().st_size
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return Dumped(final, size, digest, time.perf_counter() - started)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, sha256: str, backup_id: int) -> None:
    """Conflict unless the file is there and has the checksum recorded when it was taken."""
    if not path.is_file():
        raise Conflict(f"backup {backup_id} is missing its file {path}: it cannot be restored")
    found = sha256_of(path)
    if found != sha256:
        raise Conflict(f"backup {backup_id} is damaged: its SHA-256 is {found[:12]}…, "
                       f"{sha256[:12]}… was recorded; it cannot be restored")


def restore(endpoint: Endpoint, database: str, owner: str, path: Path) -> float:
    """Replace what the backup holds in ``database`` with the backup's contents, in one transaction.

    Objects are recreated as the add-on's ``owner`` role, so a backup restores into any
    add-on database of the same service. Returns the seconds ``pg_restore`` took.
    """
    started = time.perf_counter()
    _run(
        [pg_binary("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
         "--no-owner", "--no-privileges", f"--role={owner}", "-d", endpoint.conninfo(database, with_password=False),
         str(path)],
        endpoint, "pg_restore",
    )
    return time.perf_counter() - started


def prunable(backups: Iterable[Kept], now: datetime, retention: timedelta) -> list[int]:
    """The ids of backups older than ``retention``.

    Never a final backup (the last copy of a destroyed add-on), and never the newest
    backup of an add-on, however old: retention must not leave a database without one.
    """
    newest: dict[int, Kept] = {}
    candidates = list(backups)
    for backup in candidates:
        best = newest.get(backup.addon_id)
        if best is None or (backup.created_at, backup.id) > (best.created_at, best.id):
            newest[backup.addon_id] = backup
    keep = {backup.id for backup in newest.values()}
    return sorted(
        backup.id for backup in candidates
        if backup.kind != "final" and backup.id not in keep and now - backup.created_at > retention
    )


def backup_name(at: datetime, kind: str, token: str) -> str:
    """``20261201T030000Z-scheduled-1a2b3c.dump``: sorts by time, says why, never collides."""
    return f"{at:%Y%m%dT%H%M%SZ}-{kind}-{token}.dump"
