"""The leader lease: PostgreSQL advisory locks held on one connection per server.

Each server opens a connection of its own to the store and keeps it for its lifetime.
On it, it holds two kinds of session-level advisory lock:

- its *server lock*, keyed by its row in ``cluster_servers``: the server is alive exactly
  while it holds it, which is how the leader knows a rollout's server is gone;
- the *leader lock*, one for the store: whoever holds it runs the background loops.

Why advisory locks and not a lease row with an expiry: PostgreSQL releases a session's
locks the moment its connection ends, and a killed process's connection ends at once
(the kernel closes the socket). A follower that asks every ``lease_interval`` seconds
therefore takes over about one interval after the leader is killed, with no clock and
no expiry to tune. A machine that vanishes without closing the socket is noticed through
TCP keepalives and a user timeout set on the connection (``lease_timeout``).

A leader that loses its connection stops its loops before it tries again; for the moment
in between, the work that must not happen twice is guarded in the store itself (the
outbox rows are locked while sent, escalations and deploy locks are conditional updates).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, insert, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from podium.cluster.models import ClusterServer
from podium.config import Settings
from podium.store.db import utcnow

log = logging.getLogger(__name__)

# The two int4 keys of an advisory lock: a class of our own, then the object.
SERVER_CLASS = 0x50444D53  # "PDMS": objid is the server's id
LEADER_CLASS = 0x50444D4C  # "PDML": objid 0, one leader per store
LOCK_SQL = text("SELECT pg_advisory_lock(CAST(:cls AS integer), CAST(:id AS integer))")
TRY_LEADER_SQL = text("SELECT pg_try_advisory_lock(CAST(:cls AS integer), 0)")
ALIVE_SQL = text(
    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = CAST(CAST(:cls AS integer) AS oid)"
    " AND objsubid = 2 AND granted"
)


def identity(settings: Settings) -> tuple[str, str]:
    """This server's name and host (the name defaults to ``<host>:<port>``)."""
    host = socket.gethostname()
    return settings.server_name or f"{host}:{settings.port}", host


def lease_engine(url: str, name: str, timeout: float) -> Engine:
    """An engine without a pool for the lease connection, with keepalives on both ends so
    that a server that vanished loses its locks after about ``timeout`` seconds."""
    idle = max(1, int(timeout / 2))
    count = max(1, int(timeout) - idle)
    options = (
        f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval=1 -c tcp_keepalives_count={count}"
        f" -c tcp_user_timeout={int(timeout * 1000)} -c statement_timeout={int(timeout * 1000)}"
    )
    connect_args: dict[str, Any] = {
        "keepalives": 1, "keepalives_idle": idle, "keepalives_interval": 1, "keepalives_count": count,
        "connect_timeout": max(2, int(timeout)), "application_name": f"podium lease {name}"[:63],
        "options": options,
    }
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)


class Lease:
    """This server's place among the servers of a PostgreSQL store, and whether it leads.

    ``on_elected`` and ``on_deposed`` run in the lease's thread; ``on_deposed`` has
    returned before the lease is tried again.
    """

    def __init__(
        self, settings: Settings, *, on_elected: Callable[[], None], on_deposed: Callable[[], None],
    ) -> None:
        assert settings.database_url is not None
        self.settings = settings
        self.name, self.host = identity(settings)
        self.engine = lease_engine(settings.database_url, self.name, settings.lease_timeout)
        self.server_id: int | None = None
        self.leader = False
        self._on_elected, self._on_deposed = on_elected, on_deposed
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def join(self) -> int:
        """Record this server and take its server lock; its id. Refuses nothing: any number may join."""
        conn = self.engine.connect()
        with conn.begin():
            server_id = conn.execute(
                insert(ClusterServer).values(
                    name=self.name[:200], host=self.host[:200], pid=os.getpid(),
                    url=self.settings.base_url[:300], started_at=utcnow(),
                ).returning(ClusterServer.id)
            ).scalar_one()
            # Before the row is visible to anyone, the lock that says it is alive is held.
            conn.execute(LOCK_SQL, {"cls": SERVER_CLASS, "id": server_id})
        self._conn, self.server_id = conn, server_id
        return server_id

    def start(self) -> None:
        """Try for the leader lock now, then every ``lease_interval`` seconds, in a thread."""
        self._tick()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop leading (the loops stop first), then end the connection, which frees the locks at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=90)
        self._depose()
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None
        self.engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.lease_interval):
            try:
                self._tick()
            except Exception:  # the lease must outlive any one look
                log.exception("lease: a look at the lease failed; trying again")

    def _tick(self) -> None:
        try:
            conn = self._connection()
            with conn.begin():
                if self.leader:
                    conn.execute(text("SELECT 1"))  # the connection lives, so the lock is still ours
                    return
                got = conn.execute(
                    TRY_LEADER_SQL, {"cls": LEADER_CLASS}
                ).scalar_one()
        except SQLAlchemyError as exc:
            log.warning("lease: the store connection failed (%s); stepping down until it is back",
                        type(exc).__name__)
            self._drop_connection()
            self._depose()
            return
        if got and not self._stop.is_set():
            self.leader = True
            log.warning("lease: server %s (%s) is now the leader", self.server_id, self.name)
            try:
                self._on_elected()
            except Exception:
                log.exception("lease: starting the leader's loops failed")

    def _connection(self) -> Connection:
        """The lease connection; a new one takes this server's lock again (same id) before anything else."""
        if self._conn is not None:
            return self._conn
        conn = self.engine.connect()
        with conn.begin():
            conn.execute(LOCK_SQL, {"cls": SERVER_CLASS, "id": self.server_id})
        self._conn = conn
        return conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None

    def _depose(self) -> None:
        if not self.leader:
            return
        self.leader = False
        log.warning("lease: server %s (%s) is no longer the leader", self.server_id, self.name)
        try:
            self._on_deposed()
        except Exception:
            log.exception("lease: stopping the leader's loops failed")


def alive_servers(conn: Connection) -> set[int]:
    """Ids of the servers that hold their server lock: those alive now."""
    return {int(row[0]) for row in conn.execute(ALIVE_SQL, {"cls": SERVER_CLASS})}
