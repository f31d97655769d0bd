"""What the deploy service needs from a runtime: the ``Runtime`` protocol and the values it
takes and returns.

Podium decides releases, health gates, route switches and rollbacks; a runtime carries
them out on its machines. The deploy service talks to nothing else (no supervisord, no
nginx, no engine), so a second runtime is one class beside ``podium.runtime.local``.
Names of groups, routes and hostnames come from ``podium.runtime.naming``, the one place
that computes them.

Member by member, the local runtime (``LocalRuntime``: supervisord + nginx on this
machine) and how a Docker Swarm runtime would do the same:

- ``ensure_running`` / ``shutdown`` / ``close``: local starts (stops) its supervisord and nginx.
  Swarm checks that the engine is a swarm manager, that the overlay network and the
  registry exist, and starts the router service (nginx inside the overlay network,
  published in host mode); shutdown leaves the engine alone; close
  lets go of the HTTP clients (the engine's API, the probes).
- ``prepare``: local unpacks the slug into the environment's ``apps/`` and builds (or
  reuses) the virtualenv of its ``requirements.txt``. Swarm builds an image from the stack
  image + the slug's ``app/`` + the virtualenv, tags it with the slug and requirements
  digests and pushes it to the registry, once per tag: a rollback finds it and needs
  no build.
- ``run_release_command``: local runs the Procfile's ``release`` command in a session of
  its own, with a pid file that start-up recovery uses to kill one a dead Podium left.
  Swarm runs it as a one-off service (``--restart-condition none``, one replica) from the
  release's image and waits for its task to complete.
- ``start``: local adds one supervisord group per release (``web-1``, ``worker-1``…) with a
  fresh port per web process. Swarm creates one service per process type of the release
  (``--endpoint-mode dnsrr``, replicas from the formation, a container health check
  from app.json, ``PORT`` fixed inside the container).
- ``wait_healthy`` / ``probe``: local probes ``127.0.0.1:<port>`` of every web process and
  asks supervisord whether they died. Swarm waits until every task of the web service is
  ``running`` and its container ``healthy``; ``probe`` asks the router inside the overlay
  (or the engine's last health check results).
- ``switch`` / ``route`` / ``switch_back``: local rewrites the route's nginx site and
  reloads gracefully; the returned ``Draining`` waits for the old workers. Swarm rewrites
  the router's upstream to ``tasks.<web service>`` and reloads nginx in its container
  (``docker exec … nginx -s reload``) the same way.
- ``set_domains``: local keeps the environment's custom domains beside its nginx site and
  writes them into it: plain HTTP, or a TLS server per domain with a certificate (SNI) and a
  301 from HTTP. Swarm would do the same in its edge router; it refuses custom domains for now.
- ``stop`` / ``stop_all_but`` / ``prune``: local removes supervisord groups and unpacked
  apps; swarm removes the release's services (the engine stops tasks with their
  ``stop_grace_period``) and old images of the environment.
- ``processes`` / ``all_live_processes``: local reads supervisord's process table (node
  ``local``); swarm lists the tasks of the release's services with the node each runs on.
- ``read_logs`` / ``follow_logs``: local reads the stamped log files under the
  environment's ``logs/``; swarm reads ``docker service logs --timestamps``.
- ``stop_release_command``: local kills the environment's release command a dead Podium
  left, by its pid file; swarm removes the environment's one-off release service.
- ``recover``: local kills a release command a dead Podium left, points nginx at what the
  store says is live and stops every other release group; swarm does the same with
  services and the router's upstreams.
- ``teardown``: every process, route and prepared file of a service goes.
- ``run_platform`` / ``platform_status``: the platform's own long-running processes (the
  add-ons' embedded PostgreSQL): local runs them as supervisord groups without a ``_`` in
  their name; swarm would run them as a service pinned to the manager with a volume.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from podium.artifacts.appjson import AppJson
from podium.errors import PodiumError


class ReleaseFailed(PodiumError):
    """A step of running a release failed in a way the app is to blame for (its release
    command, its processes, its health check); ``log_tail`` holds the last lines it printed."""

    status_code = 422

    def __init__(self, detail: str, log_tail: str = "") -> None:
        super().__init__(detail)
        self.log_tail = log_tail


class PrepareStep(StrEnum):
    """What ``prepare`` reports as it goes: the deploy shows each as a rollout stage."""

    UNPACKING = "unpacking"
    BUILDING = "building"


@dataclass(frozen=True)
class ReleaseRef:
    """Release ``version`` of a service environment: what a runtime names its processes by."""

    service: str
    env: str
    version: int


@dataclass(frozen=True)
class ReleaseSpec:
    """Everything a runtime needs to run one release.

    ``environment`` is what every process gets (config vars over app.json's defaults, and
    ``PODIUM_*``); the runtime adds what only it knows (``PORT``, the virtualenv's ``PATH``,
    the SDK on ``PYTHONPATH`` from ``sdk_path``).
    """

    service: str
    env: str
    version: int
    artifact_path: Path
    digest: str
    processes: Mapping[str, str]  # the Procfile: process type → command
    app_json: AppJson
    formation: Mapping[str, int]  # process type → how many run
    environment: Mapping[str, str]
    sdk_path: Path | None = None

    @property
    def ref(self) -> ReleaseRef:
        return ReleaseRef(self.service, self.env, self.version)


@dataclass(frozen=True)
class PreparedRelease:
    """A release whose files are ready to run: ``location`` is where (local: the app
    directory and virtualenv; a container runtime: the image reference)."""

    spec: ReleaseSpec
    location: str
    venv: Path | None = None
    # When the runtime built something for this release (a virtualenv, an image), from when
    # to when (UTC); None when everything was found ready. Billing meters these seconds.
    built: tuple[datetime, datetime] | None = None


@dataclass(frozen=True)
class RunningRelease:
    """A started release: ``ports`` has the port of each web process (``web-1``…), in the
    runtime's own network; the store keeps them so recovery can route to them again."""

    ref: ReleaseRef
    ports: Mapping[str, int]


@dataclass(frozen=True)
class HealthCheck:
    """What counts as healthy: ``path`` answering below ``max_status`` (and containing
    ``content``, if set) within ``timeout`` per probe, for at most ``deadline`` seconds."""

    path: str
    timeout: float
    max_status: int
    deadline: float
    initial_delay: float = 0.0
    content: str | None = None


@dataclass(frozen=True)
class RouteState:
    """Where a service environment's hostnames are routed now: the runtime's upstreams
    (local: ``127.0.0.1:<port>``), none when it has no route."""

    service: str
    env: str
    upstreams: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomDomain:
    """A hostname a team routes to one of its environments besides the generated ones.

    With ``certificate`` (the chain, leaf first) and ``key``, PEM files the router can read,
    it is served over TLS by SNI and its plain HTTP redirects to HTTPS; without them it is
    served on plain HTTP."""

    name: str
    certificate: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class ProcessState:
    """One process as the runtime sees it now."""

    name: str  # web-1, worker-2, or a platform process's name
    type: str  # web, worker…
    state: str  # RUNNING, STARTING, BACKOFF, EXITED, FATAL, STOPPED…
    pid: int | None
    node: str  # which machine it runs on ("local" for the local runtime)
    user: str | None  # the OS user it runs as, read from the process
    address: str | None  # where a web process listens (local: 127.0.0.1:<port>)
    started_at: float | None  # epoch seconds
    version: int | None = None  # the release it belongs to; None for platform processes
    service: str | None = None
    env: str | None = None
    exit_reason: str | None = None  # why it is not running, when it is not
    last_exit: str | None = None  # how it last ended: "oom" (killed at its memory limit), "exit 1", "signal 9"
    restarts: int = 0  # restarts the runtime saw (the deploy counts crashes itself)


@dataclass(frozen=True)
class Serving:
    """What the store says one environment serves: ``live`` is None when nothing is live."""

    service: str
    env: str
    live: RunningRelease | None


@dataclass(frozen=True)
class PlatformProcess:
    """A long-running process of the platform itself (the add-ons' embedded PostgreSQL).

    ``name`` has no ``_``, so it never looks like a release's process group."""

    name: str  # e.g. podium-postgres
    process_name: str  # the one process inside it, e.g. postgres
    command: str
    directory: Path
    log_file: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    stop_wait_seconds: int = 10


class Draining(Protocol):
    """A route switch the router has taken, whose old connections may still be finishing."""

    def wait_drained(self) -> None:
        """Return once nothing routes to what was routed before the switch any more
        (bounded by the router's own shutdown timeout)."""


class Runtime(Protocol):
    """Runs releases and routes to them. Each member may raise ``RuntimeFailure`` when the
    runtime's own machinery fails, and ``ReleaseFailed`` where the release is to blame."""

    name: str  # "local", "swarm": shown as the node of a process when it has no better one

    def ensure_running(self) -> None:
        """Start what the runtime needs (daemons, router) unless it runs; idempotent and
        safe to call from several threads."""

    def shutdown(self) -> None:
        """Stop the router and every process this runtime started; both are attempted."""

    def close(self) -> None:
        """Let go of what this object holds in Podium's process (clients, connections);
        every process and route keeps running."""

    def prepare(self, spec: ReleaseSpec, on_step: Callable[[PrepareStep, str], None]) -> PreparedRelease:
        """Make the release's files ready to run, telling ``on_step`` as each step begins.

        Must be idempotent and cached by content: preparing a release whose slug (and
        requirements) were prepared before reuses that work, so a rollback builds nothing.
        A bad slug raises ``Invalid`` and leaves nothing half-written behind."""

    def run_release_command(self, prepared: PreparedRelease, timeout: float) -> None:
        """Run the Procfile's ``release`` command (no-op without one) to its end, with the
        release's environment; ``ReleaseFailed`` with its last log lines when it fails or
        outlives ``timeout``. Nothing of it may keep running after this returns or raises,
        nor after Podium dies while it runs (``recover`` kills what is left)."""

    def start(self, prepared: PreparedRelease) -> RunningRelease:
        """Start the formation's processes beside whatever runs already (the live release
        keeps serving); a formation scaled to zero starts nothing. Returns without waiting
        for health."""

    def wait_healthy(self, running: RunningRelease, check: HealthCheck) -> None:
        """Return once every web process passes ``check`` (without web processes: once every
        process stays up); ``ReleaseFailed`` with the last log lines when one dies or the
        deadline passes. Must notice a crashing process at once, not at the deadline."""

    def probe(self, running: RunningRelease, check: HealthCheck) -> list[str]:
        """One probe of every web process of a live release: why each failing one failed
        (empty when all are healthy). Used by the watch after going live; never raises for
        an unhealthy app."""

    def route(self, service: str, env: str) -> RouteState:
        """Where the environment's hostnames are routed now."""

    def switch(self, running: RunningRelease) -> Draining:
        """Route the environment's hostnames to ``running``'s web processes (none: no
        route) without dropping a request; returns once new connections reach them. A
        configuration the router refuses leaves the previous route in place."""

    def switch_back(self, route: RouteState) -> None:
        """Route as ``route`` says again (undoing a switch), waiting until it is the only
        route in effect."""

    def set_domains(self, service: str, env: str, domains: Sequence[CustomDomain]) -> None:
        """Serve ``domains`` besides the environment's generated hostnames, replacing the ones
        set before, now (when it has a route) and on every later switch, across restarts.
        A domain with a certificate gets HTTPS on the router's TLS port and a redirect to it;
        setting the same domains again changes nothing. A runtime that cannot serve custom
        domains raises ``Invalid`` saying so (for a non-empty list only)."""

    def stop(self, ref: ReleaseRef) -> None:
        """Stop the release's processes (each within its grace period) and forget them; no
        error when it has none."""

    def stop_all_but(self, service: str, env: str, keep: int | None) -> list[ReleaseRef]:
        """Stop every release of the environment except version ``keep``; call it only once
        ``Draining.wait_drained`` returned. Returns what it stopped."""

    def prune(self, service: str, env: str, keep_digests: set[str]) -> None:
        """Drop prepared files (apps, images) of the environment whose slug digest is not
        in ``keep_digests``; never one a running release uses."""

    def processes(self, running: RunningRelease) -> list[ProcessState]:
        """The release's processes now, with the node each runs on and the address of each
        web process; empty when it runs none."""

    def all_live_processes(self, releases: Sequence[ReleaseRef]) -> list[ProcessState]:
        """The processes of all ``releases`` in one look at the runtime (the crash counter
        calls this several times a second, however many releases are live)."""

    def read_logs(self, service: str, env: str, lines: int, process: str | None = None) -> list[str]:
        """The last ``lines`` lines of the environment's processes (one process, e.g.
        ``web-1``, or a type, e.g. ``web``), oldest first, as ``<UTC time> <source>: <text>``."""

    def follow_logs(self, service: str, env: str, process: str | None = None) -> AsyncIterator[str]:
        """New lines as they are written, in the format of ``read_logs``, until cancelled."""

    def stop_release_command(self, service: str, env: str) -> str | None:
        """Kill the environment's release command that a dead Podium (or a dead server of the
        store) left running, and what is left of it; what was killed, None when nothing ran."""

    def recover(self, serving: Sequence[Serving]) -> list[str]:
        """After a restart of Podium: kill leftovers of interrupted steps, route each
        environment to what the store says it serves (stopping nothing of an environment
        whose route could not be fixed), then stop every release process that is not live.
        Platform processes are left alone. Returns what it did, one line each."""

    def teardown(self, service: str) -> None:
        """Stop every process and route of a service, in every environment."""

    def run_platform(self, process: PlatformProcess) -> None:
        """Make sure the platform process runs (start it, or start it again when it stopped)
        and that it is restarted whenever it dies; never stopped by ``recover``."""

    def platform_status(self, name: str) -> ProcessState | None:
        """The platform process now; None when the runtime does not run it."""

    def stop_platform(self, name: str) -> None:
        """Stop a platform process (it stays known, and ``run_platform`` starts it again)."""
