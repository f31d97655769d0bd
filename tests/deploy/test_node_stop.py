"""``podium node stop|status`` as the operator of a node meets them: apps outlive the server,
and the node stops only when asked, with the server stopped first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.deploy.support import create_service, deploy, probe_app, slug_of, through_router

from podium.config import Settings
from podium.core import Podium


def podium(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PODIUM_PORT": str(settings.port), "PODIUM_ROUTER_PORT": str(settings.router_port)}
    return subprocess.run(
        [str(Path(sys.executable).parent / "podium"), "node", *args, "--data-dir", str(settings.data_dir)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def test_node_stop_stops_what_outlived_the_server(
    live_server: Any, core: Podium, settings: Settings, tmp_path: Path
) -> None:
    with live_server.client() as client:
        create_service(client, "probe")
        assert deploy(client, "probe", "staging", slug_of(probe_app(tmp_path / "app"))).release["status"] == "live"

    refused = podium(settings, "stop")
    assert refused.returncode != 0
    assert "a server answers" in refused.stderr
    assert through_router(settings.router_port, "probe.staging.localhost").status_code == 200

    live_server.stop()
    core.close()  # as when the server exits: the apps keep running
    assert through_router(settings.router_port, "probe.staging.localhost").status_code == 200
    status = podium(settings, "status")
    assert status.returncode == 0, status.stderr
    assert "server: not running" in status.stdout
    assert "node: running" in status.stdout
    assert "probe/staging" in status.stdout
    assert "RUNNING" in status.stdout

    stopped = podium(settings, "stop")
    assert stopped.returncode == 0, stopped.stderr
    with pytest.raises(httpx.ConnectError):  # the router is gone, and the app with it
        through_router(settings.router_port, "probe.staging.localhost")
    assert "node: stopped" in podium(settings, "status").stdout
