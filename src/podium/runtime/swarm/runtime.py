"""``SwarmRuntime``: the ``Runtime`` protocol on a Docker Swarm, through its manager's API.

prepare = build the release image and push it (``images``); release command = a one-off
service; start = one service per process type (``services``); health = the engine's own
container health checks, read from the tasks; switch = the environment's gateway nginx
pointed at ``tasks.<web service>`` and reloaded gracefully (``router``); stop = remove
the release's services. Podium decides, the engine places, restarts, isolates and limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import docker
from docker import DockerClient
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from podium.artifacts.slug import SlugLimits
from podium.config import Settings
from podium.errors import Invalid
from podium.runtime import RuntimeFailure
from podium.runtime.interface import (
    CustomDomain,
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
    Runtime,
    Serving,
)
from podium.runtime.naming import LOCAL_DOMAIN, group_name, route_name
from podium.runtime.swarm import logs
from podium.runtime.swarm.images import ImageBuilder, image_ref
from podium.runtime.swarm.nodes import node_names
from podium.runtime.swarm.router import (
    APP_PORT,
    EDGE_NETWORK,
    EDGE_SERVICE,
    NO_SUCH_APP,
    Draining,
    NginxService,
    gateway_name,
    web_service_of,
)
from podium.runtime.swarm.routes import Routes
from podium.runtime.swarm.services import (
    ServiceSpec,
    Task,
    create_service,
    network_name,
    parse_service_name,
    process_states,
    release_services,
    remove_services,
    service_name,
    tasks_of,
    web_healthcheck,
)

POLL_SECONDS = 0.1
LOG_TAIL_LINES = 20
RELEASE_TYPE = "release"  # the Procfile's release command: a one-off service, never started with the others


class SwarmRuntime:
    """Releases as swarm services behind nginx services, through the manager at ``docker_host``.

    ``platform`` runs the platform's own processes (the add-ons' PostgreSQL, which needs
    the host's binaries and data dir): the local runtime of the machine Podium runs on."""

    name = "swarm"

    def __init__(
        self, docker_host: str | None, stack_image: str, registry: str | None, router_port: int,
        limits: SlugLimits, platform: Runtime | None = None, base_domain: str = LOCAL_DOMAIN,
    ) -> None:
        try:
            self.client = DockerClient(base_url=docker_host or "unix:///var/run/docker.sock", timeout=120)
        except DockerException as exc:
            raise RuntimeFailure(f"the engine at {docker_host}: {exc}") from exc
        self.stack_image = stack_image
        self.registry = registry
        self.router_port = router_port
        self.images = ImageBuilder(self.client, stack_image, registry, limits)
        self.platform = platform
        self.edge = NginxService(
            self.client, EDGE_SERVICE, [EDGE_NETWORK], stack_image, publish_port=router_port, default_site=NO_SUCH_APP,
        )
        self._lock = threading.Lock()
        self._gateways: dict[tuple[str, str], NginxService] = {}
        self.routes = Routes(self.client, self.edge, self._gateway, base_domain)
        self._ready = False

    @classmethod
    def from_settings(cls, settings: Settings, platform: Runtime | None = None) -> SwarmRuntime:
        """The runtime ``PODIUM_RUNTIME=swarm`` asks for: DOCKER_HOST, PODIUM_STACK_IMAGE, PODIUM_REGISTRY."""
        return cls(
            settings.docker_host, settings.stack_image, settings.registry, settings.router_port,
            SlugLimits.from_settings(settings), platform=platform, base_domain=settings.base_domain,
        )

    # The engine and the router.

    def ensure_running(self) -> None:
        """Check the engine is a swarm manager with the stack image; start the edge router."""
        with self._lock:
            if self._ready:
                return
            try:
                info = self.client.info()
            except DockerException as exc:
                raise RuntimeFailure(f"the engine does not answer: {exc}") from exc
            if not info.get("Swarm", {}).get("ControlAvailable"):
                raise RuntimeFailure("the engine at DOCKER_HOST is not a swarm manager (docker swarm init)")
            try:
                self.client.images.get(self.stack_image)
            except ImageNotFound as exc:
                raise RuntimeFailure(f"no stack image {self.stack_image} on the manager: run make stack-image") from exc
            self._network(EDGE_NETWORK, {"podium.role": "router"})
            self.edge.ensure()
            self.routes.start()
            self._ready = True

    def shutdown(self) -> None:
        """The swarm keeps running what it runs: releases outlive Podium, as on the local runtime."""
        self.close()

    def close(self) -> None:
        self.routes.close()
        self.client.close()

    def _network(self, name: str, labels: dict[str, str]) -> None:
        if self.client.networks.list(names=[name]):
            return
        try:
            self.client.networks.create(name, driver="overlay", labels=labels, check_duplicate=True)
        except APIError as exc:
            if exc.status_code != 409:
                raise RuntimeFailure(f"network {name}: {exc.explanation}") from exc

    def _gateway(self, service: str, env: str) -> NginxService:
        """The environment's gateway (one object each: it remembers its container)."""
        with self._lock:
            gateway = self._gateways.get((service, env))
            if gateway is None:
                gateway = self._gateways[(service, env)] = NginxService(
                    self.client, gateway_name(service, env), [EDGE_NETWORK, network_name(service, env)],
                    self.stack_image, labels={"podium.service": service, "podium.env": env},
                )
            return gateway

    # A release's image and processes.

    def prepare(self, spec: ReleaseSpec, on_step: Callable[[PrepareStep, str], None]) -> PreparedRelease:
        on_step(PrepareStep.BUILDING, f"image {image_ref(self.registry, spec.service, spec.digest)}")
        started = datetime.now(UTC)
        ref, fresh = self.images.build(spec, self._labels(spec.ref, spec.environment))
        return PreparedRelease(spec=spec, location=ref, built=(started, datetime.now(UTC)) if fresh else None)

    def _labels(self, ref: ReleaseRef, environment: Any = None, process_type: str | None = None) -> dict[str, str]:
        labels = {"podium.service": ref.service, "podium.env": ref.env, "podium.release": f"v{ref.version}"}
        team = (environment or {}).get("PODIUM_TEAM")
        if team:
            labels["podium.team"] = team
        if process_type:
            labels["podium.process"] = process_type
        return labels

    def _spec(self, prepared: PreparedRelease, process_type: str, replicas: int) -> ServiceSpec:
        spec = prepared.spec
        size = spec.app_json.formation.get(process_type)
        return ServiceSpec(
            name=service_name(spec.ref, process_type), image=prepared.location,
            command=spec.processes[process_type], replicas=replicas, environment=spec.environment,
            network=network_name(spec.service, spec.env),
            labels={**self._labels(spec.ref, spec.environment, process_type), "podium.digest": spec.digest},
            size=size.size if size is not None else None,
            healthcheck=web_healthcheck(spec.app_json) if process_type == "web" else None,
        )

    def run_release_command(self, prepared: PreparedRelease, timeout: float) -> None:
        """The release command as a one-off service (one replica, never restarted)."""
        spec = prepared.spec
        if RELEASE_TYPE not in spec.processes:
            return
        self._network(network_name(spec.service, spec.env), {"podium.service": spec.service, "podium.env": spec.env})
        name = service_name(spec.ref, RELEASE_TYPE)
        remove_services(self.client.services.list(filters={"name": name}))
        svc = create_service(self.client, replace(self._spec(prepared, RELEASE_TYPE, 1), restart="none"))
        try:
            deadline = time.monotonic() + timeout
            while True:
                tasks = tasks_of(self.client, [svc]).get(name, [])
                states = {task.state for task in tasks}
                if "complete" in states:
                    return
                failed = [task for task in tasks if task.state in ("failed", "rejected")]
                if failed:
                    raise ReleaseFailed(f"release command failed: {failed[0].error or 'non-zero exit'}",
                                        self._tail([name]))
                if time.monotonic() > deadline:
                    raise ReleaseFailed(f"release command still running after {timeout:.0f}s", self._tail([name]))
                time.sleep(POLL_SECONDS)
        finally:
            remove_services([svc])

    def start(self, prepared: PreparedRelease) -> RunningRelease:
        spec = prepared.spec
        self._network(network_name(spec.service, spec.env), {"podium.service": spec.service, "podium.env": spec.env})
        ports: dict[str, int] = {}
        for process_type, count in sorted(spec.formation.items()):
            if count <= 0 or process_type == RELEASE_TYPE or process_type not in spec.processes:
                continue
            name = service_name(spec.ref, process_type)
            remove_services(self.client.services.list(filters={"name": name}))  # a half-started earlier try
            try:
                create_service(self.client, self._spec(prepared, process_type, count))
            except APIError as exc:
                raise RuntimeFailure(f"service {name}: {exc.explanation}") from exc
            if process_type == "web":
                ports.update({f"web-{slot}": APP_PORT for slot in range(1, count + 1)})
        return RunningRelease(ref=spec.ref, ports=ports)

    def _services(self, ref: ReleaseRef) -> list[Any]:
        return release_services(self.client, ref.service, ref.env, ref.version)

    def wait_healthy(self, running: RunningRelease, check: HealthCheck) -> None:
        """Every task running (the engine reports a web task running once its health check
        passed); the first task whose process exited or failed its health check fails the
        release at once, with its last log lines."""
        services = self._services(running.ref)
        names = [svc.name for svc in services]
        deadline = time.monotonic() + check.deadline
        while True:
            engine_errors: list[str] = []
            found = tasks_of(self.client, services)
            ready = True
            for svc in services:
                wanted = svc.attrs["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0)
                tasks = found.get(svc.name, [])
                crashed = [task for task in tasks if task.app_failed]
                if crashed:
                    raise ReleaseFailed(f"{svc.name}: {crashed[0].error or 'exited'}", self._tail(names))
                # The engine's own failures (a network sandbox not ready…) it retries by itself.
                engine_errors += [task.error for task in tasks if task.state in ("failed", "rejected") and task.error]
                if sum(1 for task in tasks if task.state == "running" and task.desired == "running") < wanted:
                    ready = False
            if ready:
                return
            if time.monotonic() > deadline:
                why = f" (the engine: {engine_errors[-1]})" if engine_errors else ""
                raise ReleaseFailed(f"not healthy within {check.deadline:.0f}s{why}", self._tail(names))
            time.sleep(POLL_SECONDS)

    def probe(self, running: RunningRelease, check: HealthCheck) -> list[str]:
        """Why each web task that should run does not (the engine's health checks decide)."""
        problems = []
        for process in self.processes(running):
            if process.type == "web" and process.state != "RUNNING":
                problems.append(f"{process.name} on {process.node}: {process.state.lower()}"
                                + (f" ({process.exit_reason})" if process.exit_reason else ""))
        return problems

    # Routes.

    def route(self, service: str, env: str) -> RouteState:
        text = self._gateway(service, env).read_site("app") if self._has_gateway(service, env) else None
        web = web_service_of(text)
        return RouteState(service, env, (f"tasks.{web}:{APP_PORT}",) if web else ())

    def _has_gateway(self, service: str, env: str) -> bool:
        return bool(self.client.services.list(filters={"name": gateway_name(service, env)}))

    def switch(self, running: RunningRelease) -> Draining:
        ref = running.ref
        return self._route_to(ref.service, ref.env, service_name(ref, "web") if running.ports else None)

    def _route_to(self, service: str, env: str, web_service: str | None) -> Draining:
        self.ensure_running()
        self._network(network_name(service, env), {"podium.service": service, "podium.env": env})
        return self.routes.set(service, env, web_service)

    def switch_back(self, route: RouteState) -> None:
        web = route.upstreams[0].removeprefix("tasks.").rpartition(":")[0] if route.upstreams else None
        self._route_to(route.service, route.env, web).wait_drained()

    def set_domains(self, service: str, env: str, domains: Sequence[CustomDomain]) -> None:
        """Custom domains are not served by the swarm's edge router yet: refused when asked."""
        if domains:
            raise Invalid(
                "the swarm runtime does not serve custom domains yet (its edge router has no TLS); "
                "use the local runtime (PODIUM_RUNTIME=local) for custom domains"
            )

    # Stopping and forgetting.

    def stop(self, ref: ReleaseRef) -> None:
        remove_services(self._services(ref))

    def stop_all_but(self, service: str, env: str, keep: int | None) -> list[ReleaseRef]:
        stopped: dict[int, ReleaseRef] = {}
        doomed = []
        for svc in release_services(self.client, service, env):
            parsed = parse_service_name(svc.name)
            if parsed is not None and parsed[1] != keep:
                doomed.append(svc)
                stopped[parsed[1]] = ReleaseRef(service, env, parsed[1])
        remove_services(doomed)
        return [stopped[version] for version in sorted(stopped)]

    def prune(self, service: str, env: str, keep_digests: set[str]) -> None:
        """Images are per service (a promotion reuses staging's): keep every image a kept
        digest or a running service of any environment uses."""
        keep = {image_ref(self.registry, service, digest) for digest in keep_digests}
        for svc in self.client.services.list(filters={"label": f"podium.service={service}"}):
            keep.add(svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0])
        self.images.remove_except(service, keep)

    # What runs.

    def processes(self, running: RunningRelease) -> list[ProcessState]:
        ref = running.ref
        return process_states(tasks_of(self.client, self._services(ref)), node_names(self.client), ref.service, ref.env)

    def all_live_processes(self, releases: Sequence[ReleaseRef]) -> list[ProcessState]:
        """One look at the engine: every service and task, kept for the given releases."""
        wanted = {group_name(ref.service, ref.env, ref.version): ref for ref in releases}
        if not wanted:
            return []
        by_id: dict[str, tuple[str, ReleaseRef]] = {}
        for svc in self.client.api.services():
            name = svc["Spec"]["Name"]
            parsed = parse_service_name(name)
            if parsed is not None and f"{parsed[0]}{parsed[1]}" in wanted:
                by_id[svc["ID"]] = (name, wanted[f"{parsed[0]}{parsed[1]}"])
        grouped: dict[ReleaseRef, dict[str, list[Task]]] = {}
        for raw in self.client.api.tasks():
            owner = by_id.get(raw.get("ServiceID", ""))
            if owner is not None:
                grouped.setdefault(owner[1], {}).setdefault(owner[0], []).append(Task.read(raw, owner[0]))
        names = node_names(self.client)
        return [
            state for ref, tasks in grouped.items() for state in process_states(tasks, names, ref.service, ref.env)
        ]

    def read_logs(self, service: str, env: str, lines: int, process: str | None = None) -> list[str]:
        return logs.read(self.client, release_services(self.client, service, env), lines, process)

    def follow_logs(self, service: str, env: str, process: str | None = None) -> AsyncIterator[str]:
        return logs.follow(self.client, lambda: release_services(self.client, service, env), process)

    def _tail(self, names: list[str]) -> str:
        services = [svc for name in names for svc in self.client.services.list(filters={"name": name})]
        return "\n".join(logs.read(self.client, services, LOG_TAIL_LINES, None))

    # Recovery and teardown.

    def stop_release_command(self, service: str, env: str) -> str | None:
        """Remove the environment's one-off release command service a dead server left."""
        left = self.client.services.list(
            filters={"label": ["podium.process=release", f"podium.service={service}", f"podium.env={env}"]}
        )
        remove_services(left)
        return ", ".join(svc.name for svc in left) or None

    def recover(self, serving: Sequence[Serving]) -> list[str]:
        """Remove release commands a dead Podium left, route each environment to what the
        store says it serves, then remove every release service that is not live."""
        done = []
        for svc in self.client.services.list(filters={"label": "podium.process=release"}):
            svc.remove()
            done.append(f"removed the interrupted release command {svc.name}")
        self.ensure_running()
        for entry in serving:
            live = entry.live
            try:
                self._route_to(entry.service, entry.env, service_name(live.ref, "web") if live and live.ports else None)
            except RuntimeFailure as exc:
                done.append(f"{entry.service}/{entry.env}: route not restored, nothing stopped: {exc.detail}")
                continue
            for ref in self.stop_all_but(entry.service, entry.env, live.ref.version if live else None):
                done.append(f"stopped {group_name(ref.service, ref.env, ref.version)}")
        return done

    def teardown(self, service: str) -> None:
        owned = self.client.services.list(filters={"label": f"podium.service={service}"})
        envs = {svc.attrs["Spec"]["Labels"].get("podium.env") for svc in owned}
        self.routes.forget(service)
        remove_services(owned)
        for env in sorted(e for e in envs if e):
            route = route_name(service, env)
            if self.edge.read_site(route) is not None:
                self.edge.apply({route: None})
        for network in self.client.networks.list(filters={"label": f"podium.service={service}"}):
            _remove_network(network)

    # The platform's own processes run where Podium runs.

    def run_platform(self, process: PlatformProcess) -> None:
        self._platform().run_platform(process)

    def platform_status(self, name: str) -> ProcessState | None:
        return self._platform().platform_status(name) if self.platform is not None else None

    def stop_platform(self, name: str) -> None:
        self._platform().stop_platform(name)

    def _platform(self) -> Runtime:
        if self.platform is None:
            raise RuntimeFailure("the swarm runtime runs no platform process here: set PODIUM_ADDONS_POSTGRES_URL")
        return self.platform


def _remove_network(network: Any) -> None:
    """An overlay goes once its last task has left it; the engine takes a moment to notice."""
    deadline = time.monotonic() + 30
    while True:
        try:
            network.remove()
            return
        except NotFound:
            return
        except APIError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.5)


def connect(docker_host: str | None) -> DockerClient:
    """A client of the engine at ``docker_host`` (the local socket when None)."""
    return docker.DockerClient(base_url=docker_host or "unix:///var/run/docker.sock", timeout=120)

