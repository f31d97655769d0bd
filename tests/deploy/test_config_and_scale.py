"""Config vars and scale: what is refused up front, and scaling to zero and back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import await_change, deploy, env_path, probe_app, slug_of, through_router

from podium.config import Settings
from podium.core import Podium


@pytest.mark.parametrize(
    ("key", "value"),
    [("FOO\n", "x"), ("1ABC", "x"), ("A-B", "x"), ("PORT", "80"), ("PODIUM_RELEASE", "v9"), ("OK", "nul\0byte")],
)
def test_bad_config_var_is_refused_and_changes_nothing(
    admin: TestClient, service: str, key: str, value: str
) -> None:
    staging = env_path(service, "staging")
    admin.patch(f"{staging}/config", json={"set": {"CFG_GOOD": "1"}}).raise_for_status()

    refused = admin.patch(f"{staging}/config", json={"set": {key: value}})

    assert refused.status_code == 422, refused.text
    assert admin.get(f"{staging}/config").json() == {"CFG_GOOD": "1"}


def test_config_vars_reach_the_processes(
    admin: TestClient, service: str, settings: Settings, tmp_path: Path
) -> None:
    staging = env_path(service, "staging")
    admin.patch(f"{staging}/config", json={"set": {"CFG_QUOTES": "it's \"quoted\" $HOME `x`\nline 2"}})

    assert deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1"))).release["status"] == "live"

    env = through_router(settings.router_port, f"{service}.staging.localhost").json()["env"]
    assert env["CFG_QUOTES"] == "it's \"quoted\" $HOME `x`\nline 2"
    assert (env["PODIUM_SERVICE"], env["PODIUM_ENV"], env["PODIUM_RELEASE"]) == (service, "staging", "v1")


def test_scale_to_zero_and_back(
    admin: TestClient, core: Podium, service: str, settings: Settings, tmp_path: Path
) -> None:
    staging = env_path(service, "staging")
    host = f"{service}.staging.localhost"
    assert deploy(admin, service, "staging", slug_of(probe_app(tmp_path / "v1"))).release["status"] == "live"

    stopped = await_change(admin.post(f"{staging}/scale", json={"web": 0}), admin, service, "staging")

    assert (stopped.release["status"], stopped.release["formation"]) == ("live", {"web": 0})
    assert through_router(settings.router_port, host).status_code == 404
    assert admin.get(f"{staging}/ps").json() == []
    assert [g for g in core.runtime.supervisor.groups() if g.startswith(f"{service}_")] == []

    again = await_change(admin.post(f"{staging}/scale", json={"web": 1}), admin, service, "staging")

    assert again.release["status"] == "live"
    assert through_router(settings.router_port, host).status_code == 200


def test_only_those_who_may_change_config_can_read_it(
    admin: TestClient, team_client: Callable[[str], TestClient], service: str
) -> None:
    staging = env_path(service, "staging")
    admin.patch(f"{staging}/config", json={"set": {"CFG_SECRET": "hunter2"}}).raise_for_status()
    owner, other = team_client("web"), team_client("search")

    assert owner.get(f"{staging}/config").json() == {"CFG_SECRET": "hunter2"}
    refused = other.get(f"{staging}/config")
    assert refused.status_code == 403, refused.text
    assert "hunter2" not in refused.text
    assert other.patch(f"{staging}/config", json={"set": {"CFG_SECRET": "x"}}).status_code == 403
