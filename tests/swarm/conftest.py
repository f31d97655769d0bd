"""A real two-node Docker Swarm on this machine, built once per test session.

Node 1 is a dockerd of our own (its own data root, exec root and socket, so a Docker the
machine already runs is left alone) in the host's network namespace; node 2 is a second
dockerd inside a network namespace the fixture creates, entered with ``nsenter`` (``ip
netns exec`` remounts /sys and hides the cgroups). They talk over a veth pair on
10.77.0.0/24, the only addresses the tests reach besides loopback. Images reach node 2
through Debian's ``docker-registry`` on 10.77.0.1:5000. The stack image comes from
``make stack-image`` (debootstrap + ``docker import``), cached on the machine.

Teardown stops every daemon and removes the namespace; the data roots stay under
/var/lib/podium-swarm so the next run on the same machine finds the stack image.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podium.artifacts.slug import SlugLimits
from podium.runtime.ports import free_port
from podium.runtime.swarm.runtime import SwarmRuntime

ROOT = Path(__file__).resolve().parents[2]
DATA = Path("/var/lib/podium-swarm")
RUN = Path("/run/podium-swarm")
NETNS = "podium-n2"
HOST_VETH, NS_VETH = "pdm-h2", "pdm-n2"
MANAGER_ADDR, WORKER_ADDR = "10.77.0.1", "10.77.0.2"
REGISTRY = f"{MANAGER_ADDR}:5000"
DOCKER = shutil.which("docker", path="/usr/bin") or "docker"


@dataclass(frozen=True)
class Swarm:
    """How the tests reach the swarm: the manager's and the worker's Engine API sockets,
    the registry and the stack image."""

    manager_host: str  # DOCKER_HOST of node 1 (the manager)
    worker_host: str  # node 2's own engine, for what only it can show
    registry: str
    stack_image: str
    router_port: int  # one router per swarm: every Podium of the session publishes it here
    manager_addr: str = MANAGER_ADDR
    worker_addr: str = WORKER_ADDR


def run(*argv: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``ready`` until it holds (the daemons announce readiness nowhere we can wait on)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def docker(host: str, *argv: str, check: bool = True) -> str:
    return run(DOCKER, "-H", host, *argv, check=check)


def engine_answers(host: str) -> bool:
    return subprocess.run([DOCKER, "-H", host, "version"], capture_output=True, check=False).returncode == 0


def kill_pidfile(pidfile: Path) -> None:
    """Stop the daemon whose pid the file holds (a daemon of ours a previous run left) and wait for it."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether the process still runs (a child of ours that exited is reaped, not counted)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return Path(f"/proc/{pid}").exists()


class Cluster:
    """Builds and removes the swarm; every step of ``build`` has its undo in ``remove``."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def node_paths(self, name: str) -> tuple[Path, Path, str]:
        exec_root = RUN / name
        return DATA / name, exec_root, f"unix://{exec_root}/docker.sock"

    def start_dockerd(self, name: str, netns: str | None) -> str:
        data_root, exec_root, host = self.node_paths(name)
        kill_pidfile(exec_root / "docker.pid")
        shutil.rmtree(data_root / "swarm", ignore_errors=True)  # a fresh swarm every session
        data_root.mkdir(parents=True, exist_ok=True)
        exec_root.mkdir(parents=True, exist_ok=True)
        argv = [
            "dockerd", "--data-root", str(data_root), "--exec-root", str(exec_root),
            "--pidfile", str(exec_root / "docker.pid"), "-H", host,
            "--iptables=false", "--bridge=none", "--insecure-registry", REGISTRY,
        ]
        if netns is not None:
            argv = ["nsenter", f"--net=/run/netns/{netns}", *argv]
        log = exec_root / "dockerd.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        wait_for(lambda: engine_answers(host), f"dockerd {name} (log: {log})")
        return host

    def make_netns(self) -> None:
        self.remove_netns()
        run("ip", "netns", "add", NETNS)
        run("ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", NS_VETH)
        run("ip", "link", "set", NS_VETH, "netns", NETNS)
        run("ip", "addr", "add", f"{MANAGER_ADDR}/24", "dev", HOST_VETH)
        run("ip", "link", "set", HOST_VETH, "up")
        run("ip", "netns", "exec", NETNS, "ip", "addr", "add", f"{WORKER_ADDR}/24", "dev", NS_VETH)
        run("ip", "netns", "exec", NETNS, "ip", "link", "set", NS_VETH, "up")
        run("ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up")

    def remove_netns(self) -> None:
        run("ip", "link", "del", HOST_VETH, check=False)
        run("ip", "netns", "del", NETNS, check=False)

    def start_registry(self) -> None:
        base = RUN / "registry"
        kill_pidfile(base / "registry.pid")
        base.mkdir(parents=True, exist_ok=True)
        (DATA / "registry").mkdir(parents=True, exist_ok=True)
        config = base / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {DATA / 'registry'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {REGISTRY}\n"
        )
        log = base / "registry.log"
        self.logs.append(log)
        with log.open("wb") as out:
            proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs.append(proc)
        (base / "registry.pid").write_text(str(proc.pid))

        def answers() -> bool:
            return subprocess.run(["python3", "-c", f"import urllib.request; urllib.request.urlopen('http://{REGISTRY}/v2/')"],
                                  capture_output=True, check=False).returncode == 0

        wait_for(answers, f"the registry (log: {log})")

    def build(self) -> Swarm:
        self.make_netns()
        self.start_registry()
        manager = self.start_dockerd("n1", None)
        worker = self.start_dockerd("n2", NETNS)
        for host in (manager, worker):  # what a previous session's swarm left in the kept data roots
            docker(host, "container", "prune", "-f")
            docker(host, "volume", "prune", "-f")
        docker(manager, "swarm", "init", "--advertise-addr", MANAGER_ADDR)
        token = docker(manager, "swarm", "join-token", "-q", "worker")
        docker(worker, "swarm", "join", "--token", token, "--advertise-addr", WORKER_ADDR, f"{MANAGER_ADDR}:2377")
        wait_for(lambda: docker(manager, "node", "ls", "--format", "{{.Status}}").split() == ["Ready", "Ready"],
                 "both nodes ready")
        stack = run("make", "-s", "--no-print-directory", "-C", str(ROOT), "stack-image",
                    env={**os.environ, "DOCKER_HOST": manager}).splitlines()[-1]
        return Swarm(manager_host=manager, worker_host=worker, registry=REGISTRY, stack_image=stack,
                     router_port=free_port())

    def remove(self) -> None:
        for name in ("n2", "n1"):
            host = self.node_paths(name)[2]
            if engine_answers(host):
                docker(host, "swarm", "leave", "--force", check=False)
        for name in ("n2", "n1"):
            kill_pidfile(self.node_paths(name)[1] / "docker.pid")
        kill_pidfile(RUN / "registry" / "registry.pid")
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        self.remove_netns()


@pytest.fixture(scope="session")
def swarm_runtime(swarm: Swarm) -> Iterator[SwarmRuntime]:
    """The swarm runtime on the test swarm, its router on the swarm's router port."""
    limits = SlugLimits(max_bytes=10**8, max_entries=10_000, max_unpacked_bytes=10**9, max_ratio=200.0)
    runtime = SwarmRuntime(swarm.manager_host, swarm.stack_image, swarm.registry, swarm.router_port, limits)
    runtime.ensure_running()
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def swarm() -> Iterator[Swarm]:
    """The two-node swarm: built on first use, torn down at the end of the session."""
    if os.geteuid() != 0:
        pytest.fail("the swarm tests run dockerd and create a network namespace: run them as root")
    cluster = Cluster()
    try:
        yield cluster.build()
    finally:
        cluster.remove()
