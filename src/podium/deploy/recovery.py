"""Start-up recovery: make the store agree with what the node really serves.

If Podium was killed during a rollout, the router is the truth: the release whose ports
it routes to is live; any other in-flight release failed; every process group that is
not a live release's is stopped; every lock is released.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from podium.catalog.models import Environment
from podium.deploy.models import DeployState, Release, ReleaseStatus, transition
from podium.deploy.rollout import group_name, route_name
from podium.deploy.service import DeployService, mark_live
from podium.store.db import utcnow

log = logging.getLogger(__name__)


def recover(deploys: DeployService) -> list[str]:
    """Settle interrupted rollouts and remove orphan processes; return what was done."""
    deploys.ensure_node()
    routes = deploys.node.router.routes()
    done: list[str] = []
    wanted_groups: set[str] = set()
    with deploys.store.session() as session:
        for environment in session.scalars(select(Environment)):
            service, env = environment.service.name, environment.name
            state = session.get(DeployState, environment.id)
            if state is None:
                continue
            routed = set(routes.get(route_name(service, env), []))
            in_flight = list(session.scalars(
                select(Release).where(
                    Release.environment_id == environment.id,
                    Release.status.in_([ReleaseStatus.PENDING, ReleaseStatus.DEPLOYING]),
                )
            ))
            for release in in_flight:
                ports = set(release.ports.values())
                if ports and ports == routed:
                    mark_live(session, environment.id, release.id)
                    release.stage, release.finished_at = "done", utcnow()
                    done.append(f"{service}/{env} v{release.version}: live (the router had switched)")
                else:
                    stage = release.stage
                    transition(release, ReleaseStatus.FAILED)
                    release.failure_reason = f"{stage}: interrupted: Podium stopped during this stage"
                    release.finished_at = utcnow()
                    done.append(f"{service}/{env} v{release.version}: failed (interrupted during {stage})")
            if state.lock_holder is not None:
                state.lock_holder, state.lock_release_id, state.locked_at = None, None, None
            if state.live_release_id is not None:
                live = session.get(Release, state.live_release_id)
                if live is not None:
                    wanted_groups.add(group_name(service, env, live.version))
    for group in deploys.node.supervisor.groups():
        if group not in wanted_groups:
            deploys.node.supervisor.remove_group(group)
            done.append(f"stopped orphan process group {group}")
    for line in done:
        log.warning("recovery: %s", line)
    return done
