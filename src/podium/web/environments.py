"""What the service page shows of one environment: its live release, processes, deploys, logs.

``environment_view`` gathers it through the deploy service's verbs; the template
``_environment.html`` renders it, on the service page and on its own when htmx refreshes
a section while a release is on its way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from podium.catalog.auth import Actor
from podium.catalog.models import Right
from podium.core import Podium
from podium.deploy.logs import read_logs
from podium.deploy.models import Release, ReleaseStatus
from podium.errors import Forbidden, PodiumError
from podium.health.probe import is_probe_line
from podium.runtime.naming import hostnames

RECENT_RELEASES = 10
LOG_LINES = 20
IN_FLIGHT = frozenset({ReleaseStatus.PENDING, ReleaseStatus.DEPLOYING})
# supervisord calls a process STARTING for its first second even after it answered the
# health check, and BACKOFF while it retries: the section keeps refreshing until they settle.
SETTLING = frozenset({"STARTING", "BACKOFF"})


@dataclass(frozen=True)
class EnvironmentView:
    """One environment of a service, as its section on the service page shows it."""

    service: str
    name: str
    url: str
    live: Release | None
    digest: str | None
    processes: list[dict[str, Any]]
    processes_problem: str | None
    releases: list[Release]
    logs: list[str]
    may_deploy: bool
    may_read_logs: bool = False  # logs and release log tails need the config right, as config does
    config_keys: list[str] = field(default_factory=list)  # the values stay masked on the page
    may_config: bool = False  # may reveal them (the config right)

    @property
    def in_flight(self) -> bool:
        """A release is pending or rolling out: no rollback is offered until it ends."""
        return any(release.status in IN_FLIGHT for release in self.releases)

    @property
    def refreshing(self) -> bool:
        """The section asks for itself again while a release is in flight or its processes settle."""
        return self.in_flight or any(process["state"] in SETTLING for process in self.processes)

    def may_roll_back_to(self, release: Release) -> bool:
        """Offer a rollback to a release that went live and was replaced, when nothing is in flight."""
        return (
            self.may_deploy
            and not self.in_flight
            and release.status == ReleaseStatus.SUPERSEDED
            and release.live_at is not None
        )


def app_url(podium: Podium, service: str, env: str) -> str:
    """Where the router serves the environment: ``http://<service>.<env>.<base domain>:<port>/``."""
    return f"http://{hostnames(service, env, podium.settings.base_domain)[0]}:{podium.settings.router_port}/"


def short_digest(digest: str) -> str:
    """``sha256:0123456789abcdef…`` → ``0123456789ab``, as the deploy descriptions show it."""
    return digest.removeprefix("sha256:")[:12]


def without_probes(lines: list[str]) -> list[str]:
    """Log lines without those apps wrote about Podium's health probes: they would fill the view."""
    return [line for line in lines if not is_probe_line(line)]


def environment_view(podium: Podium, actor: Actor, service: str, env: str) -> EnvironmentView:
    """Read one environment (NotFound for an unknown service or environment)."""
    deploys = podium.deploys
    releases = deploys.list_releases(service, env, RECENT_RELEASES)
    live = deploys.live_release(service, env)
    processes: list[dict[str, Any]] = []
    problem = None
    try:
        deploys.check_access(actor, service, env, Right.CONFIG)
        may_read_logs = True
    except Forbidden:
        may_read_logs = False
    if live is not None:
        try:
            processes = deploys.processes(service, env)
        except PodiumError as exc:  # the node is down: the rest of the page still helps
            problem = exc.detail
    return EnvironmentView(
        service=service,
        name=env,
        url=app_url(podium, service, env),
        live=live,
        digest=short_digest(deploys.artifact_of(live).digest) if live is not None else None,
        processes=processes,
        processes_problem=problem,
        releases=releases,
        logs=without_probes(read_logs(deploys.log_files(service, env), LOG_LINES * 5))[-LOG_LINES:]
        if may_read_logs else [],
        may_deploy=podium.catalog.allows(actor, service, Right.DEPLOY),
        may_read_logs=may_read_logs,
        config_keys=sorted(deploys.get_config(service, env)),
        may_config=podium.catalog.allows(actor, service, Right.CONFIG),
    )
