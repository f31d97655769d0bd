"""Deploy routes under ``/api/v1/services/{service}/environments/{env}/``."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep
from podium.catalog.auth import Actor
from podium.catalog.models import Right
from podium.deploy.models import Release, ReleaseCause
from podium.deploy.service import parse_version
from podium.errors import Forbidden, Invalid, TooLarge
from podium.health.probe import is_probe_line

router = APIRouter(prefix="/api/v1/services/{service}", tags=["deploys"])
ENV = "/environments/{env}"


class ReleaseOut(BaseModel):
    version: str = Field(description="v1, v2, …")
    status: str = Field(description="pending | deploying | live | superseded | failed")
    stage: str
    description: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    live_at: datetime | None
    finished_at: datetime | None
    failure_reason: str | None
    log_tail: str | None = Field(description="The app's last lines when the rollout failed; null unless you may read "
                                 "the service's config (and so its logs).")
    config_keys: list[str]
    formation: dict[str, int]
    digest: str
    commit: str | None = Field(description="The commit its slug was built from, as the deploy that uploaded it said.")
    rollback_of: str | None
    crashes: int = Field(description="Restarts of its processes after crashes, all processes together.")
    last_exits: dict[str, str] = Field(
        default_factory=dict, description="Per process, how its last crash ended when known: oom, exit 1, signal 9."
    )
    ports: dict[str, int]
    cause: ReleaseCause = Field(description="What made it: deploy, config, rollback, auto_rollback (by Podium)…")

    @classmethod
    def of(cls, release: Release) -> ReleaseOut:
        return cls(
            version=f"v{release.version}", status=release.status, stage=release.stage,
            description=release.description, created_by=release.created_by, created_at=release.created_at,
            started_at=release.started_at, live_at=release.live_at, finished_at=release.finished_at,
            failure_reason=release.failure_reason, log_tail=release.log_tail,
            config_keys=sorted(release.config), formation=release.formation, digest=release.artifact.digest,
            commit=release.commit, rollback_of=f"v{release.rollback_of}" if release.rollback_of else None,
            crashes=release.crashes, last_exits=release.last_exits, ports=release.ports,
            cause=ReleaseCause(release.cause),
        )


class ProcessOut(BaseModel):
    """One process of the live release, as the runtime sees it now."""

    process: str = Field(description="Its name in the release: web-1, worker-2…")
    type: str = Field(description="Its Procfile process type.")
    state: str = Field(description="RUNNING, STARTING, BACKOFF, EXITED, FATAL, STOPPED…")
    pid: int | None
    port: int | None = Field(description="Where a web process listens.")
    release: str
    node: str = Field(description="The machine it runs on ('local' for the local runtime).")
    user: str | None = Field(description="The operating-system user it runs as.")
    uptime_seconds: int | None
    restarts: int = Field(description="Restarts after crashes that Podium counted.")
    last_exit: str | None = Field(
        None, description="How it last ended: 'oom' (killed at its size's memory limit), 'exit 1', 'signal 9'."
    )


class ConfigPatch(BaseModel):
    set: dict[str, str] = Field(default_factory=dict, description="Config vars to set.")
    unset: list[str] = Field(default_factory=list, description="Config vars to remove.")


class RollbackIn(BaseModel):
    to: str | None = Field(None, description="The release to go back to, e.g. v3; default: the one before.")


class PromoteIn(BaseModel):
    source: str = Field("staging", alias="from")
    to: str = "production"


class ChangeOut(BaseModel):
    """What a config change did: the new release, or none when nothing was live yet."""

    config: dict[str, str]
    release: ReleaseOut | None


def render(podium: Any, release: Release, *, with_logs: bool = False) -> ReleaseOut:
    """The release as the API shows it; its ``log_tail`` only ``with_logs`` (see ``may_read_logs``)."""
    out = ReleaseOut.of(release)
    return out if with_logs else out.model_copy(update={"log_tail": None})


def may_read_logs(podium: Any, actor: Actor, service: str, env: str) -> bool:
    """Logs tell as much as config does (apps print their settings): the same right reads both."""
    try:
        podium.deploys.check_access(actor, service, env, Right.CONFIG)
    except Forbidden:
        return False
    return True


async def _receive(request: Request, limit: int, folder: Path) -> Path:
    """Stream the request body to a file, refusing it past ``limit`` bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=folder, suffix=".tgz", delete=False)  # noqa: SIM115
    path, size = Path(handle.name), 0
    try:
        with handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"upload is larger than {limit} bytes (PODIUM_SLUG_MAX_BYTES)")
                await run_in_threadpool(handle.write, chunk)
        if size == 0:
            raise Invalid("empty upload: send the slug (a .tgz) as the request body")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@router.post(ENV + "/deploys", status_code=status.HTTP_202_ACCEPTED)
async def deploy(
    service: str, env: str, request: Request, podium: PodiumDep, actor: ActorDep,
    commit: str | None = Query(None, max_length=80, description="The commit the slug was built from."),
    description: str = Query("", max_length=200),
) -> ReleaseOut:
    """Upload a slug (``application/gzip`` body) and roll it out; follow it with ``.../events``."""
    # 404 or 403 before a byte of the body is read
    await run_in_threadpool(podium.deploys.check_access, actor, service, env)
    upload = await _receive(request, podium.settings.slug_max_bytes, podium.deploys.uploads)
    try:
        release = await run_in_threadpool(
            podium.deploys.deploy, actor, service, env, upload, commit=commit, description=description
        )
    finally:
        upload.unlink(missing_ok=True)
    return await run_in_threadpool(render, podium, release)


@router.get(ENV + "/releases")
def list_releases(
    service: str, env: str, podium: PodiumDep, actor: ActorDep, limit: int = Query(50, ge=1, le=500)
) -> list[ReleaseOut]:
    """Releases, newest first; ``log_tail`` only for those who may read the logs."""
    logs = may_read_logs(podium, actor, service, env)
    return [render(podium, r, with_logs=logs) for r in podium.deploys.list_releases(service, env, limit)]


@router.get(ENV + "/releases/{version}")
def show_release(service: str, env: str, version: str, podium: PodiumDep, actor: ActorDep) -> ReleaseOut:
    release = podium.deploys.get_release(service, env, parse_version(version))
    return render(podium, release, with_logs=may_read_logs(podium, actor, service, env))


@router.get(ENV + "/releases/{version}/events")
def follow_release(service: str, env: str, version: str, podium: PodiumDep, actor: ActorDep) -> StreamingResponse:
    """The rollout's progress as JSON lines, until it is live or failed."""
    release = podium.deploys.get_release(service, env, parse_version(version))
    logs = may_read_logs(podium, actor, service, env)

    def lines() -> Iterator[str]:
        if podium.deploys.progress.known(release.id):
            for event in podium.deploys.progress.follow(release.id):
                yield json.dumps(event) + "\n"
        final = render(podium, podium.deploys.get_release(service, env, release.version), with_logs=logs)
        yield json.dumps({"final": True, **final.model_dump(mode="json")}) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post(ENV + "/rollback", status_code=status.HTTP_202_ACCEPTED)
def rollback(service: str, env: str, body: RollbackIn, podium: PodiumDep, actor: ActorDep) -> ReleaseOut:
    """A new release from an older one's artifact and config."""
    return render(podium, podium.deploys.rollback(actor, service, env, body.to))


@router.post("/promote", status_code=status.HTTP_202_ACCEPTED)
def promote(service: str, body: PromoteIn, podium: PodiumDep, actor: ActorDep) -> ReleaseOut:
    """Staging's live artifact into production, with production's config."""
    return render(podium, podium.deploys.promote(actor, service, body.source, body.to))


@router.get(ENV + "/config")
def get_config(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> dict[str, str]:
    """The config vars (the owning team, the platform team, or a team with a config grant)."""
    return podium.deploys.read_config(actor, service, env)


@router.patch(ENV + "/config", status_code=status.HTTP_202_ACCEPTED)
def patch_config(service: str, env: str, body: ConfigPatch, podium: PodiumDep, actor: ActorDep) -> ChangeOut:
    """Set or unset config vars; with a live release, this rolls out a new one."""
    release = podium.deploys.set_config(actor, service, env, body.set, body.unset)
    config = podium.deploys.get_config(service, env)
    return ChangeOut(config=config, release=render(podium, release) if release else None)


@router.post(ENV + "/scale", status_code=status.HTTP_202_ACCEPTED)
def scale(service: str, env: str, body: dict[str, int], podium: PodiumDep, actor: ActorDep) -> ReleaseOut:
    """Set process counts, e.g. ``{"web": 2, "worker": 1}``."""
    return render(podium, podium.deploys.scale(actor, service, env, body))


@router.get(ENV + "/ps")
def processes(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> list[ProcessOut]:
    """The live release's processes: state, pid, port, node, user, uptime, restarts."""
    return [ProcessOut.model_validate(row) for row in podium.deploys.processes(service, env)]


@router.get(ENV + "/logs")
async def logs(
    service: str, env: str, podium: PodiumDep, actor: ActorDep,
    process: str | None = Query(None, description="Only this process, e.g. web-1, or a type, e.g. web."),
    lines: int = Query(100, ge=1, le=10_000),
    follow: bool = Query(False, description="Keep the stream open and send new lines."),
    probes: bool = Query(True, description="Include the lines apps wrote about Podium's health probes "
                         "(they carry the User-Agent Podium-Health/...)."),
) -> StreamingResponse:
    """The last lines of every process's log, oldest first; ``follow`` streams new ones (config right)."""
    await run_in_threadpool(podium.deploys.check_access, actor, service, env, Right.CONFIG)
    head = await run_in_threadpool(podium.deploys.read_logs, service, env, lines, process)

    async def stream() -> AsyncIterator[str]:
        for line in head:
            if probes or not is_probe_line(line):
                yield line
        if follow:
            async for line in podium.deploys.follow_logs(service, env, process):
                if not probes and is_probe_line(line):
                    continue
                yield line
                await asyncio.sleep(0)

    return StreamingResponse(stream(), media_type="text/plain")
