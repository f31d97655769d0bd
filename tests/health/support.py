"""Support for the health tests: store factories for releases, and an endpoint's state."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Service, Team
from podium.core import Podium
from podium.deploy.models import Artifact, DeployState, Release, ReleaseStatus
from podium.store.db import utcnow


@dataclass
class Endpoint:
    """What the test endpoint answers, changed by the test as it goes."""

    status: int = 200
    body: str = '{"status": "ok"}'
    delay: float = 0.0
    hosts: list[str] = field(default_factory=list)


def make_service(admin: TestClient, name: str, owner: str) -> str:
    if admin.get(f"/api/v1/teams/{owner}").status_code == 404:
        admin.post("/api/v1/teams", json={"name": owner}).raise_for_status()
    admin.post("/api/v1/services", json={"name": name, "owner": owner}).raise_for_status()
    return name


def actor_of(core: Podium, team: str) -> Actor:
    """An actor for ``team`` (no token), as a verb of the core would receive it."""
    with core.store.session() as session:
        found = session.scalar(select(Team).where(Team.name == team))
        assert found is not None
        return Actor(team=team, team_id=found.id, token_id=None)


def live_release(
    core: Podium, service: str, env: str, *, formation: dict[str, int] | None = None,
    app_json: dict[str, Any] | None = None, live_at: datetime | None = None,
) -> int:
    """Record release vN of ``service/env`` as live, as a finished rollout leaves the store.

    No process runs: the checker's probes go to the router port, where the test's own
    endpoint answers. Returns the release's version.
    """
    with core.store.session() as session:
        svc = session.scalar(select(Service).where(Service.name == service))
        assert svc is not None
        environment = session.scalar(
            select(Environment).where(Environment.service_id == svc.id, Environment.name == env)
        )
        assert environment is not None
        count = len(session.scalars(select(Release.id).where(Release.environment_id == environment.id)).all())
        artifact = Artifact(
            service_id=svc.id, digest=f"sha256:{service}{env}{count}", size=1, processes={"web": "python3 app.py"},
            app_json=app_json or {}, created_by="web",
        )
        session.add(artifact)
        session.flush()
        release = Release(
            environment_id=environment.id, version=count + 1, artifact_id=artifact.id, config={},
            formation=formation if formation is not None else {"web": 1}, description="", created_by="web",
            status=ReleaseStatus.LIVE, live_at=live_at or utcnow(),
        )
        session.add(release)
        session.flush()
        state = session.get(DeployState, environment.id)
        if state is None:
            state = DeployState(environment_id=environment.id, formation={}, config={})
            session.add(state)
        state.live_release_id = release.id
        return release.version


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy: the checker gives no event to await."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
