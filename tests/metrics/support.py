"""Helpers of the metrics tests: put incidents, maintenance and releases straight into the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from podium.catalog.models import Environment, Service
from podium.core import Podium
from podium.deploy.models import Artifact, Release, ReleaseCause, ReleaseStatus
from podium.health.models import Incident, IncidentState, MaintenanceWindow


class Seed:
    """Writes the rows the metrics read, as the health and deploy services would have."""

    def __init__(self, core: Podium, admin: TestClient, team_client: Callable[[str], TestClient]) -> None:
        self.core = core
        self.admin = admin
        self.team_client = team_client
        self.clients: dict[str, TestClient] = {}
        self.artifacts = 0

    def team(self, name: str) -> TestClient:
        """A client acting as team ``name`` (created on first use)."""
        if name not in self.clients:
            self.clients[name] = self.team_client(name)
        return self.clients[name]

    def service(self, name: str, owner: str) -> None:
        self.team(owner)
        self.admin.post("/api/v1/services", json={"name": name, "owner": owner}).raise_for_status()

    def _service(self, name: str) -> tuple[int, int]:
        with self.core.store.session() as session:
            service = session.scalar(select(Service).where(Service.name == name))
            assert service is not None
            return service.id, service.owner_id

    def incident(
        self, service: str, start: datetime, end: datetime | None = None, *, acknowledged: datetime | None = None,
        env: str | None = "production", cause_release: int | None = None, summary: str = "down",
    ) -> int:
        service_id, team_id = self._service(service)
        state = IncidentState.RESOLVED if end else (IncidentState.ACKNOWLEDGED if acknowledged else
                                                    IncidentState.TRIGGERED)
        with self.core.store.session() as session:
            row = Incident(
                service_id=service_id, environment=env, team_id=team_id, summary=summary, state=state,
                triggered_at=start, acknowledged_at=acknowledged, resolved_at=end, cause_release_id=cause_release,
            )
            session.add(row)
            session.flush()
            return row.id

    def maintenance(self, service: str, start: datetime, end: datetime, env: str | None = None) -> None:
        service_id, _ = self._service(service)
        with self.core.store.session() as session:
            session.add(MaintenanceWindow(service_id=service_id, environment=env, starts_at=start, ends_at=end,
                                          created_by="test"))

    def artifact(self, service: str, created: datetime) -> int:
        service_id, _ = self._service(service)
        self.artifacts += 1
        with self.core.store.session() as session:
            row = Artifact(service_id=service_id, digest=f"sha256:{self.artifacts:064x}", size=1, processes={},
                           app_json={}, created_at=created, created_by="test")
            session.add(row)
            session.flush()
            return row.id

    def release(
        self, service: str, version: int, artifact: int, live: datetime | None, *, env: str = "production",
        created: datetime | None = None, rollback_of: int | None = None, failure_reason: str | None = None,
        cause: str = ReleaseCause.DEPLOY,
    ) -> int:
        service_id, _ = self._service(service)
        with self.core.store.session() as session:
            environment = session.scalar(
                select(Environment).where(Environment.service_id == service_id, Environment.name == env)
            )
            assert environment is not None
            made = created or (live - timedelta(minutes=1) if live else datetime.now().astimezone())
            row = Release(
                environment_id=environment.id, version=version, artifact_id=artifact, config={}, formation={},
                description=f"v{version}", created_by="test", created_at=made,
                status=ReleaseStatus.SUPERSEDED if live else ReleaseStatus.FAILED, live_at=live,
                rollback_of=rollback_of, failure_reason=failure_reason, cause=cause,
            )
            session.add(row)
            session.flush()
            return row.id
