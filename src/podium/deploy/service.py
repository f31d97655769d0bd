"""Deploy verbs: deploy, config, rollback, promote, scale; and the rollouts they start.

A verb checks ownership, creates release vN and takes the environment's deploy lock in
one transaction, then hands the rollout to a worker thread so it finishes even if the
client goes away. Clients follow it through ``progress``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.artifacts.appjson import AppJson
from podium.artifacts.slug import Slug, SlugLimits, inspect_slug
from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Right, Service
from podium.catalog.service import authorize, get_environment, get_service
from podium.config import Settings
from podium.deploy.health import probe_client
from podium.deploy.models import Artifact, DeployState, Release, ReleaseStatus, Stage, transition
from podium.deploy.progress import ProgressBoard
from podium.deploy.rollout import EnvLayout, Rollout, RolloutFailed, Target, group_name, route_name
from podium.errors import Conflict, Invalid, NotFound, PodiumError
from podium.runtime.node import Node
from podium.runtime.router import Switch
from podium.store.db import Store, utcnow

ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_KEYS = {"PORT", "PODIUM_SERVICE", "PODIUM_ENV", "PODIUM_RELEASE", "PODIUM_TOKEN"}
MAX_QUANTITY = 20
SYSTEM_ACTOR = Actor(team="platform", team_id=0, token_id=None)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvRef:
    """A service environment named by the user, resolved to its ids."""

    service: str
    env: str
    service_id: int
    environment_id: int


def parse_version(text: str) -> int:
    match = re.fullmatch(r"v?(\d{1,9})", text.strip())
    if match is None:
        raise Invalid(f"invalid release {text!r}: use a version like v3")
    return int(match.group(1))


def default_formation(processes: dict[str, str], app_json: AppJson) -> dict[str, int]:
    """Heroku's rule: one ``web``, no other process type, unless app.json's formation says so."""
    formation = {kind: (1 if kind == "web" else 0) for kind in processes if kind != "release"}
    for kind, entry in app_json.formation.items():
        if kind in formation:
            formation[kind] = entry.quantity
    return formation


class DeployService:
    """Deploys on one node, for the service environments of one store."""

    def __init__(self, settings: Settings, store: Store, node: Node) -> None:
        self.settings = settings
        self.store = store
        self.node = node
        self.root = settings.data_dir / "deploy"
        self.artifacts = settings.data_dir / "artifacts"
        self.venvs = settings.data_dir / "venvs"
        self.uploads = settings.data_dir / "uploads"
        self.limits = SlugLimits.from_settings(settings)
        self.progress = ProgressBoard()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rollout")
        self.probes = probe_client()  # health probes of every rollout and watch, shared (thread-safe)
        self.node_started = False
        # The environment's app token by environment id (PODIUM_TOKEN), when the core provides one.
        self.app_token: Callable[[int], str] | None = None
        self.sdk_path: Path | None = None  # the application SDK, put on every process's PYTHONPATH
        self._start_lock = threading.Lock()
        self.watch: Any = None  # set by podium.deploy.watch when the server runs
        self.server_id: int | None = None  # this server's id in the cluster, recorded on the locks it takes

    # Lifecycle ---------------------------------------------------------------------------

    def ensure_node(self) -> None:
        """Start the node's supervisord and router if they are not running."""
        with self._start_lock:
            if not self.node_started:
                self.node.ensure_running()
                self.node_started = True

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)
        self.probes.close()

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
        """Releases newest first."""
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
        with self.store.session() as session:
            artifact = session.get(Artifact, release.artifact_id)
            assert artifact is not None
            return artifact

    def read_config(self, actor: Actor, service: str, env: str) -> dict[str, str]:
        """The config vars, for those who may change them: they hold the service's secrets."""
        with self.store.session() as session:
            svc, _, _ = self._ref(session, service, env)
            authorize(session, actor, svc, Right.CONFIG)
        return self.get_config(service, env)

    def authorize(self, actor: Actor, service: str, env: str, right: Right = Right.DEPLOY) -> None:
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
        self.authorize(actor, service, env)
        slug = inspect_slug(upload, self.limits)
        return self._new_release(
            actor, service, env, slug=slug, stored=upload, commit=commit,
            description=description or f"Deploy {slug.digest.removeprefix('sha256:')[:12]}",
            action="deploy",
        )

    def _new_release(
        self, actor: Actor, service: str, env: str, *, slug: Slug | None = None, stored: Path | None = None,
        artifact_id: int | None = None, config: dict[str, str] | None = None,
        formation: dict[str, int] | None = None, commit: str | None = None, uploaded_at: datetime | None = None,
        description: str, action: str, rollback_of: int | None = None, right: Right = Right.DEPLOY,
    ) -> Release:
        """Take the environment's lock, create release vN, and start the rollout.

        With a ``slug``, the release ships a new upload (of ``commit``); otherwise it reuses
        ``artifact_id``, with the ``commit`` and ``uploaded_at`` of the release it copies.
        """
        if slug is not None:
            uploaded_at = utcnow()
        self.ensure_node()
        if slug is not None and stored is not None:
            self._store_artifact(service, slug.digest, stored)
        try:
            with self.store.session() as session:
                svc, environment, ref = self._ref(session, service, env)
                authorize(session, actor, svc, right)
                state = self._state(session, environment.id)
                # The lock is this transaction's first write, so concurrent verbs queue behind
                # it and everything below reads what the previous holder committed.
                self._take_lock(session, environment.id, actor)
                session.refresh(state)
                if slug is not None:
                    artifact = self._artifact_row(session, svc, slug, commit, actor)
                else:
                    found = session.get(Artifact, artifact_id)
                    if found is None:
                        raise NotFound("artifact not found")
                    artifact = found
                processes = dict(artifact.processes)
                app_json = AppJson.model_validate(artifact.app_json)
                if config is None:
                    config = dict(state.config)
                if formation is None:
                    formation = self._formation_for(state.formation, processes, app_json)
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
                    environment_id=environment.id, version=(last or 0) + 1, artifact_id=artifact.id,
                    config=config, formation=formation, description=description, created_by=actor.team,
                    token_id=actor.token_id, rollback_of=rollback_of, commit=commit, uploaded_at=uploaded_at,
                )
                session.add(release)
                session.flush()
                state.lock_release_id = release.id
                state.config, state.formation = dict(config), dict(formation)
                audit.record(
                    session, actor, f"release.{action}", service=service, target=f"{env}/v{release.version}",
                    after={"version": release.version, "digest": artifact.digest, "description": description},
                )
        except IntegrityError:  # a concurrent verb created the same row first (e.g. the first deploy state)
            raise Conflict("another change to this environment started at the same moment: try again") from None
        self.progress.post(release.id, stage=Stage.PENDING, status=ReleaseStatus.PENDING, message=description)
        self._executor.submit(self._run, ref, release.id)
        return release

    def _store_artifact(self, service: str, digest: str, stored: Path) -> None:
        """Keep the slug, once per digest; written before any transaction, so no lock is held meanwhile."""
        path = self.artifact_path(service, digest)
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

    def _artifact_row(self, session: Session, svc: Service, slug: Slug, commit: str | None, actor: Actor) -> Artifact:
        artifact = session.scalar(
            select(Artifact).where(Artifact.service_id == svc.id, Artifact.digest == slug.digest)
        )
        if artifact is None:
            artifact = Artifact(
                service_id=svc.id, digest=slug.digest, size=slug.size, processes=slug.processes,
                app_json=slug.app_json.model_dump(mode="json", by_alias=True),
                requirements_hash=slug.requirements_hash, commit=commit, created_by=actor.team,
            )
            session.add(artifact)
            session.flush()
        return artifact

    def artifact_path(self, service: str, digest: str) -> Path:
        return self.artifacts / service / f"{digest.removeprefix('sha256:')}.tgz"

    @staticmethod
    def _formation_for(current: dict[str, int], processes: dict[str, str], app_json: AppJson) -> dict[str, int]:
        """Keep the scale the user chose for process types the new slug still has."""
        formation = default_formation(processes, app_json)
        for kind in formation:
            if kind in current:
                formation[kind] = current[kind]
        return formation

    def _take_lock(self, session: Session, environment_id: int, actor: Actor) -> None:
        """One rollout at a time per environment: a conditional update, atomic on every store."""
        taken = session.execute(
            update(DeployState)
            .where(DeployState.environment_id == environment_id, DeployState.lock_holder.is_(None))
            .values(lock_holder=actor.team, lock_release_id=None, locked_at=utcnow(), lock_server=self.server_id)
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
            if "\0" in value or len(value) > 32_768:
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
            artifact_id, formation = live.artifact_id, dict(live.formation)
            commit, uploaded_at = live.commit, live.uploaded_at
        changed = [f"set {k}" for k in set_vars] + [f"unset {k}" for k in unset]
        return self._new_release(
            actor, service, env, artifact_id=artifact_id, config=config, formation=formation, commit=commit,
            uploaded_at=uploaded_at, description=", ".join(changed) or "config unchanged", action="config",
            right=Right.CONFIG,
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
            artifact_id, config, formation = live.artifact_id, dict(state.config), dict(live.formation)
            commit, uploaded_at = live.commit, live.uploaded_at
        return self._new_release(
            actor, service, env, artifact_id=artifact_id, config=config, formation=formation, commit=commit,
            uploaded_at=uploaded_at, description=description, action="config", right=Right.CONFIG,
        )

    def rollback(
        self, actor: Actor, service: str, env: str, to: str | None = None, reason: str = ""
    ) -> Release:
        """A new release from an older one's artifact and config, as Heroku does."""
        self.authorize(actor, service, env)
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
            version, artifact_id, config = target.version, target.artifact_id, dict(target.config)
            formation = dict(state.formation) or dict(target.formation)
            commit, uploaded_at = target.commit, target.uploaded_at
        return self._new_release(
            actor, service, env, artifact_id=artifact_id, config=config, formation=formation, commit=commit,
            uploaded_at=uploaded_at,
            description=f"{reason}: rollback to v{version}" if reason else f"Rollback to v{version}",
            action="rollback", rollback_of=version,
        )

    def promote(self, actor: Actor, service: str, source: str = "staging", dest: str = "production") -> Release:
        """Staging's live artifact into production, with production's own config."""
        self.authorize(actor, service, dest)
        if source == dest:
            raise Invalid("promote needs two different environments")
        live = self.live_release(service, source)
        if live is None:
            raise Invalid(f"nothing is live in {source}: deploy there first")
        return self._new_release(
            actor, service, dest, artifact_id=live.artifact_id, commit=live.commit, uploaded_at=live.uploaded_at,
            description=f"Promote {source} v{live.version}", action="promote",
        )

    def scale(self, actor: Actor, service: str, env: str, changes: dict[str, int]) -> Release:
        """Set how many processes of each type run; rolled out as a new release."""
        self.authorize(actor, service, env)
        if not changes:
            raise Invalid("say what to scale, e.g. web=2")
        for kind, quantity in changes.items():
            if not 0 <= quantity <= MAX_QUANTITY:
                raise Invalid(f"{kind}={quantity}: a quantity runs from 0 to {MAX_QUANTITY}")
        live = self.live_release(service, env)
        if live is None:
            raise Invalid("nothing is live yet: deploy before scaling")
        artifact = self.artifact_of(live)
        unknown = sorted(set(changes) - (set(artifact.processes) - {"release"}))
        if unknown:
            raise Invalid(f"no process type {', '.join(unknown)} in the Procfile of v{live.version}")
        formation = {**live.formation, **changes}
        return self._new_release(
            actor, service, env, artifact_id=live.artifact_id, config=dict(live.config), formation=formation,
            commit=live.commit, uploaded_at=live.uploaded_at,
            description="Scale " + " ".join(f"{k}={v}" for k, v in sorted(changes.items())), action="scale",
        )

    # The rollout ---------------------------------------------------------------------------

    def _post(self, release_id: int, stage: str, status: str, message: str = "", done: bool = False) -> None:
        self.progress.post(release_id, stage=stage, status=status, message=message, done=done)

    def _set_stage(self, release_id: int, stage: str, message: str) -> None:
        with self.store.session() as session:
            release = session.get(Release, release_id)
            assert release is not None
            release.stage = stage
            if release.status == ReleaseStatus.PENDING:
                transition(release, ReleaseStatus.DEPLOYING)
                release.started_at = utcnow()
            status = release.status
        self._post(release_id, stage, status, message)

    def _target(self, ref: EnvRef, release_id: int) -> Target:
        token = self.app_token(ref.environment_id) if self.app_token is not None else ""
        with self.store.session() as session:
            release = session.get(Release, release_id)
            assert release is not None
            artifact = session.get(Artifact, release.artifact_id)
            assert artifact is not None
            return Target(
                service=ref.service, env=ref.env, version=release.version,
                artifact_path=self.artifact_path(ref.service, artifact.digest), digest=artifact.digest,
                processes=dict(artifact.processes), app_json=AppJson.model_validate(artifact.app_json),
                config=dict(release.config), formation=dict(release.formation),
                public_url=self.settings.base_url, podium_token=token,
                sdk_path=str(self.sdk_path) if self.sdk_path is not None else "",
            )

    def _run(self, ref: EnvRef, release_id: int) -> None:
        """Roll a release out; whatever happens, the lock is released at the end."""
        try:
            switched = self._roll_out(ref, release_id)
            if switched is not None:
                self._after_switch(ref, release_id, *switched)
        finally:
            self._unlock(ref.environment_id, release_id)

    def _roll_out(self, ref: EnvRef, release_id: int) -> tuple[Target, dict[str, int], Switch | None] | None:
        """Every stage up to the switch and going live; None when the rollout failed.

        Until the release is recorded live, a failure undoes what was done: the router is
        pointed back where it pointed before, the new processes stop, and the old release,
        which never stopped, keeps serving.
        """
        rollout: Rollout | None = None
        started = switching = False
        routed_before: list[int] | None = None
        try:
            target = self._target(ref, release_id)
            rollout = Rollout(
                self.node, EnvLayout(self.root, ref.service, ref.env), target, limits=self.limits,
                venv_cache=self.venvs, health_deadline=self.settings.health_timeout,
                log_max_bytes=self.settings.log_max_bytes,
                on_stage=lambda stage, msg: self._set_stage(release_id, stage, msg), probes=self.probes,
            )
            app = rollout.unpack()
            venv = rollout.build(app)
            rollout.release_command(app, venv)
            ports = rollout.web_ports()
            self._record_ports(release_id, ports)
            specs = rollout.specs(app, venv, ports)
            started = True
            rollout.start(specs)
            rollout.health_gate(ports, specs)
            if self.watch is not None:
                self.watch.cancel(ref.environment_id)
            routed_before = rollout.routed()
            switching = True
            switch = rollout.switch(ports)
            self._go_live(ref, release_id)
            return target, ports, switch
        except Exception as exc:  # every failure ends the rollout the same safe way
            reason = exc.detail if isinstance(exc, PodiumError) else f"{type(exc).__name__}: {exc}"
            log_tail = exc.log_tail if isinstance(exc, RolloutFailed) else ""
            if rollout is not None:
                self._undo(rollout, started=started, switching=switching, routed_before=routed_before)
            self._fail(ref, release_id, reason, log_tail)
            return None

    @staticmethod
    def _undo(rollout: Rollout, *, started: bool, switching: bool, routed_before: list[int] | None) -> None:
        """Put the router back, then stop the new processes; never the other way round."""
        try:
            if switching:
                rollout.switch_back(routed_before)
            if started:
                rollout.stop_new()
        except Exception:  # whatever is left over, start-up recovery or the next rollout removes
            log.exception("could not undo the rollout of %s", rollout.group)

    def _after_switch(
        self, ref: EnvRef, release_id: int, target: Target, ports: dict[str, int], switch: Switch | None
    ) -> None:
        """The release serves: stop the previous one, tidy up, and watch the new one.

        The previous release's processes stop only once the router's workers from before the
        switch have exited, so a request one of them still carries reaches a live process.
        Nothing here is undone on failure: the release is live and stays live; processes
        left running are stopped by the next rollout or by start-up recovery.
        """
        message = "live"
        try:
            self._set_stage(release_id, Stage.DRAINING, "stopping the previous release")
            if switch is not None:
                switch.wait_drained()
            self._drain(ref, keep=target.version)
            self._prune(ref)
        except Exception as exc:
            log.exception("after v%s of %s/%s went live", target.version, ref.service, ref.env)
            message = f"live, but stopping the previous release failed: {exc}"
        self._finish(ref, release_id, message)
        if self.watch is not None and ports:
            self.watch.start(ref, release_id, list(ports.values()), target.app_json)

    def _record_ports(self, release_id: int, ports: dict[str, int]) -> None:
        with self.store.session() as session:
            release = session.get(Release, release_id)
            assert release is not None
            release.ports = ports

    def _go_live(self, ref: EnvRef, release_id: int) -> None:
        """The router points at the new release: record it live and the old one superseded."""
        with self.store.session() as session:
            mark_live(session, ref.environment_id, release_id)

    def _drain(self, ref: EnvRef, keep: int) -> None:
        """Stop every process group of this environment but the live release's."""
        prefix = f"{ref.service}_{ref.env}_v"
        for group in self.node.supervisor.groups():
            if group.startswith(prefix) and group != group_name(ref.service, ref.env, keep):
                self.node.supervisor.remove_group(group)

    def _prune(self, ref: EnvRef) -> None:
        """Keep the apps of the last K releases that went live unpacked, so a rollback needs
        no unpack; failed releases, which no rollback can pick, do not count."""
        layout = EnvLayout(self.root, ref.service, ref.env)
        with self.store.session() as session:
            recent = session.scalars(
                select(Artifact.digest).join(Release, Release.artifact_id == Artifact.id)
                .where(Release.environment_id == ref.environment_id, Release.live_at.is_not(None))
                .order_by(Release.version.desc()).limit(self.settings.keep_releases)
            )
            keep = {layout.app_dir(d).name for d in recent}
        if layout.apps.exists():
            for entry in layout.apps.iterdir():
                if entry.name not in keep and not entry.name.startswith("."):
                    shutil.rmtree(entry, ignore_errors=True)

    def _finish(self, ref: EnvRef, release_id: int, message: str) -> None:
        try:
            with self.store.session() as session:
                release = session.get(Release, release_id)
                assert release is not None
                release.stage = Stage.DONE
                release.finished_at = utcnow()
        finally:  # followers of the rollout are told it ended, even if the store was not
            self._end(ref, release_id, Stage.DONE, ReleaseStatus.LIVE, message)

    def _end(self, ref: EnvRef, release_id: int, stage: str, status: str, message: str) -> None:
        """Free the environment, then tell followers: one who deploys again at once finds it free."""
        try:
            self._unlock(ref.environment_id, release_id)
        except Exception:  # _run unlocks again; followers must hear of the end regardless
            log.exception("could not release the deploy lock of %s/%s", ref.service, ref.env)
        self._post(release_id, stage, status, message, done=True)

    def _fail(self, ref: EnvRef, release_id: int, reason: str, log_tail: str) -> None:
        stage = Stage.PENDING.value
        try:
            with self.store.session() as session:
                release = session.get(Release, release_id)
                assert release is not None
                stage = release.stage
                transition(release, ReleaseStatus.FAILED)
                release.failure_reason = f"{stage}: {reason}"
                release.log_tail = log_tail or None
                release.finished_at = utcnow()
        finally:  # followers of the rollout are told it ended, even if the store was not
            self._end(ref, release_id, stage, ReleaseStatus.FAILED, reason)

    def _unlock(self, environment_id: int, release_id: int) -> None:
        with self.store.session() as session:
            session.execute(
                update(DeployState)
                .where(DeployState.environment_id == environment_id, DeployState.lock_release_id == release_id)
                .values(lock_holder=None, lock_release_id=None, locked_at=None, lock_server=None)
            )

    def teardown(self, service: str) -> None:
        """Stop every process and route of a service (before it is deleted)."""
        if not self.node_started:
            return
        for group in self.node.supervisor.groups():
            if group.startswith(f"{service}_"):
                self.node.supervisor.remove_group(group)
        for env in ("staging", "production"):
            self.node.router.remove_route(route_name(service, env))

    # Processes and logs --------------------------------------------------------------------

    def processes(self, service: str, env: str) -> list[dict[str, Any]]:
        """The live release's processes as supervisord sees them, with ports and restarts."""
        live = self.live_release(service, env)
        if live is None:
            return []
        self.ensure_node()
        try:
            infos = self.node.supervisor.group_status(group_name(service, env, live.version))
        except NotFound:  # scaled to zero: the release runs no process
            return []
        now = utcnow().timestamp()
        return [
            {
                "process": info.name, "type": info.name.rsplit("-", 1)[0], "state": info.state,
                "pid": info.pid, "port": live.ports.get(info.name), "release": f"v{live.version}",
                "uptime_seconds": round(now - info.started_at) if info.started_at and info.state == "RUNNING"
                else None,
                "restarts": live.restarts.get(info.name, 0),
            }
            for info in infos
        ]

    def log_files(self, service: str, env: str, process: str | None = None) -> list[Path]:
        """Log files of this environment, oldest release first."""
        with self.store.session() as session:
            self._ref(session, service, env)
        layout = EnvLayout(self.root, service, env)
        if not layout.logs.exists():
            return []

        def version(path: Path) -> tuple[int, str]:
            head = path.name.split(".", 1)[0]
            return (int(head[1:]) if head[1:].isdigit() else 0, path.name)

        files = [p for p in layout.logs.glob("v*.log") if process is None or f".{process}" in p.name]
        return sorted(files, key=version)


def previous_live(session: Session, environment_id: int, below: int) -> Release | None:
    """The newest release before version ``below`` that went live: where a rollback goes."""
    return session.scalar(
        select(Release)
        .where(Release.environment_id == environment_id, Release.version < below, Release.live_at.is_not(None))
        .order_by(Release.version.desc())
        .limit(1)
    )


def mark_live(session: Session, environment_id: int, release_id: int) -> None:
    """Release ``release_id`` is what the router serves: make the store say so."""
    state = session.get(DeployState, environment_id)
    assert state is not None
    release = session.get(Release, release_id)
    assert release is not None
    if state.live_release_id is not None and state.live_release_id != release_id:
        previous = session.get(Release, state.live_release_id)
        if previous is not None and previous.status == ReleaseStatus.LIVE:
            transition(previous, ReleaseStatus.SUPERSEDED)
    transition(release, ReleaseStatus.LIVE)
    release.live_at = utcnow()
    state.live_release_id = release_id

