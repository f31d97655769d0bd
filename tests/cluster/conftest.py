"""Two ``podium server`` processes on one throwaway PostgreSQL database, sharing a data dir
(so one node: supervisord and nginx), and a receiver of their pages."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster.support import Pair, Server, fresh_database
from tests.support.receiver import Receiver

from podium.runtime.node import LocalNode
from podium.runtime.ports import free_port


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.stop()


@pytest.fixture(scope="session")
def pair(postgres_url: str) -> Iterator[Pair]:
    """Servers ``a`` then ``b``; ``a`` starts first, so it leads until something happens to it."""
    data_dir = Path(tempfile.mkdtemp(prefix="pd-"))
    router_port = free_port()
    with fresh_database(postgres_url) as url:
        servers = [Server(name, data_dir, router_port, {"PODIUM_DATABASE_URL": url}) for name in ("a", "b")]
        try:
            servers[0].start()
            servers[1].start()
            yield Pair(servers)
        finally:
            for server in servers:
                server.kill()
            with contextlib.suppress(Exception):
                LocalNode(data_dir / "node", router_port).shutdown()
            shutil.rmtree(data_dir, ignore_errors=True)
