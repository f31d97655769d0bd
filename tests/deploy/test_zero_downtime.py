"""Zero downtime: clients looping through the router see no failed request across rollouts."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import Load, await_change, deploy, env_path, probe_app, slug_of

from podium.config import Settings


def test_no_request_fails_across_deploys_config_change_and_rollback(
    admin: TestClient, service: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slugs = [slug_of(probe_app(tmp_path / f"v{n}", marker=f"build-{n}", sigterm_delay=0.2)) for n in (1, 2, 3)]
    first = deploy(admin, service, "staging", slugs[0])
    assert first.release["status"] == "live"
    load = Load(settings.router_port, f"{service}.staging.localhost")
    load.start()
    try:
        for slug in slugs[1:]:
            assert deploy(admin, service, "staging", slug).release["status"] == "live"
        config = admin.patch(f"{env_path(service, 'staging')}/config", json={"set": {"CFG_COLOUR": "blue"}})
        assert await_change(config, admin, service, "staging").release["status"] == "live"
        rollback = admin.post(f"{env_path(service, 'staging')}/rollback", json={"to": "v2"})
        assert await_change(rollback, admin, service, "staging").release["status"] == "live"
        ramp_down = load.requests + 200  # a last stretch on the final release
        while load.requests < ramp_down and load.running():
            time.sleep(0.05)
    finally:
        load.stop()

    with capsys.disabled():
        print(f"\nzero downtime: {load.requests} requests, {len(load.failures)} failed, {load.retried} sent again "
              f"on a new connection; by build {dict(load.markers)}")
    assert load.failures == [], f"{len(load.failures)} of {load.requests} failed: {Counter(load.failures)}"
    assert load.requests >= 500
    assert set(load.markers) == {"build-1", "build-2", "build-3"}
