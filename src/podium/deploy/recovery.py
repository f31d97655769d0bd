"""Start-up recovery: make the runtime agree with the store after Podium was killed.

A rollout that was still running when Podium died is marked failed: until it is recorded
live, the release it replaces never stopped, so going back to it is always safe. Locks
are released. Then the runtime is told what each environment serves: it kills a release
command left running, routes each environment to its live release (a killed switch may
have left the router pointing elsewhere), and only after that stops every release that
is not live. Half-written uploads and artifacts are removed.
"""

from __future__ import annotations

import logging
import shutil

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.catalog.models import Environment
from podium.deploy.models import DeployState, Release, ReleaseStatus, Stage, transition
from podium.deploy.service import DeployService
from podium.runtime.interface import ReleaseRef, RunningRelease, Serving
from podium.store.db import utcnow

log = logging.getLogger(__name__)


def recover(deploys: DeployService) -> list[str]:
    """Settle interrupted rollouts, fix the routes, remove orphan processes; return what was done."""
    deploys.ensure_runtime()
    done: list[str] = []
    serving = _settle_store(deploys, done)
    done += deploys.runtime.recover(serving)
    _remove_partial_files(deploys)
    for line in done:
        log.warning("recovery: %s", line)
    return done


def _settle_store(deploys: DeployService, done: list[str]) -> list[Serving]:
    """Fail interrupted rollouts, finish live ones, release locks; return what each environment serves."""
    serving: list[Serving] = []
    with deploys.store.session() as session:
        for environment in session.scalars(select(Environment)):
            service, env = environment.service.name, environment.name
            state = session.get(DeployState, environment.id)
            if state is None:
                continue
            running = settle_releases(session, state, service, env, "Podium stopped during this stage", done)
            state.lock_holder, state.lock_release_id, state.locked_at, state.lock_server = None, None, None, None
            serving.append(Serving(service, env, running))
    return serving


def settle_releases(
    session: Session, state: DeployState, service: str, env: str, why: str, done: list[str]
) -> RunningRelease | None:
    """An environment whose rollout was cut short: its release in flight failed (``<stage>:
    interrupted: <why>``), a live release cut short while draining done; what it serves now.
    Start-up recovery and the leader settling a dead server's rollout both end this way."""
    in_flight = session.scalars(
        select(Release).where(
            Release.environment_id == state.environment_id,
            Release.status.in_([ReleaseStatus.PENDING, ReleaseStatus.DEPLOYING]),
        )
    )
    for release in in_flight:
        stage = release.stage
        transition(release, ReleaseStatus.FAILED)
        release.failure_reason = f"{stage}: interrupted: {why}"
        release.finished_at = utcnow()
        done.append(f"{service}/{env} v{release.version}: failed ({stage}: {why})")
    live = session.get(Release, state.live_release_id) if state.live_release_id else None
    if live is None:
        return None
    if live.stage != Stage.DONE:  # cut short while draining the previous one
        live.stage, live.finished_at = Stage.DONE, utcnow()
        done.append(f"{service}/{env} v{live.version}: live (interrupted while draining)")
    return RunningRelease(ReleaseRef(service, env, live.version), dict(live.ports))


def _remove_partial_files(deploys: DeployService) -> None:
    """Uploads and artifacts that a killed Podium left half-written; nothing refers to them."""
    shutil.rmtree(deploys.uploads, ignore_errors=True)
    for partial in (deploys.settings.data_dir / "artifacts").glob("*/.*.part"):
        partial.unlink(missing_ok=True)
