"""A throwaway PostgreSQL cluster from the machine's binaries, for tests.

PostgreSQL refuses to run as root, so when the tests run as root the cluster runs as the
``postgres`` system user in a directory it owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from podium.runtime.ports import free_port

PG_BIN_DIRS = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]


def pg_binary(name: str) -> str:
    for directory in PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found")
    return found


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@contextmanager
def postgres_cluster(base: Path) -> Iterator[str]:
    """Start a cluster under ``base``; yield a superuser SQLAlchemy URL; stop it afterwards."""
    base.mkdir(parents=True, exist_ok=True)
    data, sockets = base / "data", base / "sock"
    sockets.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([pg_binary("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]),
        check=True, capture_output=True,
    )
    subprocess.run(
        _as_postgres([
            pg_binary("pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
            "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
        ]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([pg_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False, capture_output=True,
        )
