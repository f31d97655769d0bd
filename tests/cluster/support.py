"""Real ``podium server`` processes sharing one PostgreSQL store and one data dir (one node)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.deploy.support import poll

from podium.runtime.ports import free_port

PODIUM = Path(sys.executable).parent / "podium"
FAST = {
    "PODIUM_LEASE_INTERVAL": "0.5",
    "PODIUM_HEALTH_TIMEOUT": "20",
    "PODIUM_WATCH_WINDOW": "0",
    "PODIUM_CHECK_INTERVAL": "0.3",
    "PODIUM_CHECK_TIMEOUT": "1",
    "PODIUM_CHECK_SYNC_INTERVAL": "0.3",
    "PODIUM_PAGING_POLL_INTERVAL": "0.2",
    "PODIUM_PAGING_RETRY_INITIAL": "0.3",
    "PODIUM_PAGING_RETRY_MAX": "0.5",
    "PODIUM_PAGING_MAX_ATTEMPTS": "10000",
}


@contextmanager
def fresh_database(superuser_url: str) -> Iterator[str]:
    """A new, empty database on the throwaway cluster; dropped afterwards."""
    name = f"podium_{uuid.uuid4().hex[:12]}"
    admin = create_engine(superuser_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(superuser_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


class Server:
    """``podium server`` as a process of its own, killed without warning when asked."""

    def __init__(self, name: str, data_dir: Path, router_port: int, env: dict[str, str]) -> None:
        self.name, self.data_dir, self.router_port = name, data_dir, router_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **FAST, "PODIUM_SERVER_NAME": name, **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"server-{name}.log"

    def start(self, wait: bool = True) -> None:
        command = [
            str(PODIUM), "server", "--data-dir", str(self.data_dir), "--port", str(self.port),
            "--router-port", str(self.router_port),
        ]
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                command, env=self.env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            poll(self._answers, 90, f"server {self.name} to answer")  # uvicorn gives no readiness signal

    def _answers(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, f"server {self.name} exited: {self.log.read_text()[-3000:]}"
        return self.health() is not None

    def health(self) -> dict[str, Any] | None:
        """What ``/healthz`` says, or None when the server does not answer."""
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{self.url}/healthz", timeout=2)
            if answer.status_code == 200:
                found: dict[str, Any] = answer.json()
                return found
        return None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine loses power."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def client(self) -> httpx.Client:
        token = (self.data_dir / "admin-token").read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


class Pair:
    """Two servers on one store; either may be down at a time, and is started again when asked."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers

    def up(self) -> None:
        """Both servers running (one killed by an earlier test starts again)."""
        for server in self.servers:
            if not server.running():
                server.start()

    def leader(self, timeout: float = 20) -> Server:
        """The one running server that says it leads; fails unless exactly one does, in time."""
        def single() -> Server | None:
            leading = [s for s in self.servers if s.running() and (s.health() or {}).get("leader")]
            return leading[0] if len(leading) == 1 else None

        found: Server = poll(single, timeout, "exactly one leader")
        return found

    def other(self, server: Server) -> Server:
        return next(s for s in self.servers if s is not server)
