"""Deploy tables: artifacts, releases (each one rollout), and per-environment deploy state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from podium.errors import Conflict
from podium.store.crypto import SealedJSON
from podium.store.db import Base, utcnow


class Stage(StrEnum):
    """Where a rollout is; every release passes these in order until live or failed."""

    PENDING = "pending"
    UNPACKING = "unpacking"
    BUILDING = "building"
    RELEASING = "releasing"
    STARTING = "starting"
    HEALTH_CHECK = "health_check"
    SWITCHING = "switching"
    DRAINING = "draining"
    DONE = "done"


class ReleaseCause(StrEnum):
    """Why a release was made: the verb that made it. DORA counts ``AUTO_ROLLBACK`` releases
    as the change failures they answer."""

    DEPLOY = "deploy"  # a new slug
    CONFIG = "config"  # config vars changed
    REDEPLOY = "redeploy"  # the live release again, for what Podium gives every release (a new app token)
    ROLLBACK = "rollback"  # an older release's artifact and config, by a person
    AUTO_ROLLBACK = "auto_rollback"  # the same, by Podium, after failed health checks
    PROMOTE = "promote"  # another environment's live artifact
    SCALE = "scale"  # the formation changed

    @property
    def audit_action(self) -> str:
        """The audit log's name for it (``release.<action>``), as it was before causes were kept."""
        return {ReleaseCause.REDEPLOY: "config", ReleaseCause.AUTO_ROLLBACK: "rollback"}.get(self, self.value)


class ReleaseStatus(StrEnum):
    """A release's lifecycle: pending → deploying → live → superseded, or → failed."""

    PENDING = "pending"
    DEPLOYING = "deploying"
    LIVE = "live"
    SUPERSEDED = "superseded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (ReleaseStatus.LIVE, ReleaseStatus.SUPERSEDED, ReleaseStatus.FAILED)


ALLOWED_TRANSITIONS: dict[ReleaseStatus, set[ReleaseStatus]] = {
    ReleaseStatus.PENDING: {ReleaseStatus.DEPLOYING, ReleaseStatus.FAILED},
    ReleaseStatus.DEPLOYING: {ReleaseStatus.LIVE, ReleaseStatus.FAILED},
    ReleaseStatus.LIVE: {ReleaseStatus.SUPERSEDED},
    ReleaseStatus.SUPERSEDED: set(),
    ReleaseStatus.FAILED: set(),
}


def transition(release: Release, to: ReleaseStatus) -> None:
    """Move a release to a new status, refusing a move its lifecycle does not allow."""
    current = ReleaseStatus(release.status)
    if to not in ALLOWED_TRANSITIONS[current]:
        raise Conflict(f"release v{release.version} cannot go from {current} to {to}")
    release.status = to


class Artifact(Base):
    """A slug as uploaded: stored once per service by digest.

    ``commit`` and ``created_at`` are those of its first upload; each release keeps its own
    (the same bytes may be deployed again from another commit).
    """

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("service_id", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(80))
    size: Mapped[int] = mapped_column(BigInteger)
    processes: Mapped[dict[str, str]] = mapped_column(JSON)
    app_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    requirements_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    commit: Mapped[str | None] = mapped_column(String(80), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(40))


class Release(Base):
    """Release vN of a service environment: artifact + config + formation, and its rollout."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("environment_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    # Loaded with the release, in the same query: listing releases costs one query, not one per release.
    artifact: Mapped[Artifact] = relationship(lazy="joined", innerjoin=True)
    # The commit the slug was built from, and when the slug was uploaded: given by a deploy,
    # carried over by the releases that reuse its artifact (config, scale, rollback, promote).
    commit: Mapped[str | None] = mapped_column(String(80), default=None)
    uploaded_at: Mapped[datetime | None] = mapped_column(default=None)
    config: Mapped[dict[str, str]] = mapped_column(SealedJSON)  # sealed at rest: see store/crypto.py
    formation: Mapped[dict[str, int]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(500))
    cause: Mapped[str] = mapped_column(
        String(20), default=ReleaseCause.DEPLOY, server_default=ReleaseCause.DEPLOY.value
    )
    created_by: Mapped[str] = mapped_column(String(40))
    token_id: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default=ReleaseStatus.PENDING)
    stage: Mapped[str] = mapped_column(String(20), default=Stage.PENDING)
    ports: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    log_tail: Mapped[str | None] = mapped_column(Text, default=None)
    rollback_of: Mapped[int | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    live_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    crashes: Mapped[int] = mapped_column(default=0)  # of all its processes
    restarts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))  # per process
    last_crash_at: Mapped[datetime | None] = mapped_column(default=None)
    # per process, how its last crash ended when the runtime knows: "oom", "exit 1", "signal 9"
    last_exits: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))


class DeployState(Base):
    """Per service environment: the live release, the formation, and the deploy lock.

    The lock is a row, so it survives a restart; recovery at start-up clears it, or, with
    several servers, the leader once the server running the rollout is gone.
    """

    __tablename__ = "deploy_states"

    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environments.id", ondelete="CASCADE"), primary_key=True
    )
    live_release_id: Mapped[int | None] = mapped_column(default=None)
    formation: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    config: Mapped[dict[str, str]] = mapped_column(SealedJSON, default=dict)  # sealed at rest
    lock_holder: Mapped[str | None] = mapped_column(String(80), default=None)
    lock_release_id: Mapped[int | None] = mapped_column(default=None)
    locked_at: Mapped[datetime | None] = mapped_column(default=None)
    lock_server: Mapped[int | None] = mapped_column(default=None)  # the cluster server running the rollout


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
