"""Listing releases costs the same number of SQL statements however many are listed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from tests.deploy.support import env_path

from podium.catalog.models import Environment, Service
from podium.core import Podium
from podium.deploy.models import Artifact, Release, ReleaseCause, ReleaseStatus

RELEASES = 50
ARTIFACTS = 7


def seed_releases(core: Podium, service: str, env: str) -> dict[int, str]:
    """``RELEASES`` superseded releases over ``ARTIFACTS`` artifacts; version → its digest."""
    digests: dict[int, str] = {}
    with core.store.session() as session:
        svc = session.scalar(select(Service).where(Service.name == service))
        assert svc is not None
        environment = session.scalar(
            select(Environment).where(Environment.service_id == svc.id, Environment.name == env)
        )
        assert environment is not None
        artifacts = [
            Artifact(service_id=svc.id, digest=f"sha256:{n:064x}", size=1, processes={"web": "app"}, app_json={},
                     created_by="web")
            for n in range(ARTIFACTS)
        ]
        session.add_all(artifacts)
        session.flush()
        for version in range(1, RELEASES + 1):
            artifact = artifacts[version % ARTIFACTS]
            session.add(Release(
                environment_id=environment.id, version=version, artifact_id=artifact.id, config={},
                formation={"web": 1}, description=f"v{version}", created_by="web",
                status=ReleaseStatus.SUPERSEDED, cause=ReleaseCause.SCALE if version % 2 else ReleaseCause.DEPLOY,
            ))
            digests[version] = artifact.digest
    return digests


def statements_of(core: Podium, call: Any) -> tuple[int, Any]:
    """How many SQL statements ``call()`` sent to the store, and what it returned."""
    sent: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(core.store.engine, "before_cursor_execute", count)
    try:
        result = call()
    finally:
        event.remove(core.store.engine, "before_cursor_execute", count)
    return len(sent), result


def test_listing_50_releases_costs_the_statements_of_listing_5(
    admin: TestClient, core: Podium, service: str
) -> None:
    digests = seed_releases(core, service, "staging")
    url = f"{env_path(service, 'staging')}/releases"

    few, short = statements_of(core, lambda: admin.get(url, params={"limit": 5}))
    many, long = statements_of(core, lambda: admin.get(url, params={"limit": RELEASES}))

    assert short.status_code == long.status_code == 200
    assert len(short.json()) == 5
    assert len(long.json()) == RELEASES
    assert many == few, f"{few} statements for 5 releases, {many} for {RELEASES}"
    for row in long.json():  # each with its own artifact's digest and its cause
        version = int(row["version"].removeprefix("v"))
        assert row["digest"] == digests[version]
        assert row["cause"] == ("scale" if version % 2 else "deploy")
