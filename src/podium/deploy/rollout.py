"""The rollout of one release on the local node, stage by stage.

unpack → build venv → release command → start on fresh ports → health gate → switch
the router (live) → drain the old processes once no router worker can reach them. Any
failure before the switch stops the new processes and leaves the old release serving: a
broken release never takes traffic.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from podium.artifacts.appjson import AppJson
from podium.artifacts.build import ensure_venv
from podium.artifacts.slug import SlugLimits, unpack_slug
from podium.deploy.health import Gate, wait_healthy
from podium.errors import PodiumError
from podium.runtime.node import Node
from podium.runtime.router import Switch
from podium.runtime.stamp import StampedOutput
from podium.runtime.supervisor import ProcessInfo, ProcessSpec

RELEASE_COMMAND_TIMEOUT = 300.0
# Run "$0" (the release command) once Podium says "go" on stdin; the command gets stdin at its end.
RELEASE_COMMAND_GATE = 'read -r go && [ "$go" = go ] && exec /bin/sh -c "$0"'
DEAD_STATES = {"FATAL", "EXITED", "BACKOFF", "STOPPED", "UNKNOWN"}
LOG_TAIL_LINES = 20


class RolloutFailed(PodiumError):
    """A rollout stage failed; ``log_tail`` holds the last lines the app printed."""

    status_code = 422

    def __init__(self, detail: str, log_tail: str = "") -> None:
        super().__init__(detail)
        self.log_tail = log_tail


@dataclass(frozen=True)
class Target:
    """Everything a rollout needs to know about the release it rolls out."""

    service: str
    env: str
    version: int
    artifact_path: Path
    digest: str
    processes: dict[str, str]
    app_json: AppJson
    config: dict[str, str]
    formation: dict[str, int]
    public_url: str
    podium_token: str = ""  # the environment's app token: definitions, evaluate and events only
    sdk_path: str = ""  # where ``import podium.sdk`` finds the application SDK (podium.sdk.bundle)


def group_name(service: str, env: str, version: int) -> str:
    """The supervisord group of release vN of a service environment."""
    return f"{service}_{env}_v{version}"


def route_name(service: str, env: str) -> str:
    return f"{service}_{env}"


def hostnames(service: str, env: str) -> list[str]:
    """``<service>.<env>.localhost``, and ``<service>.localhost`` for production."""
    names = [f"{service}.{env}.localhost"]
    if env == "production":
        names.append(f"{service}.localhost")
    return names


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class EnvLayout:
    """Where a service environment keeps its unpacked apps and logs on the node."""

    def __init__(self, root: Path, service: str, env: str) -> None:
        self.base = root / service / env
        self.apps = self.base / "apps"
        self.logs = self.base / "logs"

    def app_dir(self, digest: str) -> Path:
        return self.apps / digest.removeprefix("sha256:")[:16]

    def log_file(self, version: int, process: str) -> Path:
        return self.logs / f"v{version}.{process}.log"

    def release_log(self, version: int) -> Path:
        return self.logs / f"v{version}.release.log"

    @property
    def release_pid(self) -> Path:
        """``<pid> <start time>`` of the release command while it runs."""
        return self.base / "release.pid"


class Rollout:
    """The stages of one rollout; ``on_stage`` is told as each one begins."""

    def __init__(
        self,
        node: Node,
        layout: EnvLayout,
        target: Target,
        *,
        limits: SlugLimits,
        venv_cache: Path,
        health_deadline: float,
        log_max_bytes: int,
        on_stage: Callable[[str, str], None],
        probes: httpx.Client,
    ) -> None:
        self.node = node
        self.layout = layout
        self.target = target
        self.limits = limits
        self.venv_cache = venv_cache
        self.health_deadline = health_deadline
        self.log_max_bytes = log_max_bytes
        self.on_stage = on_stage
        self.probes = probes
        self.group = group_name(target.service, target.env, target.version)

    # Stages ----------------------------------------------------------------------------

    def unpack(self) -> Path:
        """Unpack the slug, unless this environment has it unpacked already (rollbacks)."""
        app_dir = self.layout.app_dir(self.target.digest)
        if (app_dir / "app" / "Procfile").exists():
            self.on_stage("unpacking", "already unpacked")
            return app_dir / "app"
        self.on_stage("unpacking", "")
        if app_dir.exists():
            shutil.rmtree(app_dir)
        app_dir.parent.mkdir(parents=True, exist_ok=True)
        unpack_slug(self.target.artifact_path, app_dir, self.limits)
        return app_dir / "app"

    def build(self, app: Path) -> Path | None:
        """The release's virtualenv, built once per requirements file content."""
        requirements = app / "requirements.txt"
        if not requirements.exists():
            return None
        venv, built = ensure_venv(requirements, self.venv_cache)
        self.on_stage("building", "built a virtualenv" if built else "virtualenv cached")
        return venv

    def environment(self, venv: Path | None, port: int | None) -> dict[str, str]:
        """Config vars over app.json defaults, plus what Podium tells every process."""
        env = {**self.target.app_json.env_defaults(), **self.target.config}
        env.update(
            PODIUM_SERVICE=self.target.service,
            PODIUM_ENV=self.target.env,
            PODIUM_RELEASE=f"v{self.target.version}",
            PODIUM_URL=self.target.public_url,
            PYTHONUNBUFFERED="1",
        )
        if self.target.podium_token:
            env["PODIUM_TOKEN"] = self.target.podium_token
        if self.target.sdk_path:  # after the app's own PYTHONPATH, so a vendored copy wins
            env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), self.target.sdk_path) if p)
        if venv is not None:
            env["VIRTUAL_ENV"] = str(venv)
            env["PATH"] = f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        if port is not None:
            env["PORT"] = str(port)
        return env

    def release_command(self, app: Path, venv: Path | None) -> None:
        """Run the Procfile's ``release`` command; its failure aborts the rollout."""
        command = self.target.processes.get("release")
        if command is None:
            return
        self.on_stage("releasing", command)
        log = self.layout.release_log(self.target.version)
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(app)}
        env.update(self.environment(venv, None))
        # The command runs in a session of its own, so that it can be killed with every
        # process it started: on a timeout here, or by start-up recovery (through the pid
        # file) if Podium itself dies meanwhile. It starts only once the pid file is written:
        # until then it waits for "go" on its stdin, and a Podium that dies first closes the
        # pipe, so the command never runs. Nothing of it runs on unwatched.
        # Its output is stamped line by line, like every process's log.
        with StampedOutput(log, self.log_max_bytes) as sink:
            process = subprocess.Popen(
                ["/bin/sh", "-c", RELEASE_COMMAND_GATE, command], cwd=app, env=env, stdin=subprocess.PIPE,
                stdout=sink.fileno(), stderr=subprocess.STDOUT, start_new_session=True,
            )
        assert process.stdin is not None
        pid_file = self.layout.release_pid
        try:
            with process.stdin:
                _atomic_write(pid_file, f"{process.pid} {_start_time(process.pid)}\n")
                process.stdin.write(b"go\n")
            try:
                returncode = process.wait(timeout=RELEASE_COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
                sink.drain(5)
                raise RolloutFailed(
                    f"release command timed out after {RELEASE_COMMAND_TIMEOUT:.0f}s", tail(log)
                ) from None
        finally:
            pid_file.unlink(missing_ok=True)
        sink.drain(5)  # every line written before the log is read or the next stage starts
        if returncode != 0:
            raise RolloutFailed(f"release command exited with status {returncode}", tail(log))

    def specs(self, app: Path, venv: Path | None, ports: dict[str, int]) -> list[ProcessSpec]:
        """One process spec per formation slot: ``web-1``, ``web-2``, ``worker-1``…"""
        specs = []
        for kind, quantity in sorted(self.target.formation.items()):
            if kind == "release":
                continue
            for index in range(1, quantity + 1):
                name = f"{kind}-{index}"
                specs.append(
                    ProcessSpec(
                        name=name,
                        command=self.target.processes[kind],
                        directory=app,
                        environment=self.environment(venv, ports.get(name)),
                        log_file=self.layout.log_file(self.target.version, name),
                        log_max_bytes=self.log_max_bytes,
                    )
                )
        return specs

    def web_ports(self) -> dict[str, int]:
        """A fresh port for every web process of the formation."""
        return {
            f"web-{i}": self.node.allocate_port() for i in range(1, self.target.formation.get("web", 0) + 1)
        }

    def start(self, specs: list[ProcessSpec]) -> None:
        """Start the formation's processes as one group; a formation scaled to zero starts none."""
        self.on_stage("starting", f"{len(specs)} process(es)")
        if not specs:
            return
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        self.node.supervisor.add_group(self.group, specs)

    def _why_dead(self) -> str | None:
        for info in self.node.supervisor.group_status(self.group):
            if info.state in DEAD_STATES:
                # supervisord knows the exit status only of a process that had reached RUNNING;
                # for one that exited too quickly (BACKOFF, FATAL) it says so in the description.
                known = info.state == "EXITED" and info.exit_status is not None
                why = f"exit status {info.exit_status}" if known else info.description or "no details"
                return f"process {info.name} is {info.state} ({why})"
        return None

    def health_gate(self, ports: dict[str, int], specs: list[ProcessSpec]) -> None:
        """Wait until every new web process answers its health check, or fail the rollout."""
        if ports:
            gate = Gate.from_app_json(self.target.app_json, self.health_deadline)
            self.on_stage("health_check", f"GET {gate.path} on {len(ports)} process(es)")
            problem = wait_healthy(self.probes, list(ports.values()), gate, still_running=self._why_dead)
            if problem is not None:
                raise RolloutFailed(problem, self.logs_of(specs))
        elif specs:
            self.on_stage("health_check", "waiting for the processes to stay up")
            try:
                self.node.supervisor.wait_running(self.group, timeout=self.health_deadline)
            except PodiumError as exc:
                raise RolloutFailed(exc.detail, self.logs_of(specs)) from None

    def switch(self, ports: dict[str, int]) -> Switch | None:
        """Point the router at the new web processes (a graceful nginx reload). Returns once
        nginx routes new connections to them, with the reload whose old workers may still be
        finishing requests to the previous release (None when there is nothing to wait for)."""
        name = route_name(self.target.service, self.target.env)
        self.on_stage("switching", "")
        if ports:
            return self.node.router.switch_route(
                name, hostnames(self.target.service, self.target.env), list(ports.values())
            )
        self.node.router.remove_route(name)
        return None

    def routed(self) -> list[int] | None:
        """The ports the router sends this environment's hostnames to now; None if it has no route."""
        return self.node.router.routes().get(route_name(self.target.service, self.target.env))

    def switch_back(self, ports: list[int] | None) -> None:
        """Undo a switch: route to ``ports`` again (those routed before it), or to nothing."""
        name = route_name(self.target.service, self.target.env)
        if ports:
            self.node.router.set_route(name, hostnames(self.target.service, self.target.env), ports)
        else:
            self.node.router.remove_route(name)

    def stop_new(self) -> None:
        """Undo a failed rollout: its processes go, the old release never stopped."""
        self.node.supervisor.remove_group(self.group)

    def logs_of(self, specs: list[ProcessSpec]) -> str:
        parts = []
        for spec in specs[:2]:
            text = tail(spec.log_file)
            if text:
                parts.append(f"--- {spec.name}\n{text}")
        return "\n".join(parts)


def stop_orphan_release_command(layout: EnvLayout) -> int | None:
    """Kill the release command (and its children) a killed Podium left running; its pid, if one was."""
    try:
        pid_text, started_text = layout.release_pid.read_text().split()
        pid, started = int(pid_text), int(started_text)
    except (OSError, ValueError):
        return None
    finally:
        layout.release_pid.unlink(missing_ok=True)
    if _start_time(pid) != started:  # gone, and the pid may belong to another process by now
        return None
    _kill_group(pid)
    return pid


def _start_time(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (0 if it does not run): tells a reused pid apart."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


def running_group_infos(node: Node, group: str) -> list[ProcessInfo]:
    try:
        return node.supervisor.group_status(group)
    except PodiumError:
        return []
