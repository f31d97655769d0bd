"""Stopping this machine's node and saying what runs on it, through the ``Runtime`` interface.

Apps outlive the server on purpose (a restart of Podium drops no request); ``podium node
stop`` is how they, the router, the embedded PostgreSQL and the process supervisor go.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from sqlalchemy import select

from podium.addons.postgres import GROUP as POSTGRES_GROUP
from podium.catalog.models import Environment
from podium.core import Podium
from podium.deploy.models import Release, ReleaseStatus
from podium.errors import Conflict
from podium.runtime import RuntimeFailure
from podium.runtime.interface import ProcessState, ReleaseRef


@dataclass(frozen=True)
class NodeStatus:
    """What runs on the node now; ``running`` is False when its supervisor does not answer."""

    running: bool
    processes: list[ProcessState]
    why_not: str = ""


def server_answers(core: Podium) -> bool:
    """Whether something listens on the server's address (a Podium server of this data dir)."""
    try:
        with socket.create_connection((core.settings.host, core.settings.port), timeout=0.5):
            return True
    except OSError:
        return False


def node_status(core: Podium) -> NodeStatus:
    """The live releases' processes and the platform's own (the embedded PostgreSQL)."""
    with core.store.session() as session:
        live = session.execute(
            select(Environment, Release.version)
            .join(Release, Release.environment_id == Environment.id)
            .where(Release.status == ReleaseStatus.LIVE)
        )
        refs = [ReleaseRef(environment.service.name, environment.name, version) for environment, version in live]
    try:
        processes = core.runtime.all_live_processes(refs)
        postgres = core.runtime.platform_status(POSTGRES_GROUP)
    except RuntimeFailure as failure:
        return NodeStatus(False, [], str(failure))
    return NodeStatus(True, processes + ([postgres] if postgres is not None else []))


def stop_node(core: Podium) -> None:
    """Stop every app, the router, the embedded PostgreSQL and the supervisor; refused while
    the server runs (it would start them again at its next deploy)."""
    if server_answers(core):
        raise Conflict(
            f"a server answers on {core.settings.base_url}: stop it first (Ctrl-C, or systemctl stop podium)"
        )
    core.runtime.shutdown()
