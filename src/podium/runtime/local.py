"""The local runtime: releases run on this machine under supervisord, behind Podium's nginx.

A release is a supervisord group ``<service>_<env>_v<N>`` of processes ``web-1``,
``worker-1``…, each on a fresh port, started from the slug unpacked once per digest into
``<data dir>/deploy/<service>/<env>/apps/`` and a virtualenv built once per requirements
file. A route is an nginx site per environment, switched with a graceful reload. Logs are
stamped files under the environment's ``logs/``. See ``podium.runtime.interface`` for what
each member guarantees, and ``docs/runtime.md``.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from podium.artifacts.build import ensure_venv
from podium.artifacts.slug import SlugLimits, unpack_slug
from podium.errors import NotFound, PodiumError
from podium.osutil import user_of
from podium.runtime.interface import (
    CustomDomain,
    Draining,
    HealthCheck,
    PlatformProcess,
    PreparedRelease,
    PrepareStep,
    ProcessState,
    ReleaseFailed,
    ReleaseRef,
    ReleaseSpec,
    RouteState,
    RunningRelease,
    Serving,
)
from podium.runtime.layout import EnvLayout
from podium.runtime.logs import follow_logs, read_logs
from podium.runtime.naming import LOCAL_DOMAIN, group_name, group_prefix, hostnames, route_name
from podium.runtime.node import LocalNode
from podium.runtime.readiness import probe, probe_client, wait_healthy
from podium.runtime.release_command import last_lines, run_release_command, stop_orphan_release_command
from podium.runtime.router import Router
from podium.runtime.sandbox import Confinement, Sandbox
from podium.runtime.supervisor import ProcessInfo, ProcessSpec, Supervisor

NODE = "local"
LOOPBACK = "127.0.0.1"
DEAD_STATES = {"FATAL", "EXITED", "BACKOFF", "STOPPED", "UNKNOWN"}
ENVIRONMENTS = ("staging", "production")

log = logging.getLogger(__name__)


class _Drained:
    """A route change with nothing left to wait for."""

    def wait_drained(self) -> None:
        return None


class _RouteCheck:
    """``Router.check_route`` of a release's route, run in a thread beside the health gate."""

    def __init__(self, router: Router, running: RunningRelease, hosts: list[str]) -> None:
        ref = running.ref
        self._refused: PodiumError | None = None
        args = (route_name(ref.service, ref.env), hosts, list(running.ports.values()))
        self._thread = threading.Thread(target=self._run, args=(router, *args), name="route-check", daemon=True)
        self._thread.start()

    def _run(self, router: Router, name: str, hosts: list[str], ports: list[int]) -> None:
        try:
            router.check_route(name, hosts, ports)
        except PodiumError as exc:
            self._refused = exc
        except Exception:  # not nginx's verdict: the switch runs its own test
            log.exception("could not test the route %s ahead of its switch", name)

    def result(self) -> PodiumError | None:
        """Why nginx refused the route, once the check has run (None: it passed)."""
        self._thread.join()
        return self._refused


class LocalRuntime:
    """supervisord + nginx on this machine: ``node_dir`` holds their state, ``deploy_root``
    the environments' apps and logs, ``venv_cache`` the virtualenvs."""

    name = NODE

    def __init__(
        self, node_dir: Path, router_port: int, *, deploy_root: Path, venv_cache: Path, limits: SlugLimits,
        log_max_bytes: int, sandbox: Sandbox | None = None, base_domain: str = LOCAL_DOMAIN,
        router_host: str = LOOPBACK, router_tls_port: int = 8443, challenge_dir: Path | None = None,
    ) -> None:
        self.sandbox = sandbox  # None or disabled: processes run as Podium's own user, unconfined
        # challenge_dir: ACME HTTP-01 tokens the router serves to every host (docs/tls.md).
        self.node = LocalNode(
            node_dir, router_port, sandbox, router_host=router_host, router_tls_port=router_tls_port,
            challenge_dir=challenge_dir,
        )
        self.base_domain = base_domain
        self.deploy_root = deploy_root
        self.venv_cache = venv_cache
        self.limits = limits
        self.log_max_bytes = log_max_bytes
        self.probes = probe_client()  # shared by every rollout and watch (thread-safe)
        self._started = False
        self._start_lock = threading.Lock()

    @property
    def supervisor(self) -> Supervisor:
        """This machine's supervisord (for tests of the runtime itself)."""
        return self.node.supervisor

    @property
    def router(self) -> Router:
        """This machine's nginx (for tests of the runtime itself)."""
        return self.node.router

    def layout(self, service: str, env: str) -> EnvLayout:
        return EnvLayout(self.deploy_root, service, env)

    # Lifecycle ---------------------------------------------------------------------------

    def ensure_running(self) -> None:
        with self._start_lock:
            if not self._started:
                notice = self.sandbox.notice() if self.sandbox is not None else None
                if notice is not None:
                    log.warning("%s", notice)
                if self._sandboxed() is not None:
                    self._close_folders()
                self.node.ensure_running()
                self._started = True

    def shutdown(self) -> None:
        self.node.shutdown()

    def _close_folders(self) -> None:
        """Podium's folders readable by Podium alone; the data dir not listable by others (its
        group bits stay: they are the mask of the ACL that lets the add-ons' ``postgres`` through)."""
        for folder in (self.node.run_dir, self.deploy_root, self.venv_cache):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        data_dir = self.node.run_dir.parent
        data_dir.chmod(data_dir.stat().st_mode & ~0o006)

    def close(self) -> None:
        self.probes.close()

    # A release ---------------------------------------------------------------------------

    def prepare(self, spec: ReleaseSpec, on_step: Callable[[PrepareStep, str], None]) -> PreparedRelease:
        """Unpack the slug (unless this environment has it unpacked already: rollbacks), then
        build the virtualenv of its requirements (once per content of the file)."""
        app_dir = self.layout(spec.service, spec.env).app_dir(spec.digest)
        app = app_dir / "app"
        if (app / "Procfile").exists():
            on_step(PrepareStep.UNPACKING, "already unpacked")
        else:
            on_step(PrepareStep.UNPACKING, "")
            if app_dir.exists():
                shutil.rmtree(app_dir)
            app_dir.parent.mkdir(parents=True, exist_ok=True)
            unpack_slug(spec.artifact_path, app_dir, self.limits)
        user = self._user(spec.service, spec.env)
        if user is not None and self.sandbox is not None:
            self.sandbox.hand_over(app_dir, user)  # its own files, read-only in its sandbox
        venv, built = None, None
        requirements = app / "requirements.txt"
        if requirements.exists():
            started = datetime.now(UTC)
            venv, fresh = self._venv(requirements, spec.service, spec.env, user)
            built = (started, datetime.now(UTC)) if fresh else None
            on_step(PrepareStep.BUILDING, "built a virtualenv" if fresh else "virtualenv cached")
        return PreparedRelease(spec, str(app), venv, built)

    def run_release_command(self, prepared: PreparedRelease, timeout: float) -> None:
        spec = prepared.spec
        command = spec.processes.get("release")
        if command is None:
            return
        layout = self.layout(spec.service, spec.env)
        confinement = self._confinement(prepared, None)
        run_release_command(
            command, app=Path(prepared.location), environment=self._environment(prepared, None),
            log=layout.release_log(spec.version), pid_file=layout.release_pid, timeout=timeout,
            log_max_bytes=self.log_max_bytes,
            confine=None if confinement is None else lambda argv: self._wrap(argv, confinement),
        )

    def start(self, prepared: PreparedRelease) -> RunningRelease:
        """One supervisord group for the formation, a fresh port for each web process."""
        spec = prepared.spec
        ports = {f"web-{i}": self.node.allocate_port() for i in range(1, spec.formation.get("web", 0) + 1)}
        layout = self.layout(spec.service, spec.env)
        specs = [
            ProcessSpec(
                name=name, command=spec.processes[kind], directory=Path(prepared.location),
                environment=self._environment(prepared, ports.get(name)),
                log_file=layout.log_file(spec.version, name), log_max_bytes=self.log_max_bytes,
                confinement=self._confinement(prepared, kind),
            )
            for kind, quantity in sorted(spec.formation.items()) if kind != "release"
            for name in (f"{kind}-{index}" for index in range(1, quantity + 1))
        ]
        if specs:
            layout.logs.mkdir(parents=True, exist_ok=True)
            self.node.supervisor.add_group(group_name(spec.service, spec.env, spec.version), specs)
        return RunningRelease(spec.ref, ports)

    # The sandbox ----------------------------------------------------------------------------

    def _sandboxed(self) -> Sandbox | None:
        return self.sandbox if self.sandbox is not None and self.sandbox.enabled else None

    def _user(self, service: str, env: str) -> str | None:
        sandbox = self._sandboxed()
        return sandbox.ensure_user(service, env) if sandbox is not None else None

    def _venv(self, requirements: Path, service: str, env: str, user: str | None) -> tuple[Path, bool]:
        """Unconfined: one cache for all. Confined: built as the environment's user into its own cache."""
        sandbox = self._sandboxed()
        if sandbox is None:
            return ensure_venv(requirements, self.venv_cache)
        cache = self.venv_cache / service / env

        def confine(argv: list[str], build: Path) -> list[str]:
            sandbox.hand_over(build, user)
            readable = (requirements.parent,)
            confinement = sandbox.confinement(user, None, readable=readable, writable=(build,), chdir=readable[0])
            return sandbox.wrap(argv, confinement)

        return ensure_venv(requirements, cache, confine=confine)

    def _confinement(self, prepared: PreparedRelease, kind: str | None) -> Confinement | None:
        """What a process of type ``kind`` (None: the release command) may see and use."""
        sandbox = self._sandboxed()
        if sandbox is None:
            return None
        spec = prepared.spec
        entry = spec.app_json.formation.get(kind) if kind is not None else None
        app = Path(prepared.location)
        readable = tuple(p for p in (app, prepared.venv, spec.sdk_path) if p is not None)
        return sandbox.confinement(
            sandbox.ensure_user(spec.service, spec.env), entry.size if entry is not None else None,
            readable=readable, chdir=app,
        )

    def _wrap(self, argv: list[str], confinement: Confinement) -> list[str]:
        assert self.sandbox is not None
        return self.sandbox.wrap(argv, confinement)

    def _environment(self, prepared: PreparedRelease, port: int | None) -> dict[str, str]:
        """The release's environment, plus the SDK, the virtualenv and the port."""
        env = dict(prepared.spec.environment)
        sdk = prepared.spec.sdk_path
        if sdk is not None:  # after the app's own PYTHONPATH, so a vendored copy wins
            env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(sdk)) if p)
        if prepared.venv is not None:
            env["VIRTUAL_ENV"] = str(prepared.venv)
            env["PATH"] = f"{prepared.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        if port is not None:
            env["PORT"] = str(port)
        return env

    def wait_healthy(self, running: RunningRelease, check: HealthCheck) -> None:
        """The health gate; meanwhile nginx tests the route the switch will write, so the
        switch itself needs no ``nginx -t`` (a route nginx refuses fails the gate)."""
        ref = running.ref
        group = group_name(ref.service, ref.env, ref.version)
        if running.ports:
            route_check = _RouteCheck(self.node.router, running, self._hostnames(running.ref.service, running.ref.env))
            try:
                problem = wait_healthy(
                    self.probes, list(running.ports.values()), check, still_running=lambda: self._why_dead(group)
                )
            finally:
                refused = route_check.result()
            if problem is not None:
                raise ReleaseFailed(problem, self._logs_of(ref))
            if refused is not None:
                raise refused
        elif self._infos(group):
            try:
                self.node.supervisor.wait_running(group, timeout=check.deadline)
            except PodiumError as exc:
                raise ReleaseFailed(exc.detail, self._logs_of(ref)) from None

    def probe(self, running: RunningRelease, check: HealthCheck) -> list[str]:
        problems = (probe(self.probes, port, check) for port in running.ports.values())
        return [problem for problem in problems if problem is not None]

    def _why_dead(self, group: str) -> str | None:
        for info in self._infos(group):
            if info.state in DEAD_STATES:
                # supervisord knows the exit status only of a process that had reached RUNNING;
                # for one that exited too quickly (BACKOFF, FATAL) it says so in the description.
                known = info.state == "EXITED" and info.exit_status is not None
                why = f"exit status {info.exit_status}" if known else info.description or "no details"
                return f"process {info.name} is {info.state} ({why})"
        return None

    def _logs_of(self, ref: ReleaseRef) -> str:
        """The last lines of the release's first two processes: what a failed rollout shows."""
        layout = self.layout(ref.service, ref.env)
        infos = self._infos(group_name(ref.service, ref.env, ref.version))
        parts = []
        for info in sorted(infos, key=lambda i: i.name)[:2]:
            text = last_lines(layout.log_file(ref.version, info.name))
            if text:
                parts.append(f"--- {info.name}\n{text}")
        return "\n".join(parts)

    # Routes ------------------------------------------------------------------------------

    def route(self, service: str, env: str) -> RouteState:
        ports = self.node.router.routes().get(route_name(service, env), [])
        return RouteState(service, env, tuple(f"{LOOPBACK}:{port}" for port in ports))

    def switch(self, running: RunningRelease) -> Draining:
        """A graceful nginx reload; the returned switch waits for the workers from before it."""
        ref = running.ref
        name = route_name(ref.service, ref.env)
        if running.ports:
            ports = list(running.ports.values())
            return self.node.router.switch_route(name, self._hostnames(ref.service, ref.env), ports)
        self.node.router.remove_route(name)
        return _Drained()

    def switch_back(self, route: RouteState) -> None:
        name = route_name(route.service, route.env)
        if route.upstreams:
            ports = [int(upstream.rsplit(":", 1)[1]) for upstream in route.upstreams]
            self.node.router.set_route(name, self._hostnames(route.service, route.env), ports)
        else:
            self.node.router.remove_route(name)

    def set_domains(self, service: str, env: str, domains: Sequence[CustomDomain]) -> None:
        self.node.router.set_domains(route_name(service, env), list(domains))

    def _hostnames(self, service: str, env: str) -> list[str]:
        return hostnames(service, env, self.base_domain)

    # Stopping ----------------------------------------------------------------------------

    def stop(self, ref: ReleaseRef) -> None:
        self.node.supervisor.remove_group(group_name(ref.service, ref.env, ref.version))

    def stop_all_but(self, service: str, env: str, keep: int | None) -> list[ReleaseRef]:
        prefix, stopped = group_prefix(service, env), []
        for group in self.node.supervisor.groups():
            version = group.removeprefix(prefix)
            if group.startswith(prefix) and version.isdigit() and int(version) != keep:
                self.node.supervisor.remove_group(group)
                stopped.append(ReleaseRef(service, env, int(version)))
        return stopped

    def prune(self, service: str, env: str, keep_digests: set[str]) -> None:
        layout = self.layout(service, env)
        keep = {layout.app_dir(digest).name for digest in keep_digests}
        if layout.apps.exists():
            for entry in layout.apps.iterdir():
                if entry.name not in keep and not entry.name.startswith("."):
                    shutil.rmtree(entry, ignore_errors=True)

    def teardown(self, service: str) -> None:
        if not self._started:
            return
        for group in self.node.supervisor.groups():
            if group.startswith(f"{service}_"):
                self.node.supervisor.remove_group(group)
        for env in ENVIRONMENTS:
            self.node.router.remove_route(route_name(service, env))
            self.node.router.set_domains(route_name(service, env), [])
        sandbox = self._sandboxed()
        if sandbox is not None:  # its users and its own virtualenvs go with it
            for env in ENVIRONMENTS:
                sandbox.remove_user(service, env)
            shutil.rmtree(self.venv_cache / service, ignore_errors=True)

    # Processes and logs ------------------------------------------------------------------

    def processes(self, running: RunningRelease) -> list[ProcessState]:
        ref = running.ref
        infos = self._infos(group_name(ref.service, ref.env, ref.version))
        return [self._state(info, ref, running.ports) for info in infos]

    def all_live_processes(self, releases: Sequence[ReleaseRef]) -> list[ProcessState]:
        wanted = {group_name(ref.service, ref.env, ref.version): ref for ref in releases}
        return [
            self._state(info, wanted[info.group], {})
            for info in self.node.supervisor.all_status()  # one call, however many releases are live
            if info.group in wanted
        ]

    def _infos(self, group: str) -> list[ProcessInfo]:
        try:
            return self.node.supervisor.group_status(group)
        except NotFound:  # scaled to zero, or stopped: the release runs no process
            return []

    @staticmethod
    def _state(info: ProcessInfo, ref: ReleaseRef | None, ports: Mapping[str, int]) -> ProcessState:
        port = ports.get(info.name)
        running = info.state in ("RUNNING", "STARTING")
        exit_reason = None
        if not running:
            known = info.exit_status is not None
            exit_reason = f"exit status {info.exit_status}" if known else info.description or None
        return ProcessState(
            name=info.name, type=info.name.rsplit("-", 1)[0], state=info.state, pid=info.pid, node=NODE,
            user=user_of(info.pid) if info.pid else None, address=f"{LOOPBACK}:{port}" if port else None,
            started_at=info.started_at, version=ref.version if ref else None,
            service=ref.service if ref else None, env=ref.env if ref else None, exit_reason=exit_reason,
            last_exit=info.last_exit,
        )

    def log_files(self, service: str, env: str, process: str | None = None) -> list[Path]:
        """The environment's current log files, oldest release first."""
        return self.layout(service, env).log_files(process)

    def read_logs(self, service: str, env: str, lines: int, process: str | None = None) -> list[str]:
        return read_logs(self.log_files(service, env, process), lines)

    def follow_logs(self, service: str, env: str, process: str | None = None) -> AsyncIterator[str]:
        return follow_logs(lambda: self.log_files(service, env, process))

    # Recovery ----------------------------------------------------------------------------

    def stop_release_command(self, service: str, env: str) -> str | None:
        killed = stop_orphan_release_command(self.layout(service, env).release_pid)
        return f"pid {killed}" if killed is not None else None

    def recover(self, serving: Sequence[Serving]) -> list[str]:
        """Kill release commands left running, route to the live releases, then stop the rest."""
        self.ensure_running()
        done: list[str] = []
        keep: set[str] = set()
        routes = self.node.router.routes()
        for env in serving:
            killed = self.stop_release_command(env.service, env.env)
            if killed is not None:
                done.append(f"{env.service}/{env.env}: killed the interrupted release command ({killed})")
            ports = list(env.live.ports.values()) if env.live is not None else []
            if env.live is not None:
                keep.add(group_name(env.service, env.env, env.live.ref.version))
            name = route_name(env.service, env.env)
            renamed = bool(ports) and self.node.router.hostnames(name) != self._hostnames(env.service, env.env)
            if set(routes.get(name, [])) == set(ports) and not renamed:  # a new base domain renames it
                continue
            try:
                self.switch_back(RouteState(env.service, env.env, tuple(f"{LOOPBACK}:{p}" for p in ports)))
            except PodiumError as exc:  # stop nothing of this environment while the route is in doubt
                prefix = group_prefix(env.service, env.env)
                keep |= {group for group in self.node.supervisor.groups() if group.startswith(prefix)}
                done.append(f"{env.service}/{env.env}: could not route to the live release: {exc.detail}")
                continue
            done.append(f"{env.service}/{env.env}: routed to the live release again")
        for group in self.node.supervisor.groups():
            # Only release groups (<service>_<env>_vN) are settled here; platform processes,
            # like the add-ons' podium-postgres, have no "_" in their name.
            if group not in keep and "_" in group:
                self.node.supervisor.remove_group(group)
                done.append(f"stopped orphan process group {group}")
        for partial in self.deploy_root.glob("*/*/apps/.*.unpacking"):
            shutil.rmtree(partial, ignore_errors=True)
        return done

    # Platform processes ------------------------------------------------------------------

    def run_platform(self, process: PlatformProcess) -> None:
        self.ensure_running()
        status = self.platform_status(process.name)
        if status is None:
            spec = ProcessSpec(
                name=process.process_name, command=process.command, directory=process.directory,
                environment=dict(process.environment), log_file=process.log_file,
                stopwaitsecs=process.stop_wait_seconds,
            )
            self.node.supervisor.add_group(process.name, [spec])
        elif status.state in ("STOPPED", "EXITED", "FATAL"):
            self.node.supervisor.start_process(process.name, status.name)

    def platform_status(self, name: str) -> ProcessState | None:
        infos = self._infos(name)
        return self._state(infos[0], None, {}) if infos else None

    def stop_platform(self, name: str) -> None:
        for info in self._infos(name):
            self.node.supervisor.stop_process(name, info.name)
