"""The cluster as the core sees it: this server's id, whether it leads, and the secrets all share.

On PostgreSQL any number of servers join one store, and the lease (``lease.py``) elects
the one that runs the background loops. On SQLite the store is a file of one machine and
one server: a second server on it is refused at start, and the one server always leads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from podium.cluster.lease import Lease, alive_servers, identity
from podium.cluster.loops import Every, Loop, Runner
from podium.cluster.models import ClusterSecret, ClusterServer
from podium.cluster.settle import settle_orphans
from podium.config import Settings
from podium.deploy.models import DeployState
from podium.errors import Conflict
from podium.runtime.interface import Runtime
from podium.store.db import Store, utcnow

FORGET_AFTER = timedelta(minutes=10)  # how long the row of a server that is gone is kept
WEB_SECRET = "web-signer"  # noqa: S105  (the name of the row, not a secret)


class Cluster:
    """This server among those sharing the store."""

    def __init__(self, settings: Settings, store: Store, runtime: Runtime) -> None:
        """``runtime`` is the one every server of the store drives: the leader settles the
        rollouts of servers that are gone through it."""
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.name, self.host = identity(settings)
        self.shared = store.engine.dialect.name == "postgresql"  # may several servers share the store?
        self.server_id: int | None = None  # once joined; the deploy service records it on its locks
        self._lease: Lease | None = None
        self._runner: Runner | None = None
        self._guard: IO[str] | None = None
        self._single_leader = False

    @property
    def leader(self) -> bool:
        """Whether this server runs the background loops now."""
        if self._lease is not None:
            return self._lease.leader
        return self._single_leader

    def join(self) -> int:
        """Become one of the store's servers; on SQLite, refuse when another server holds the store."""
        if self.server_id is not None:  # joined already: start_runtime called again
            return self.server_id
        if self.shared:
            self._lease = Lease(self.settings, on_elected=self._elected, on_deposed=self._deposed)
            self.server_id = self._lease.join()
        else:
            self._guard = _hold_sqlite_store(self.store.url, self.settings)
            with self.store.session() as session:
                self.server_id = session.execute(
                    insert(ClusterServer).values(
                        name=self.name[:200], host=self.host[:200], pid=os.getpid(),
                        url=self.settings.base_url[:300], started_at=utcnow(),
                    ).returning(ClusterServer.id)
                ).scalar_one()
        return self.server_id

    def run(self, leader: list[Loop], follower: list[Loop]) -> None:
        """Run ``leader`` while this server leads and ``follower`` while it does not."""
        self._runner = Runner(leader, follower)
        if self._lease is None:
            self._single_leader = True
            self._runner.lead()
            return
        self._runner.follow()
        self._lease.start()

    def settler(self) -> Every:
        """The leader's loop that settles the rollouts of servers that are gone."""
        return Every("settle", lambda: self.settings.lease_interval, self.settle)

    def settle(self) -> list[str]:
        """Settle the rollouts whose server is gone, then forget the servers gone for a while; what was done."""
        if self.server_id is None:
            return []
        alive = self.alive()
        done = settle_orphans(self.store, self.runtime, alive, self.server_id)
        forget = (
            select(ClusterServer.id)
            .where(
                ClusterServer.id.not_in(alive),
                # a younger row may belong to a server that joined after ``alive`` was read
                ClusterServer.started_at < utcnow() - FORGET_AFTER,
                ClusterServer.id.not_in(select(DeployState.lock_server).where(DeployState.lock_server.is_not(None))),
            )
        )
        with self.store.session() as session:
            gone = list(session.scalars(forget))  # read first: no write transaction each round for nothing
        if gone:
            with self.store.session() as session:
                session.execute(
                    delete(ClusterServer).where(ClusterServer.id.in_(gone)).execution_options(synchronize_session=False)
                )
        return done

    def alive(self) -> set[int]:
        """Ids of the servers alive now (on SQLite, this one)."""
        if not self.shared:
            return {self.server_id} if self.server_id is not None else set()
        with self.store.engine.connect() as conn:
            return alive_servers(conn)

    def web_secret(self) -> bytes:
        """The key the web pages sign with: the setting, or one kept in the store for every server."""
        if self.settings.web_secret:
            return self.settings.web_secret.encode()
        with self.store.session() as session:
            row = session.get(ClusterSecret, WEB_SECRET)
            if row is not None:
                return bytes.fromhex(row.value)
        with contextlib.suppress(IntegrityError), self.store.session() as session:  # another server won: use its
            session.add(ClusterSecret(name=WEB_SECRET, value=secrets.token_hex(32)))
        with self.store.session() as session:
            row = session.get(ClusterSecret, WEB_SECRET)
            assert row is not None
            return bytes.fromhex(row.value)

    def _elected(self) -> None:
        if self._runner is not None:
            self._runner.lead()

    def _deposed(self) -> None:
        if self._runner is not None:
            self._runner.follow()

    def close(self) -> None:
        """Stop the loops and leave: on PostgreSQL another server takes the lead at its next look."""
        if self._lease is not None:
            self._lease.close()  # stops leading first, which switches to the followers' loops
            self._lease = None
        if self._runner is not None:
            self._runner.stop()
        self._single_leader = False
        if self._guard is not None:
            self._guard.close()  # frees the SQLite store for the next server
            self._guard = None


def _hold_sqlite_store(url: str, settings: Settings) -> IO[str]:
    """Lock ``<store>.server`` for this process's lifetime, or say which server holds it.

    An advisory file lock: the kernel frees it when the process dies, however it dies.
    """
    database = make_url(url).database
    path = Path(f"{database}.server") if database else settings.data_dir / "podium.db.server"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise Conflict(
            f"another Podium server ({holder}) already runs on the SQLite store {database}: SQLite serves one "
            "server; stop that one, or move the store to PostgreSQL (PODIUM_DATABASE_URL) to run several"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, {settings.base_url}")
    handle.flush()
    return handle
