"""Each process type of a release is a swarm service: ``<service>_<env>_v<N>_<type>``.

Releases are blue/green as on the local runtime: a new release's services start beside
the live one's, the router switches, the old ones are removed. Every service of an
environment is in the environment's own overlay network (and no other), with
``--endpoint-mode dnsrr`` (this kernel has no IPVS for virtual IPs); the router finds a
release's web tasks as ``tasks.<service name>``.

Containers run as a user that owns nothing in the image, on a read-only root filesystem
with a tmpfs /tmp, with the memory and CPU of the formation's size, restarted by the
engine whenever they exit. The web type gets app.json's health check as the container's
health check: the engine reports a task running only once it passes.

Config vars reach the app as environment variables, not swarm secrets: apps read their
config from the environment (Procfile commands, twelve-factor), a secret is a file that
every app would have to read itself, and secrets are immutable (each config change would
rotate them). The engine's API, where the values can be read back, is Podium's alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docker import DockerClient
from docker.errors import APIError, NotFound
from docker.models.services import Service
from docker.types import EndpointSpec, Healthcheck, Mount, Resources, RestartPolicy, ServiceMode

from podium.artifacts.appjson import AppJson
from podium.runtime.interface import ProcessState, ReleaseRef
from podium.runtime.naming import group_name, group_prefix
from podium.runtime.swarm.images import APP_USER
from podium.runtime.swarm.router import APP_PORT

SECOND = 1_000_000_000
# Memory and CPUs by formation size; a size not listed runs as "standard".
SIZES: dict[str, tuple[int, float]] = {
    "standard": (512 * 2**20, 1.0),
    "standard-2x": (1024 * 2**20, 1.0),
    "performance": (2560 * 2**20, 2.0),
}
STOP_GRACE_SECONDS = 10
START_PERIOD_SECONDS = 120
MIN_CHECK_TIMEOUT = 5.0
MIN_CHECK_RETRIES = 5
TASK_STATES = {
    "new": "STARTING", "pending": "STARTING", "assigned": "STARTING", "accepted": "STARTING",
    "preparing": "STARTING", "ready": "STARTING", "starting": "STARTING", "running": "RUNNING",
    "complete": "EXITED", "shutdown": "STOPPED", "failed": "BACKOFF", "rejected": "FATAL",
    "orphaned": "UNKNOWN", "remove": "STOPPED",
}
LABEL = "podium.release"


def network_name(service: str, env: str) -> str:
    """The overlay network of one service environment."""
    return f"podium-env-{service}-{env}"


def service_name(ref: ReleaseRef, process_type: str) -> str:
    return f"{group_name(ref.service, ref.env, ref.version)}_{process_type}"


def parse_service_name(name: str) -> tuple[str, int, str] | None:
    """``(group prefix, version, process type)`` of a release's service name."""
    match = re.fullmatch(r"(.+_v)(\d+)_([A-Za-z0-9_-]+?)", name)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None


def health_command(path: str, max_status: int) -> list[str]:
    """The container health check: bash (essential in Debian, unlike curl) asks the app for
    ``path`` over /dev/tcp. A few milliseconds of CPU where python3 would take fifty: on a
    busy node a costly check times out and the engine kills a healthy task."""
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{APP_PORT} && "
        f"printf 'GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && "
        f"read -r _ status _ <&3 && [ \"$status\" -lt {max_status} ]"
    )
    return ["CMD", "bash", "-c", script]


def web_healthcheck(app_json: AppJson) -> Healthcheck:
    """app.json's startup (or readiness) check as the container's health check, lenient
    once the task is up: a busy node must not look like a dead app."""
    checks = [check for check in app_json.healthchecks.get("web", []) if check.type in ("startup", "readiness")]
    check = checks[0] if checks else None
    path, timeout, retries = (check.path, check.timeout, check.attempts) if check else ("/", 5.0, 3)
    max_status = 400 if check else 500
    return Healthcheck(
        test=health_command(path, max_status), interval=SECOND // 2,
        timeout=int(max(timeout, MIN_CHECK_TIMEOUT) * SECOND), retries=max(retries, MIN_CHECK_RETRIES),
        # Failures within the start period do not count: a slow start (a busy node) is not a
        # crash; the deploy's own health deadline bounds how long Podium waits for it.
        start_period=int((START_PERIOD_SECONDS + (check.initial_delay if check else 0)) * SECOND),
    )


@dataclass(frozen=True)
class ServiceSpec:
    """One process type of a release as the engine will run it."""

    name: str
    image: str
    command: str
    replicas: int
    environment: Mapping[str, str]
    network: str
    labels: Mapping[str, str]
    size: str | None
    healthcheck: Healthcheck | None
    restart: str = "any"  # "none" for the release command, which runs once


def create_service(client: DockerClient, spec: ServiceSpec) -> Service:
    memory, cpus = SIZES.get(spec.size or "standard", SIZES["standard"])
    env = [f"{key}={value}" for key, value in {**spec.environment, "PORT": str(APP_PORT), "HOST": "0.0.0.0"}.items()]  # noqa: S104 - inside its own network namespace
    kwargs: dict[str, Any] = {}
    if spec.healthcheck is not None:
        kwargs["healthcheck"] = spec.healthcheck
    return client.services.create(
        spec.image, command=["/bin/sh", "-c", f"exec {spec.command}"], name=spec.name, env=env,
        labels=dict(spec.labels), container_labels=dict(spec.labels), networks=[spec.network],
        endpoint_spec=EndpointSpec(mode="dnsrr"), mode=ServiceMode("replicated", replicas=spec.replicas),
        restart_policy=RestartPolicy(condition=spec.restart, delay=SECOND // 2, max_attempts=0),
        resources=Resources(mem_limit=memory, cpu_limit=int(cpus * SECOND)),
        user=APP_USER, workdir="/app", read_only=True, mounts=[Mount("/tmp", None, type="tmpfs")],  # noqa: S108 - the container's own
        stop_grace_period=STOP_GRACE_SECONDS * SECOND, **kwargs,
    )


def release_services(client: DockerClient, service: str, env: str, version: int | None = None) -> list[Service]:
    """The swarm services of one release (or of every release when ``version`` is None)."""
    prefix = group_name(service, env, version) + "_" if version is not None else group_prefix(service, env)
    found = client.services.list(filters={"name": prefix})
    return [svc for svc in found if svc.name.startswith(prefix) and parse_service_name(svc.name)]


def remove_services(services: Iterable[Service]) -> None:
    for svc in services:
        try:
            svc.remove()
        except NotFound:
            continue


@dataclass(frozen=True)
class Task:
    """A task as the runtime reads it: its slot, node, state and container."""

    service: str
    slot: int
    node_id: str
    state: str
    desired: str
    error: str | None
    pid: int | None
    started_at: float | None
    address: str | None
    created_at: str = ""

    @property
    def app_failed(self) -> bool:
        """The app is to blame: its process exited, or its health check failed."""
        return self.state == "complete" or (
            self.state == "failed" and bool(re.search(r"exit|unhealthy", self.error or ""))
        )

    @classmethod
    def read(cls, raw: dict[str, Any], service: str) -> Task:
        status = raw.get("Status", {})
        container = status.get("ContainerStatus") or {}
        attachments = raw.get("NetworksAttachments") or []
        addresses = [addr.split("/")[0] for att in attachments for addr in att.get("Addresses") or []]
        return cls(
            service=service, slot=int(raw.get("Slot") or 0), node_id=raw.get("NodeID", ""),
            state=status.get("State", "new"), desired=raw.get("DesiredState", ""),
            error=status.get("Err"), pid=container.get("PID") or None,
            started_at=_epoch(status.get("Timestamp")) if status.get("State") == "running" else None,
            address=f"{addresses[0]}:{APP_PORT}" if addresses else None,
            created_at=raw.get("CreatedAt", ""),
        )


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    # The engine writes nanoseconds; Python reads microseconds.
    trimmed = re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(trimmed).timestamp()
    except ValueError:
        return None


def tasks_of(client: DockerClient, services: Iterable[Service]) -> dict[str, list[Task]]:
    """Every task (current and past) of each service, by service name, in one call per service."""
    found: dict[str, list[Task]] = {}
    for svc in services:
        try:
            raw = client.api.tasks(filters={"service": svc.id})
        except APIError:  # removed meanwhile
            continue
        found[svc.name] = [Task.read(task, svc.name) for task in raw]
    return found


def process_states(
    tasks: dict[str, list[Task]], node_names: Mapping[str, str], service: str, env: str,
) -> list[ProcessState]:
    """One process per slot: the task the engine wants running there, with how often the
    slot's tasks failed (the engine replaced them: each is a crash)."""
    states = []
    for name, slot_tasks in sorted(tasks.items()):
        parsed = parse_service_name(name)
        if parsed is None:
            continue
        _, version, process_type = parsed
        by_slot: dict[int, list[Task]] = {}
        for task in slot_tasks:
            by_slot.setdefault(task.slot, []).append(task)
        for slot, history in sorted(by_slot.items()):
            # A replacement waits out the restart delay with desired state "ready".
            current = [t for t in history if t.desired in ("running", "ready")]
            if not current:
                continue
            task = max(current, key=lambda t: t.created_at)
            failed = [t for t in history if t.state in ("failed", "rejected")]
            states.append(ProcessState(
                name=f"{process_type}-{slot}", type=process_type, state=TASK_STATES.get(task.state, "UNKNOWN"),
                pid=task.pid, node=node_names.get(task.node_id, task.node_id[:12] or "unassigned"),
                user=APP_USER, address=task.address if process_type == "web" else None,
                started_at=task.started_at, version=version, service=service, env=env,
                exit_reason=failed[-1].error if failed and task.state != "running" else None,
                restarts=len(failed),
            ))
    return states


def wait_removed(client: DockerClient, names: Iterable[str], timeout: float) -> None:
    """Wait until the engine has no container of these services left running on any node."""
    pending = set(names)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        still = set()
        for name in pending:
            try:
                raw = client.api.tasks(filters={"service": name})
            except APIError:
                continue
            if any(task.get("Status", {}).get("State") in ("running", "starting") for task in raw):
                still.add(name)
        pending = still
        if pending:
            time.sleep(0.2)
