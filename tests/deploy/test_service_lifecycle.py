"""A service deleted and made again under its name, as a user meets it: the old one stops
answering, its logs and audit trail are archived, and the new one starts clean."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import create_service, deploy, env_path, probe_app, slug_of, through_router

from podium.api.app import create_app
from podium.config import Settings
from podium.core import Podium
from podium.runtime.interface import ReleaseRef
from podium.runtime.ports import free_port

PROBE = env_path("probe", "staging")


def test_a_deleted_service_stops_answering_and_its_name_starts_clean(
    admin: TestClient, core: Podium, settings: Settings, tmp_path: Path
) -> None:
    create_service(admin, "probe")
    first = deploy(admin, "probe", "staging", slug_of(probe_app(tmp_path / "one", marker="old")))
    assert first.release["status"] == "live"
    assert through_router(settings.router_port, "probe.staging.localhost").json()["marker"] == "old"
    assert "v1" in admin.get(f"{PROBE}/logs").text

    deleted = admin.delete("/api/v1/services/probe")
    assert deleted.status_code == 204, deleted.text
    assert through_router(settings.router_port, "probe.staging.localhost").status_code != 200
    assert core.runtime.all_live_processes([ReleaseRef("probe", "staging", 1)]) == []
    assert not (settings.data_dir / "deploy" / "probe").exists()

    [archive] = (settings.data_dir / "archive").iterdir()
    assert archive.name == deleted.headers["Podium-Archive"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        audit = json.load(tar.extractfile("probe/audit.json"))  # type: ignore[arg-type]
    assert any(name.startswith("probe/logs/staging/v1.web-1.log") for name in names)
    assert [e["action"] for e in audit][:1] == ["service.delete"]
    assert "service.create" in [e["action"] for e in audit]

    create_service(admin, "probe")
    assert admin.get(f"{PROBE}/releases").json() == []
    assert admin.get(f"{PROBE}/logs").text == ""
    again = deploy(admin, "probe", "staging", slug_of(probe_app(tmp_path / "two", marker="new")))
    assert (again.release["version"], again.release["status"]) == ("v1", "live")
    assert [e["stage"] for e in again.events].count("pending") == 1  # its own events, not the old v1's
    assert through_router(settings.router_port, "probe.staging.localhost").json()["marker"] == "new"


@pytest.fixture
def relative_core(monkeypatch: pytest.MonkeyPatch) -> Iterator[Podium]:
    """A core started as ``make run`` starts it: data dir ``.podium``, relative to the cwd."""
    cwd = Path(tempfile.mkdtemp(prefix="pr-"))  # short: supervisord's socket path
    monkeypatch.chdir(cwd)
    settings = Settings(data_dir=Path(".podium"), port=free_port(), router_port=free_port(), watch_window=0.0)
    podium = Podium(settings)
    podium.start()
    yield podium
    podium.close()
    if podium.deploys.runtime_started:
        podium.runtime.shutdown()
    shutil.rmtree(cwd, ignore_errors=True)


def test_an_app_with_requirements_deploys_from_a_relative_data_dir(relative_core: Podium, tmp_path: Path) -> None:
    assert relative_core.settings.data_dir == Path.cwd() / ".podium"
    with TestClient(create_app(relative_core)) as client:
        client.headers["Authorization"] = f"Bearer {relative_core.settings.admin_token_path.read_text().strip()}"
        create_service(client, "probe")
        app = probe_app(tmp_path / "app", marker="venv")
        (app / "requirements.txt").write_text("# nothing to install\n")
        os.chdir(tmp_path)  # the server may be asked from anywhere once started
        rollout = deploy(client, "probe", "staging", slug_of(app))
    assert rollout.release["status"] == "live", rollout.events
    assert "building" in rollout.stages
    port = relative_core.settings.router_port
    assert through_router(port, "probe.staging.localhost").json()["marker"] == "venv"
