"""The base domain names every app: a server started again with another one serves its live
apps under the new names at once, without a deploy."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from tests.deploy.support import create_service, deploy, probe_app, slug_of, through_router

from podium.config import Settings
from podium.core import Podium


def test_a_restart_with_another_base_domain_serves_the_live_apps_under_it(
    admin: TestClient, core: Podium, settings: Settings, tmp_path: Path
) -> None:
    create_service(admin, "probe")
    assert deploy(admin, "probe", "production", slug_of(probe_app(tmp_path / "a", marker="live"))).release[
        "status"] == "live"
    assert through_router(settings.router_port, "probe.localhost").json()["marker"] == "live"
    core.close()

    moved = Podium(settings.model_copy(update={"base_domain": "apps.test"}))
    moved.start()
    try:
        recovered = moved.start_runtime()
        assert "probe/production: routed to the live release again" in recovered
        for host in ("probe.production.apps.test", "probe.apps.test"):
            assert through_router(settings.router_port, host).json()["marker"] == "live"
        assert through_router(settings.router_port, "probe.localhost").status_code == 404
    finally:
        moved.close()
