"""Support for the billing tests: price sheets, usage records and releases written straight to the store."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

from fastapi.testclient import TestClient
from sqlalchemy import select

from podium.billing.invoice import Usage
from podium.billing.models import Meter, UsageRecord
from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Service, Team
from podium.core import Podium
from podium.deploy.models import Artifact, DeployState, Release, ReleaseStatus

SERIAL = count()


def at(text: str) -> datetime:
    """``"2026-01-31 23:59:30"`` as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def sheet(*periods: str, currency: str = "USD") -> str:
    """A price sheet from ``[[prices]]`` bodies, e.g. ``'from = 2026-01-01\\nplatform_monthly = 10'``."""
    return f'currency = "{currency}"\n' + "".join(f"\n[[prices]]\n{body.strip()}\n" for body in periods)


FLAT = """
from = 2020-01-01
platform_monthly = 100.00
[prices.meters]
process_seconds = { standard = 0.001, performance = 0.004 }
storage_byte_hours = 0.000000001
api_requests = 0.01
log_bytes = 0.000001
build_seconds = 0.002
"""


def usage(
    team: str, quantity: str | int, start: str, end: str, *, meter: Meter = Meter.PROCESS_SECONDS,
    service: str = "cart", env: str = "production", process_type: str = "", size: str = "",
) -> Usage:
    """A usage record as the invoice functions take it."""
    if meter is Meter.PROCESS_SECONDS:
        process_type, size = process_type or "web", size or "standard"
    return Usage(team=team, service=service, environment=env, meter=meter.value, process_type=process_type,
                 size=size, quantity=Decimal(quantity), unit=meter.unit, start=at(start), end=at(end))


def store_usage(core: Podium, *records: Usage) -> None:
    """Write usage records as a meter would."""
    with core.store.session() as session:
        for record in records:
            session.add(UsageRecord(
                team=record.team, service=record.service, environment=record.environment, meter=record.meter,
                process_type=record.process_type, size=record.size, quantity=record.quantity, unit=record.unit,
                start=record.start, end=record.end, source=f"test:{next(SERIAL)}",
            ))


def make_service(admin: TestClient, name: str, owner: str) -> None:
    if admin.get(f"/api/v1/teams/{owner}").status_code == 404:
        admin.post("/api/v1/teams", json={"name": owner}).raise_for_status()
    admin.post("/api/v1/services", json={"name": name, "owner": owner}).raise_for_status()


def actor_of(core: Podium, team: str) -> Actor:
    with core.store.session() as session:
        found = session.scalar(select(Team).where(Team.name == team))
        assert found is not None
        return Actor(team=team, team_id=found.id, token_id=None)


def go_live(
    core: Podium, service: str, env: str, live_at: datetime, *, formation: dict[str, int],
    sizes: dict[str, str] | None = None,
) -> int:
    """Record a new release of ``service/env`` going live at ``live_at``, superseding the live one; its id."""
    entries = {kind: {"quantity": formation[kind], "size": size} for kind, size in (sizes or {}).items()}
    app_json = {"formation": entries}
    with core.store.session() as session:
        svc = session.scalar(select(Service).where(Service.name == service))
        assert svc is not None
        environment = session.scalar(
            select(Environment).where(Environment.service_id == svc.id, Environment.name == env)
        )
        assert environment is not None
        version = len(session.scalars(select(Release.id).where(Release.environment_id == environment.id)).all()) + 1
        artifact = Artifact(
            service_id=svc.id, digest=f"sha256:{service}-{env}-{version}", size=1,
            processes={kind: "python3 app.py" for kind in formation}, app_json=app_json, created_by="test",
        )
        session.add(artifact)
        session.flush()
        state = session.get(DeployState, environment.id)
        if state is None:
            state = DeployState(environment_id=environment.id, formation={}, config={})
            session.add(state)
        if state.live_release_id is not None:
            previous = session.get(Release, state.live_release_id)
            assert previous is not None
            previous.status = ReleaseStatus.SUPERSEDED
        release = Release(
            environment_id=environment.id, version=version, artifact_id=artifact.id, config={},
            formation=formation, description="", created_by="test", status=ReleaseStatus.LIVE, live_at=live_at,
        )
        session.add(release)
        session.flush()
        state.live_release_id = release.id
        return release.id
