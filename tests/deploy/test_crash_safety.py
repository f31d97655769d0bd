"""Kill the Podium server (SIGKILL) during each rollout stage in turn; after a restart the
environment serves the old or the new release, never neither, the deploy is marked failed
or finished, the lock is free, and no process of a release that is not live remains.

One server process serves the whole module: each test kills it during a rollout and starts
it again on the same data dir, which is exactly what is under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import Load, create_service, deploy, env_path, follow, poll, probe_app, slug_of, upload

from podium.api.app import create_app
from podium.config import Settings
from podium.core import Podium
from podium.runtime.node import LocalNode
from podium.runtime.ports import free_port

SERVICE = "crash"
STAGING = env_path(SERVICE, "staging")
STAGES = ["unpacking", "releasing", "starting", "health_check", "switching", "draining"]
PODIUM = Path(sys.executable).parent / "podium"


class Server:
    """``podium server`` as a process of its own, killed without warning when asked."""

    def __init__(self, data_dir: Path, port: int, router_port: int) -> None:
        self.data_dir, self.port, self.router_port = data_dir, port, router_port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    def start(self) -> None:
        env = {**os.environ, "PODIUM_HEALTH_TIMEOUT": "15", "PODIUM_WATCH_WINDOW": "0"}
        command = [
            str(PODIUM), "server", "--data-dir", str(self.data_dir), "--port", str(self.port),
            "--router-port", str(self.router_port),
        ]
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def answers() -> bool:
            assert self.process is not None
            assert self.process.poll() is None, f"the server exited: {self.log.read_text()}"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            return False

        poll(answers, 60, "the Podium server to answer")  # uvicorn gives no readiness signal

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def client(self) -> httpx.Client:
        token = (self.data_dir / "admin-token").read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture(scope="module")
def slugs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """``old``: quick to start, slow to stop (so draining it takes a moment). ``new``: slow at
    every stage so that each can be caught: many files to unpack, a release command that
    takes a while, a web process that listens late. ``long-release``: a release command
    that would outlive a server restart if nothing stopped it."""
    root = tmp_path_factory.mktemp("crash-apps")
    probe_app(root / "old", marker="old", sigterm_delay=0.6)
    new = probe_app(root / "new", marker="new", release=True, release_sleep=0.6, listen_delay=0.6)
    probe_app(root / "long-release", marker="new", release=True, release_sleep=30)
    (new / "static").mkdir()
    for index in range(1500):
        (new / "static" / f"{index:04}.txt").write_text(f"asset {index}\n" * 20)
    return {name: slug_of(root / name) for name in ("old", "new", "long-release")}


@pytest.fixture(scope="module")
def server(slugs: dict[str, bytes]) -> Iterator[Server]:
    """A server with ``old`` live in staging. v1 goes live through an in-process core on the
    same data dir; the node it starts (supervisord, nginx) outlives it, as it outlives any
    Podium process, and the server finds it running."""
    data_dir = Path(tempfile.mkdtemp(prefix="pd-"))
    running = Server(data_dir, free_port(), free_port())
    try:
        settings = Settings(data_dir=data_dir, port=running.port, router_port=running.router_port)
        core = Podium(settings)
        core.start()
        try:
            token = settings.admin_token_path.read_text().strip()
            with TestClient(create_app(core), headers={"Authorization": f"Bearer {token}"}) as admin:
                create_service(admin, SERVICE)
                assert deploy(admin, SERVICE, "staging", slugs["old"]).release["status"] == "live"
        finally:
            core.close()
        yield running
    finally:
        running.kill()
        with contextlib.suppress(Exception):
            LocalNode(data_dir / "node", running.router_port).shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)


def release_processes(server: Server) -> dict[int, str]:
    """pid → PODIUM_RELEASE of every process running with this server's release environment."""
    marker = f"PODIUM_URL={server.url}".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            release = next((v for v in environ if v.startswith(b"PODIUM_RELEASE=")), b"=?")
            found[int(entry.name)] = release.partition(b"=")[2].decode()
    return found


def not_live(server: Server, live: list[str]) -> dict[int, str]:
    """pid → release of each process of a release that is not live."""
    return {pid: release for pid, release in release_processes(server).items() if release not in live}


def kill_during(server: Server, stage: str, slug: bytes) -> str:
    """Start a deploy of ``slug``, SIGKILL the server as soon as its rollout reports ``stage``;
    return the version of the release that was being rolled out."""
    with server.client() as client:
        started = upload(client, SERVICE, "staging", slug)
        assert started.status_code == 202, started.text
        version: str = started.json()["version"]
        seen: list[str] = []
        with (
            contextlib.suppress(httpx.HTTPError),  # the stream breaks when the server dies
            client.stream("GET", f"{STAGING}/releases/{version}/events") as events,
        ):
            for line in events.iter_lines():
                event: dict[str, Any] = json.loads(line)
                seen.append(event.get("stage", "final"))
                if event.get("stage") == stage:
                    server.kill()
                    break
    assert not server.running(), f"the rollout of {version} ended before reporting {stage}: {seen}"
    return version


@pytest.mark.parametrize("stage", STAGES)
def test_killed_during_a_stage_serves_old_or_new_and_recovers(
    stage: str, server: Server, slugs: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    if not server.running():
        server.start()
    load = Load(server.router_port, f"{SERVICE}.staging.localhost", pause=0.005)
    load.start()
    try:
        killed = kill_during(server, stage, slugs["long-release" if stage == "releasing" else "new"])
        served_while_down = load.requests
        server.start()
        with server.client() as client:
            interrupted = client.get(f"{STAGING}/releases/{killed}").json()
            releases = client.get(f"{STAGING}/releases").json()
            live = [r["version"] for r in releases if r["status"] == "live"]
            unsettled = [r["version"] for r in releases if r["status"] in ("pending", "deploying")]
            groups = LocalNode(server.data_dir / "node", server.router_port).supervisor.groups()
            # What the killed server had started dies with it (bwrap's --die-with-parent), as the
            # kernel delivers those SIGKILLs: on a busy machine that may end after the restart.
            with contextlib.suppress(AssertionError):  # asserted below, with what is left
                poll(lambda: not not_live(server, live), 10, "the killed server's processes to end")
            leftovers = not_live(server, live)
            accepted = upload(client, SERVICE, "staging", slugs["old"])
            assert accepted.status_code == 202, accepted.text
            after = follow(client, SERVICE, "staging", accepted.json()["version"]).release
            assert after["status"] == "live", after
        poll(lambda: load.requests > served_while_down + 20, 30, "requests after the restart")
    finally:
        load.stop()

    with capsys.disabled():
        outcome = interrupted["failure_reason"] or f"finished at {interrupted['stage']}"
        print(f"\nkilled at {stage}: {killed} {interrupted['status']} ({outcome}); "
              f"{load.requests} requests through the router, {len(load.failures)} failed")
    assert interrupted["status"] in ("failed", "live")
    if interrupted["status"] == "failed":
        assert interrupted["failure_reason"].endswith(": interrupted: Podium stopped during this stage")
    else:
        assert interrupted["stage"] == "done"
        assert interrupted["finished_at"] is not None
    assert len(live) == 1
    assert unsettled == []
    assert groups == [f"{SERVICE}_staging_{live[0]}"]
    assert leftovers == {}, f"processes of releases that are not live: {leftovers}"
    assert load.failures == [], f"{len(load.failures)} of {load.requests} failed: {load.failures[:5]}"
    assert set(load.markers) <= {"old", "new"}
