"""Start-up recovery: make the node agree with the store after Podium was killed.

A rollout that was still running when Podium died is marked failed: until it is recorded
live, the release it replaces never stopped, so going back to it is always safe. Then
the router is pointed at each environment's live release (a killed switch may have left
nginx's files pointing elsewhere, or written but not loaded), and only after that is
every process group that is not a live release's stopped. Locks are released, a release
command left running is killed, and half-unpacked apps and uploads are removed.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

from sqlalchemy import select

from podium.catalog.models import Environment
from podium.deploy.models import DeployState, Release, ReleaseStatus, Stage, transition
from podium.deploy.rollout import EnvLayout, group_name, hostnames, route_name, stop_orphan_release_command
from podium.deploy.service import DeployService
from podium.errors import PodiumError
from podium.store.db import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Live:
    """What one environment should serve after recovery."""

    service: str
    env: str
    group: str | None
    ports: list[int]


def recover(deploys: DeployService) -> list[str]:
    """Settle interrupted rollouts, fix the routes, remove orphan processes; return what was done."""
    deploys.ensure_node()
    done: list[str] = []
    wanted = _settle_store(deploys, done)
    keep = {live.group for live in wanted if live.group is not None}
    routes = deploys.node.router.routes()
    for live in wanted:
        name = route_name(live.service, live.env)
        if set(routes.get(name, [])) == set(live.ports):
            continue
        try:
            if live.ports:
                deploys.node.router.set_route(name, hostnames(live.service, live.env), live.ports)
            else:
                deploys.node.router.remove_route(name)
        except PodiumError as exc:  # stop nothing of this environment while the route is in doubt
            prefix = f"{live.service}_{live.env}_v"
            keep |= {group for group in deploys.node.supervisor.groups() if group.startswith(prefix)}
            done.append(f"{live.service}/{live.env}: could not route to the live release: {exc.detail}")
            continue
        done.append(f"{live.service}/{live.env}: routed to the live release again")
    for group in deploys.node.supervisor.groups():
        # Only release groups (<service>_<env>_vN) are settled here; others, like the
        # add-ons' podium-postgres, are the platform's own and have no "_" in their name.
        if group not in keep and "_" in group:
            deploys.node.supervisor.remove_group(group)
            done.append(f"stopped orphan process group {group}")
    _remove_partial_files(deploys)
    for line in done:
        log.warning("recovery: %s", line)
    return done


def _settle_store(deploys: DeployService, done: list[str]) -> list[_Live]:
    """Fail interrupted rollouts, finish live ones, release locks; return what each environment serves."""
    wanted: list[_Live] = []
    with deploys.store.session() as session:
        for environment in session.scalars(select(Environment)):
            service, env = environment.service.name, environment.name
            state = session.get(DeployState, environment.id)
            if state is None:
                continue
            killed = stop_orphan_release_command(EnvLayout(deploys.root, service, env))
            if killed is not None:
                done.append(f"{service}/{env}: killed the interrupted release command (pid {killed})")
            in_flight = session.scalars(
                select(Release).where(
                    Release.environment_id == environment.id,
                    Release.status.in_([ReleaseStatus.PENDING, ReleaseStatus.DEPLOYING]),
                )
            )
            for release in in_flight:
                stage = release.stage
                transition(release, ReleaseStatus.FAILED)
                release.failure_reason = f"{stage}: interrupted: Podium stopped during this stage"
                release.finished_at = utcnow()
                done.append(f"{service}/{env} v{release.version}: failed (interrupted during {stage})")
            state.lock_holder, state.lock_release_id, state.locked_at = None, None, None
            live = session.get(Release, state.live_release_id) if state.live_release_id else None
            if live is not None and live.stage != Stage.DONE:  # killed while draining the previous one
                live.stage, live.finished_at = Stage.DONE, utcnow()
                done.append(f"{service}/{env} v{live.version}: live (interrupted while draining)")
            wanted.append(
                _Live(
                    service, env, group_name(service, env, live.version) if live else None,
                    list(live.ports.values()) if live else [],
                )
            )
    return wanted


def _remove_partial_files(deploys: DeployService) -> None:
    """Uploads and unpackings that a killed Podium left half-written; nothing refers to them."""
    shutil.rmtree(deploys.uploads, ignore_errors=True)
    for partial in deploys.root.glob("*/*/apps/.*.unpacking"):
        shutil.rmtree(partial, ignore_errors=True)
    for partial in deploys.artifacts.glob("*/.*.part"):
        partial.unlink(missing_ok=True)
