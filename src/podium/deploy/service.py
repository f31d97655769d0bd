"""Deploy verbs: deploy, config, redeploy, rollback, promote, scale; and what they start.

A verb checks ownership, creates release vN from a ``ReleaseSource`` and takes the
environment's deploy lock in one transaction, then hands the rollout to
``podium.deploy.rollout``, which finishes it in the background even if the client goes
away. Clients follow it through ``progress``. Processes, logs and routes are the
runtime's (``podium.runtime.interface``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.artifacts.appjson import MAX_QUANTITY, AppJson
from podium.artifacts.slug import SlugLimits, inspect_slug
from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Right, Service
from podium.catalog.service import authorize, get_environment, get_service
from podium.config import Settings
from podium.deploy.models import (
    Artifact,
    DeployState,
    Release,
    ReleaseCause,
    ReleaseStatus,
    Stage,
    previous_live,
)
from podium.deploy.progress import ProgressBoard
from podium.deploy.rollout import BuildMeter, EnvRef, ReleaseWatch, Rollouts, artifact_path
from podium.deploy.source import ReleaseSource, formation_for
from podium.errors import Conflict, Invalid, NotFound
from podium.runtime.interface import ReleaseRef, RunningRelease, Runtime
from podium.store.db import Store, utcnow

ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_KEYS = {"PORT", "PODIUM_SERVICE", "PODIUM_ENV", "PODIUM_RELEASE", "PODIUM_TOKEN"}
MAX_VALUE_BYTES = 32_768


def parse_version(text: str) -> int:
    match = re.fullmatch(r"v?(\d{1,9})", text.strip())
    if match is None:
        raise Invalid(f"invalid release {text!r}: use a version like v3")
    return int(match.group(1))


class Server(Protocol):
    """This server among those sharing the store (``podium.cluster``): its id, once it joined."""

    @property
    def server_id(self) -> int | None:
        """Recorded on the deploy locks this server takes, so another can settle its rollouts if it dies."""


class DeployService:
    """Deploys through one runtime, for the service environments of one store."""

    def __init__(
        self, settings: Settings, store: Store, runtime: Runtime, *,
        app_token: Callable[[int], str] | None = None, sdk_path: Path | None = None,
        watch: ReleaseWatch | None = None, server: Server | None = None, builds: BuildMeter | None = None,
    ) -> None:
        """``app_token`` gives an environment's ``PODIUM_TOKEN`` by its id, ``sdk_path`` is put
        on every process's ``PYTHONPATH``, ``watch`` hears of every release that goes live,
        ``server`` names this server on the deploy locks it takes, and ``builds`` counts the
        time spent building releases."""
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.uploads = settings.data_dir / "uploads"
        self.limits = SlugLimits.from_settings(settings)
        self.progress = ProgressBoard()
        self.rollouts = Rollouts(
            settings, store, runtime, self.progress, app_token=app_token, sdk_path=sdk_path, watch=watch,
            builds=builds,
        )
        self.server = server
        self.runtime_started = False

    # Lifecycle ---------------------------------------------------------------------------

    def ensure_runtime(self) -> None:
        """Start the runtime (supervisord and the router, locally) if it is not running."""
        if not self.runtime_started:
            self.runtime.ensure_running()
            self.runtime_started = True

    def close(self) -> None:
        """Wait for the rollouts under way."""
        self.rollouts.close()

    # Lookups -----------------------------------------------------------------------------

    def _ref(self, session: Session, service_name: str, env: str) -> tuple[Service, Environment, EnvRef]:
        service = get_service(session, service_name)
        environment = get_environment(session, service, env)
        return service, environment, EnvRef(service.name, env, service.id, environment.id)

    def _state(self, session: Session, environment_id: int) -> DeployState:
        """The environment's deploy state; its row is created on first use, in a transaction of its own
        so that two first requests racing each other both find it instead of one failing."""
        state = session.get(DeployState, environment_id)
        if state is None:
            with contextlib.suppress(IntegrityError), self.store.session() as own:
                if own.get(DeployState, environment_id) is None:
                    own.add(DeployState(environment_id=environment_id, formation={}, config={}))
            state = session.get(DeployState, environment_id)
            assert state is not None
        return state

    @staticmethod
    def _release(session: Session, environment_id: int, version: int) -> Release:
        release = session.scalar(
            select(Release).where(Release.environment_id == environment_id, Release.version == version)
        )
        if release is None:
            raise NotFound(f"release v{version} not found")
        return release

    def list_releases(self, service: str, env: str, limit: int = 50) -> list[Release]:
        """Releases newest first, each with its artifact (one query however many)."""
        with self.store.session() as session:
            _, environment, _ = self._ref(session, service, env)
            stmt = (
                select(Release).where(Release.environment_id == environment.id)
                .order_by(Release.version.desc()).limit(limit)
            )
            return list(session.scalars(stmt))

    def get_release(self, service: str, env: str, version: int) -> Release:
        with self.store.session() as session:
            _, environment, _ = self._ref(session, service, env)
            return self._release(session, environment.id, version)

    def live_release(self, service: str, env: str) -> Release | None:
        with self.store.session() as session:
            _, environment, _ = self._ref(session, service, env)
            state = session.get(DeployState, environment.id)
            if state is None or state.live_release_id is None:
                return None
            return session.get(Release, state.live_release_id)

    def artifact_of(self, release: Release) -> Artifact:
        """The release's artifact (loaded with it)."""
        return release.artifact

    def read_config(self, actor: Actor, service: str, env: str) -> dict[str, str]:
        """The config vars, for those who may change them: they hold the service's secrets."""
        self.check_access(actor, service, env, Right.CONFIG)
        return self.get_config(service, env)

    def check_access(self, actor: Actor, service: str, env: str, right: Right = Right.DEPLOY) -> None:
        """Refuse (404, then 403) before anything about the environment's state is looked at."""
        with self.store.session() as session:
            svc, _, _ = self._ref(session, service, env)
            authorize(session, actor, svc, right)

    def get_config(self, service: str, env: str) -> dict[str, str]:
        with self.store.session() as session:
            _, environment, _ = self._ref(session, service, env)
            state = session.get(DeployState, environment.id)
            return dict(state.config) if state is not None else {}

    # Verbs -------------------------------------------------------------------------------

    def deploy(
        self, actor: Actor, service: str, env: str, upload: Path, *, commit: str | None = None,
        description: str = "",
    ) -> Release:
        """Check an uploaded slug before anything is unpacked, keep it, and roll it out."""
        self.check_access(actor, service, env)
        slug = inspect_slug(upload, self.limits)
        return self._new_release(
            actor, service, env, ReleaseSource.of_upload(slug, upload, commit),
            description=description or f"Deploy {slug.digest.removeprefix('sha256:')[:12]}",
            cause=ReleaseCause.DEPLOY,
        )

    def set_config(
        self, actor: Actor, service: str, env: str, set_vars: dict[str, str], unset: list[str]
    ) -> Release | None:
        """Change config vars; with a live release this makes and rolls out a new release."""
        for key in [*set_vars, *unset]:
            if not ENV_KEY_RE.fullmatch(key):  # match() with $ would let "KEY\n" through
                raise Invalid(f"invalid config var name {key!r}: use letters, digits and _")
            if key in RESERVED_KEYS:
                raise Invalid(f"{key} is set by Podium and cannot be changed")
        for key, value in set_vars.items():
            if "\0" in value or len(value) > MAX_VALUE_BYTES:
                raise Invalid(f"invalid value for {key}: no NUL bytes, 32 KiB at most")
        with self.store.session() as session:
            svc, environment, _ = self._ref(session, service, env)
            authorize(session, actor, svc, Right.CONFIG)
            state = self._state(session, environment.id)
            config = {k: v for k, v in state.config.items() if k not in unset}
            config.update(set_vars)
            live = session.get(Release, state.live_release_id) if state.live_release_id else None
            if live is None:
                before = sorted(state.config)
                state.config = config
                audit.record(
                    session, actor, "config.set", service=service, target=env,
                    before={"keys": before}, after={"keys": sorted(config)},
                )
                return None
            source = ReleaseSource.of_release(live).with_config(config)
        changed = [f"set {k}" for k in set_vars] + [f"unset {k}" for k in unset]
        return self._new_release(
            actor, service, env, source, description=", ".join(changed) or "config unchanged",
            cause=ReleaseCause.CONFIG, right=Right.CONFIG,
        )

    def redeploy(self, actor: Actor, service: str, env: str, description: str) -> Release | None:
        """The live release again as a new one (same artifact, config and formation), so its
        processes restart with what Podium gives every release (a rotated ``PODIUM_TOKEN``);
        None when nothing is live."""
        with self.store.session() as session:
            svc, environment, _ = self._ref(session, service, env)
            authorize(session, actor, svc, Right.CONFIG)
            state = self._state(session, environment.id)
            live = session.get(Release, state.live_release_id) if state.live_release_id else None
            if live is None:
                return None
            source = ReleaseSource.of_release(live).with_config(state.config)
        return self._new_release(
            actor, service, env, source, description=description, cause=ReleaseCause.REDEPLOY, right=Right.CONFIG
        )

    def rollback(
        self, actor: Actor, service: str, env: str, to: str | None = None, reason: str = "", *,
        cause: ReleaseCause = ReleaseCause.ROLLBACK,
    ) -> Release:
        """A new release from an older one's artifact and config, as Heroku does."""
        self.check_access(actor, service, env)
        with self.store.session() as session:
            _, environment, _ = self._ref(session, service, env)
            state = self._state(session, environment.id)
            if to is not None:
                target = self._release(session, environment.id, parse_version(to))
                if target.live_at is None:
                    raise Invalid(f"v{target.version} never went live: roll back to a release that did")
            else:
                live = session.get(Release, state.live_release_id) if state.live_release_id else None
                if live is None:
                    raise Invalid("nothing is live yet: there is nothing to roll back")
                earlier = previous_live(session, environment.id, live.version)
                if earlier is None:
                    raise Invalid("no earlier release went live: there is nothing to roll back to")
                target = earlier
            version = target.version
            source = ReleaseSource.of_release(target).with_formation(state.formation or target.formation)
        return self._new_release(
            actor, service, env, source,
            description=f"{reason}: rollback to v{version}" if reason else f"Rollback to v{version}",
            cause=cause, rollback_of=version,
        )

    def promote(self, actor: Actor, service: str, source: str = "staging", dest: str = "production") -> Release:
        """Staging's live artifact into production, with production's own config."""
        self.check_access(actor, service, dest)
        if source == dest:
            raise Invalid("promote needs two different environments")
        live = self.live_release(service, source)
        if live is None:
            raise Invalid(f"nothing is live in {source}: deploy there first")
        return self._new_release(
            actor, service, dest, ReleaseSource.of_release(live, with_config=False, with_formation=False),
            description=f"Promote {source} v{live.version}", cause=ReleaseCause.PROMOTE,
        )

    def scale(self, actor: Actor, service: str, env: str, changes: dict[str, int]) -> Release:
        """Set how many processes of each type run; rolled out as a new release."""
        self.check_access(actor, service, env)
        if not changes:
            raise Invalid("say what to scale, e.g. web=2")
        for kind, quantity in changes.items():
            if not 0 <= quantity <= MAX_QUANTITY:
                raise Invalid(f"{kind}={quantity}: a quantity runs from 0 to {MAX_QUANTITY}")
        live = self.live_release(service, env)
        if live is None:
            raise Invalid("nothing is live yet: deploy before scaling")
        unknown = sorted(set(changes) - (set(live.artifact.processes) - {"release"}))
        if unknown:
            raise Invalid(f"no process type {', '.join(unknown)} in the Procfile of v{live.version}")
        source = ReleaseSource.of_release(live)
        return self._new_release(
            actor, service, env, source.with_formation({**live.formation, **changes}),
            description="Scale " + " ".join(f"{k}={v}" for k, v in sorted(changes.items())),
            cause=ReleaseCause.SCALE,
        )

    # Making a release ----------------------------------------------------------------------

    def _new_release(
        self, actor: Actor, service: str, env: str, source: ReleaseSource, *, description: str,
        cause: ReleaseCause, rollback_of: int | None = None, right: Right = Right.DEPLOY,
    ) -> Release:
        """Take the environment's lock, create release vN from ``source``, and start its rollout."""
        self.ensure_runtime()
        if source.upload is not None:
            self._store_artifact(service, source.upload.slug.digest, source.upload.stored)
        try:
            with self.store.session() as session:
                svc, environment, ref = self._ref(session, service, env)
                authorize(session, actor, svc, right)
                state = self._state(session, environment.id)
                # The lock is this transaction's first write, so concurrent verbs queue behind
                # it and everything below reads what the previous holder committed.
                self._take_lock(session, environment.id, actor)
                session.refresh(state)
                artifact = self._artifact(session, svc, source, actor)
                app_json = AppJson.model_validate(artifact.app_json)
                config = dict(source.config) if source.config is not None else dict(state.config)
                formation = (
                    dict(source.formation) if source.formation is not None
                    else formation_for(state.formation, artifact.processes, app_json)
                )
                missing = [
                    k for k in app_json.required_env() if k not in config and k not in app_json.env_defaults()
                ]
                if missing:
                    raise Invalid(f"app.json requires config vars that are not set: {', '.join(missing)}")
                last = session.scalar(
                    select(Release.version).where(Release.environment_id == environment.id)
                    .order_by(Release.version.desc()).limit(1)
                )
                release = Release(
                    environment_id=environment.id, version=(last or 0) + 1, artifact=artifact,
                    config=config, formation=formation, description=description, cause=cause,
                    created_by=actor.team, token_id=actor.token_id, rollback_of=rollback_of,
                    commit=source.commit, uploaded_at=source.uploaded_at,
                )
                session.add(release)
                session.flush()
                state.lock_release_id = release.id
                state.config, state.formation = dict(config), dict(formation)
                audit.record(
                    session, actor, f"release.{cause.audit_action}", service=service,
                    target=f"{env}/v{release.version}",
                    after={"version": release.version, "digest": artifact.digest, "description": description},
                )
        except IntegrityError:  # a concurrent verb created the same row first (e.g. the first deploy state)
            raise Conflict("another change to this environment started at the same moment: try again") from None
        self.progress.post(release.id, stage=Stage.PENDING, status=ReleaseStatus.PENDING, message=description)
        self.rollouts.submit(svc.owner_id, ref, release.id)  # within the owning team's share of the workers
        return release

    def _artifact(self, session: Session, svc: Service, source: ReleaseSource, actor: Actor) -> Artifact:
        """The source's artifact row: found, or made for a new upload."""
        if source.upload is None:
            found = session.get(Artifact, source.artifact_id)
            if found is None:
                raise NotFound("artifact not found")
            return found
        slug = source.upload.slug
        artifact = session.scalar(
            select(Artifact).where(Artifact.service_id == svc.id, Artifact.digest == slug.digest)
        )
        if artifact is None:
            artifact = Artifact(
                service_id=svc.id, digest=slug.digest, size=slug.size, processes=slug.processes,
                app_json=slug.app_json.model_dump(mode="json", by_alias=True),
                requirements_hash=slug.requirements_hash, commit=source.commit, created_by=actor.team,
            )
            session.add(artifact)
            session.flush()
        return artifact

    def _store_artifact(self, service: str, digest: str, stored: Path) -> None:
        """Keep the slug, once per digest; written before any transaction, so no lock is held meanwhile."""
        path = artifact_path(self.settings, service, digest)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        try:
            shutil.copyfile(stored, partial)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def _take_lock(self, session: Session, environment_id: int, actor: Actor) -> None:
        """One rollout at a time per environment: a conditional update, atomic on every store."""
        server_id = self.server.server_id if self.server is not None else None
        taken = session.execute(
            update(DeployState)
            .where(DeployState.environment_id == environment_id, DeployState.lock_holder.is_(None))
            .values(lock_holder=actor.team, lock_release_id=None, locked_at=utcnow(), lock_server=server_id)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            state = session.get(DeployState, environment_id)
            assert state is not None
            session.refresh(state)
            holding = session.get(Release, state.lock_release_id) if state.lock_release_id else None
            what = f"v{holding.version}" if holding is not None else "a deploy"
            since = state.locked_at.isoformat(timespec="seconds") if state.locked_at else "?"
            raise Conflict(
                f"a deploy is already running here: {what}, held by {state.lock_holder!r} since {since}"
            )

    # Processes and logs --------------------------------------------------------------------

    def teardown(self, service: str) -> None:
        """Stop every process and route of a service (before it is deleted)."""
        if self.runtime_started:
            self.runtime.teardown(service)

    def processes(self, service: str, env: str) -> list[dict[str, Any]]:
        """The live release's processes as the runtime sees them: state, pid, port, node, user,
        uptime, and the restarts Podium counted."""
        live = self.live_release(service, env)
        if live is None:
            return []
        self.ensure_runtime()
        now = utcnow().timestamp()
        running = RunningRelease(ReleaseRef(service, env, live.version), dict(live.ports))
        return [
            {
                "process": p.name, "type": p.type, "state": p.state, "pid": p.pid, "port": live.ports.get(p.name),
                "release": f"v{live.version}", "node": p.node, "user": p.user,
                "uptime_seconds": round(now - p.started_at) if p.started_at and p.state == "RUNNING" else None,
                "restarts": live.restarts.get(p.name, 0), "last_exit": p.last_exit,
            }
            for p in self.runtime.processes(running)
        ]

    def log_files(self, service: str, env: str, process: str | None = None) -> list[Path]:
        """Log files of this environment, oldest release first, where the runtime keeps logs
        in files (the local runtime): the web page reads them until it reads ``read_logs``."""
        with self.store.session() as session:
            self._ref(session, service, env)
        files: Callable[[str, str, str | None], list[Path]] | None = getattr(self.runtime, "log_files", None)
        return files(service, env, process) if files is not None else []

    def read_logs(self, service: str, env: str, lines: int, process: str | None = None) -> list[str]:
        """The last lines of the environment's processes, oldest first."""
        with self.store.session() as session:
            self._ref(session, service, env)
        return self.runtime.read_logs(service, env, lines, process)

    def follow_logs(self, service: str, env: str, process: str | None = None) -> AsyncIterator[str]:
        """New lines of the environment's processes as they are written."""
        return self.runtime.follow_logs(service, env, process)
