"""What an environment's releases say at a glance: ``live v3``, ``failed``, or nothing yet.

Live wins: an environment still serving v2 after v3 failed is ``live v2``. It is
``failed`` when nothing is live and its newest release failed, and nothing (``—``)
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from podium.deploy.models import DeployState, Release, ReleaseStatus


@dataclass(frozen=True)
class ReleaseSummary:
    """``label`` as a person reads it; ``tone`` (live, failed or none) for how it is shown."""

    label: str
    tone: str


NOTHING_LIVE = ReleaseSummary("—", "none")


def release_summaries(session: Session) -> dict[int, ReleaseSummary]:
    """Per environment id that has a release, what its releases say (absent: ``NOTHING_LIVE``)."""
    live = session.execute(
        select(DeployState.environment_id, Release.version).join(Release, Release.id == DeployState.live_release_id)
    )
    summaries = {environment_id: ReleaseSummary(f"live v{version}", "live") for environment_id, version in live}
    newest = (
        select(Release.environment_id, func.max(Release.version).label("version"))
        .group_by(Release.environment_id)
        .subquery()
    )
    failed = session.scalars(
        select(Release.environment_id)
        .join(newest, (Release.environment_id == newest.c.environment_id) & (Release.version == newest.c.version))
        .where(Release.status == ReleaseStatus.FAILED)
    )
    for environment_id in failed:
        summaries.setdefault(environment_id, ReleaseSummary("failed", "failed"))
    return summaries
