"""The rollout of one release, in the background, as a story in stages.

1. **prepare** — the runtime unpacks the slug (``unpacking``) and builds its virtualenv
   (``building``), both cached, so a rollback prepares nothing;
2. **release command** — the Procfile's ``release`` runs once; its failure ends the rollout;
3. **start** — the formation's processes start beside the live release (``starting``);
4. **health** — every new web process must pass the health gate (``health_check``);
5. **switch** — the router sends new requests to the new processes (``switching``), and
   the release is recorded live;
6. **drain** — once no request can reach the previous release, it stops (``draining``);
   the release is watched for a while (auto-rollback).

Any failure before the release is recorded live puts the route back and stops the new
processes: the old release never stopped, so a broken release never takes traffic. The
runtime (``podium.runtime.interface``) does each step; this module decides the order and
records it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update

from podium.artifacts.appjson import AppJson
from podium.config import Settings
from podium.deploy.gate import health_check
from podium.deploy.models import Artifact, DeployState, Release, ReleaseStatus, Stage, mark_live, transition
from podium.deploy.progress import ProgressBoard
from podium.deploy.workers import TeamShares
from podium.errors import PodiumError
from podium.runtime.interface import (
    Draining,
    PreparedRelease,
    ReleaseFailed,
    ReleaseSpec,
    RouteState,
    RunningRelease,
    Runtime,
)
from podium.store.db import Store, utcnow

RELEASE_COMMAND_TIMEOUT = 300.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvRef:
    """A service environment named by the user, resolved to its ids."""

    service: str
    env: str
    service_id: int
    environment_id: int


class ReleaseWatch(Protocol):
    """What a rollout tells the watch of live releases (``podium.deploy.watch``)."""

    def cancel(self, environment_id: int) -> None:
        """A newer release is about to take over the environment: stop watching the old one
        (it must not be rolled back to while it is being replaced)."""

    def start(self, ref: EnvRef, release_id: int, running: RunningRelease, app_json: AppJson) -> None:
        """The release just went live: watch its health for a while. Must return at once."""


def artifact_path(settings: Settings, service: str, digest: str) -> Path:
    """Where a service's slug with ``digest`` is kept."""
    return settings.data_dir / "artifacts" / service / f"{digest.removeprefix('sha256:')}.tgz"


class BuildMeter(Protocol):
    """Where the time spent building a release is counted (billing's build seconds)."""

    def record_build(self, service: str, env: str, started: datetime, finished: datetime) -> None:
        """Count the seconds from ``started`` to ``finished`` (UTC) for the environment; must not
        fail the rollout: the caller logs what it raises and goes on."""


class Rollouts:
    """Runs each release's rollout on a worker thread, so it finishes even if the client goes."""

    def __init__(
        self, settings: Settings, store: Store, runtime: Runtime, progress: ProgressBoard, *,
        app_token: Callable[[int], str] | None, sdk_path: Path | None, watch: ReleaseWatch | None,
        builds: BuildMeter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.progress = progress
        self.app_token = app_token
        self.sdk_path = sdk_path
        self.watch = watch
        self.builds = builds
        # Each owning team gets at most its share of the workers (deploy/workers.py), so one
        # team's slow rollouts cannot hold every team's deploys.
        self._executor = TeamShares(settings.rollout_workers, settings.rollout_team_share)

    def submit(self, team_id: int, ref: EnvRef, release_id: int) -> None:
        """Queue the rollout of ``release_id`` as a job of the service's owning team."""
        self._executor.submit(team_id, Rollout(self, ref, release_id).run)

    def close(self) -> None:
        """Wait for the rollouts under way to end."""
        self._executor.shutdown(wait=True, cancel_futures=False)


class Rollout:
    """One release's rollout; each stage is told to followers as it begins."""

    def __init__(self, rollouts: Rollouts, ref: EnvRef, release_id: int) -> None:
        self.settings, self.store, self.runtime = rollouts.settings, rollouts.store, rollouts.runtime
        self.progress, self.watch, self.builds = rollouts.progress, rollouts.watch, rollouts.builds
        self.app_token, self.sdk_path = rollouts.app_token, rollouts.sdk_path
        self.ref = ref
        self.release_id = release_id
        self.spec: ReleaseSpec | None = None
        self.running: RunningRelease | None = None  # set once processes may have started
        self.routed_before: RouteState | None = None  # set once the route may have changed

    def run(self) -> None:
        """Roll the release out; whatever happens, the environment's lock is released at the end."""
        try:
            switched = self.roll_out()
            if switched is not None:
                self.after_switch(switched)
        finally:
            self.unlock()

    def roll_out(self) -> Draining | None:
        """Every stage up to going live; None when the rollout failed (and was undone)."""
        try:
            self.spec = self.release_spec()
            prepared = self.prepare(self.spec)
            self.release_command(prepared)
            self.running = self.start(prepared)
            self.health(self.running)
            switched = self.switch(self.running)
            self.go_live()
            return switched
        except Exception as exc:  # every failure ends the rollout the same safe way
            reason = exc.detail if isinstance(exc, PodiumError) else f"{type(exc).__name__}: {exc}"
            self.undo()
            self.fail(reason, exc.log_tail if isinstance(exc, ReleaseFailed) else "")
            return None

    # The stages ----------------------------------------------------------------------------

    def release_spec(self) -> ReleaseSpec:
        """What the runtime runs: the artifact, the formation, and every process's environment."""
        ref, settings = self.ref, self.settings
        token = self.app_token(ref.environment_id) if self.app_token is not None else ""
        with self.store.session() as session:
            release = session.get(Release, self.release_id)
            assert release is not None
            artifact = release.artifact
            app_json = AppJson.model_validate(artifact.app_json)
            environment = {**app_json.env_defaults(), **release.config}
            environment.update(
                PODIUM_SERVICE=ref.service, PODIUM_ENV=ref.env, PODIUM_RELEASE=f"v{release.version}",
                PODIUM_URL=settings.base_url, PYTHONUNBUFFERED="1",
            )
            if token:
                environment["PODIUM_TOKEN"] = token
            return ReleaseSpec(
                service=ref.service, env=ref.env, version=release.version,
                artifact_path=artifact_path(settings, ref.service, artifact.digest), digest=artifact.digest,
                processes=dict(artifact.processes), app_json=app_json, formation=dict(release.formation),
                environment=environment, sdk_path=self.sdk_path,
            )

    def prepare(self, spec: ReleaseSpec) -> PreparedRelease:
        """Unpack and build, or find both done (a rollback); the time a build took is metered."""
        prepared = self.runtime.prepare(spec, lambda step, note: self.stage(Stage(step.value), note))
        if prepared.built is not None and self.builds is not None:
            try:
                self.builds.record_build(spec.service, spec.env, *prepared.built)
            except Exception:  # a meter's trouble is no reason to stop a deploy
                log.exception("could not meter the build of %s/%s v%s", spec.service, spec.env, spec.version)
        return prepared

    def release_command(self, prepared: PreparedRelease) -> None:
        """Run the Procfile's ``release`` command; its failure aborts the rollout."""
        command = prepared.spec.processes.get("release")
        if command is not None:
            self.stage(Stage.RELEASING, command)
            self.runtime.run_release_command(prepared, RELEASE_COMMAND_TIMEOUT)

    def start(self, prepared: PreparedRelease) -> RunningRelease:
        """Start the formation beside the live release, and record where its web processes listen."""
        count = sum(n for kind, n in prepared.spec.formation.items() if kind != "release")
        self.stage(Stage.STARTING, f"{count} process(es)")
        self.running = RunningRelease(prepared.spec.ref, {})  # undo stops whatever did start
        running = self.runtime.start(prepared)
        with self.store.session() as session:
            release = session.get(Release, self.release_id)
            assert release is not None
            release.ports = dict(running.ports)
        return running

    def health(self, running: RunningRelease) -> None:
        """Wait until every new web process passes the health gate (or every process stays up)."""
        assert self.spec is not None
        check = health_check(self.spec.app_json, self.settings.health_timeout)
        if running.ports:
            self.stage(Stage.HEALTH_CHECK, f"GET {check.path} on {len(running.ports)} process(es)")
        elif any(n for kind, n in self.spec.formation.items() if kind != "release"):
            self.stage(Stage.HEALTH_CHECK, "waiting for the processes to stay up")
        self.runtime.wait_healthy(running, check)

    def switch(self, running: RunningRelease) -> Draining:
        """Point the route at the new release; returns once new requests reach it."""
        if self.watch is not None:
            self.watch.cancel(self.ref.environment_id)
        self.routed_before = self.runtime.route(self.ref.service, self.ref.env)
        self.stage(Stage.SWITCHING, "")
        return self.runtime.switch(running)

    def go_live(self) -> None:
        """The router points at the new release: record it live and the old one superseded,
        and the rollout draining, in one transaction (one store write less on the way to done)."""
        with self.store.session() as session:
            mark_live(session, self.ref.environment_id, self.release_id)
            release = session.get(Release, self.release_id)
            assert release is not None
            release.stage = Stage.DRAINING
        self.progress.post(
            self.release_id, stage=Stage.DRAINING, status=ReleaseStatus.LIVE, message="stopping the previous release"
        )

    def after_switch(self, switched: Draining) -> None:
        """The release serves: drain and stop the previous one, tidy up, and watch the new one.

        Nothing here is undone on failure: the release is live and stays live; processes
        left running are stopped by the next rollout or by start-up recovery.
        """
        assert self.spec is not None
        assert self.running is not None
        message = "live"
        try:
            self.drain(switched)
            self.prune()
        except Exception as exc:
            log.exception("after v%s of %s/%s went live", self.spec.version, self.ref.service, self.ref.env)
            message = f"live, but stopping the previous release failed: {exc}"
        self.finish(message)
        if self.watch is not None and self.running.ports:
            self.watch.start(self.ref, self.release_id, self.running, self.spec.app_json)

    def drain(self, switched: Draining) -> None:
        """Stop the previous release once no router worker from before the switch is left,
        so a request one of them still carries reaches a live process."""
        assert self.spec is not None
        switched.wait_drained()  # the draining stage began as the release went live
        self.runtime.stop_all_but(self.ref.service, self.ref.env, keep=self.spec.version)

    def prune(self) -> None:
        """Keep the prepared files of the last K releases that went live, so a rollback needs
        no unpack; failed releases, which no rollback can pick, do not count."""
        with self.store.session() as session:
            recent = session.scalars(
                select(Artifact.digest).join(Release, Release.artifact_id == Artifact.id)
                .where(Release.environment_id == self.ref.environment_id, Release.live_at.is_not(None))
                .order_by(Release.version.desc()).limit(self.settings.keep_releases)
            )
            keep = set(recent)
        self.runtime.prune(self.ref.service, self.ref.env, keep)

    # Undo and the end ------------------------------------------------------------------------

    def undo(self) -> None:
        """Put the route back, then stop the new processes; never the other way round."""
        try:
            if self.routed_before is not None:
                self.runtime.switch_back(self.routed_before)
            if self.running is not None:
                self.runtime.stop(self.running.ref)
        except Exception:  # whatever is left over, start-up recovery or the next rollout removes
            log.exception("could not undo the rollout of %s/%s", self.ref.service, self.ref.env)

    def stage(self, stage: Stage, message: str) -> None:
        """Record the stage the rollout enters (the release is deploying from the first)."""
        with self.store.session() as session:
            release = session.get(Release, self.release_id)
            assert release is not None
            release.stage = stage
            if release.status == ReleaseStatus.PENDING:
                transition(release, ReleaseStatus.DEPLOYING)
                release.started_at = utcnow()
            status = ReleaseStatus(release.status)
        self.progress.post(self.release_id, stage=stage, status=status, message=message)

    def finish(self, message: str) -> None:
        try:
            with self.store.session() as session:
                release = session.get(Release, self.release_id)
                assert release is not None
                release.stage = Stage.DONE
                release.finished_at = utcnow()
        finally:  # followers of the rollout are told it ended, even if the store was not
            self.end(Stage.DONE, ReleaseStatus.LIVE, message)

    def fail(self, reason: str, log_tail: str) -> None:
        stage = Stage.PENDING
        try:
            with self.store.session() as session:
                release = session.get(Release, self.release_id)
                assert release is not None
                stage = Stage(release.stage)
                transition(release, ReleaseStatus.FAILED)
                release.failure_reason = f"{stage}: {reason}"
                release.log_tail = log_tail or None
                release.finished_at = utcnow()
        finally:  # followers of the rollout are told it ended, even if the store was not
            self.end(stage, ReleaseStatus.FAILED, reason)

    def end(self, stage: Stage, status: ReleaseStatus, message: str) -> None:
        """Free the environment, then tell followers: one who deploys again at once finds it free."""
        try:
            self.unlock()
        except Exception:  # run() unlocks again; followers must hear of the end regardless
            log.exception("could not release the deploy lock of %s/%s", self.ref.service, self.ref.env)
        self.progress.post(self.release_id, stage=stage, status=status, message=message, done=True)

    def unlock(self) -> None:
        with self.store.session() as session:
            session.execute(
                update(DeployState)
                .where(
                    DeployState.environment_id == self.ref.environment_id,
                    DeployState.lock_release_id == self.release_id,
                )
                .values(lock_holder=None, lock_release_id=None, locked_at=None, lock_server=None)
            )
