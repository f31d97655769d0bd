"""What the add-on tests share: a PostgreSQL server that checks passwords, and connecting as an app would.

The suite's own throwaway cluster (``tests/support/postgres.py``) trusts every local
login; these tests prove that an old password stops working, so their server asks for
one (SCRAM), as the cluster Podium runs does.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from tests.support.postgres import pg_binary

from podium.runtime.ports import free_port


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def password_cluster(base: Path) -> Iterator[str]:
    """A cluster under ``base`` whose logins need passwords; yield its superuser's URL."""
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    data, sockets, pwfile = base / "data", base / "sock", base / "pw"
    sockets.mkdir(exist_ok=True)
    password = secrets.token_urlsafe(16)
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        for path in (base, sockets, pwfile):
            shutil.chown(path, "postgres", "postgres")
    port = free_port()
    subprocess.run(
        _as_postgres([pg_binary("initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
                      "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--no-sync"]),
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
        yield f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([pg_binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False, capture_output=True,
        )


def connect(url: str, dbname: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    """A connection as an app would open it from ``DATABASE_URL`` (optionally to another database)."""
    extra = {"dbname": dbname} if dbname is not None else {}
    return psycopg.connect(url, connect_timeout=5, autocommit=True, **extra)


def refusal(url: str, dbname: str | None = None) -> str:
    """Why the server refuses a login with ``url``; fails the test if it lets it in."""
    try:
        with connect(url, dbname):
            pass
    except psycopg.OperationalError as exc:
        return str(exc)
    raise AssertionError(f"the server let {url.split('@')[0]}@… into {dbname or 'its database'}")


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with connect(url) as conn:
        return conn.execute(query).fetchall()


def databases(superuser_url: str) -> set[str]:
    with connect(superuser_url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT datname FROM pg_database")}


def roles(superuser_url: str) -> set[str]:
    with connect(superuser_url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT rolname FROM pg_roles")}
