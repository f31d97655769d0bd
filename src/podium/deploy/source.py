"""Where a new release comes from: a new upload, or the artifact of an existing release.

Every verb that makes a release says it with one ``ReleaseSource``; the release copies
the source's artifact, commit and upload time, and takes its config and formation from
the source when it has them, else from the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from podium.artifacts.appjson import AppJson
from podium.artifacts.slug import Slug
from podium.deploy.models import Release
from podium.store.db import utcnow


@dataclass(frozen=True)
class Upload:
    """A slug checked before anything was unpacked, and the file it was read from."""

    slug: Slug
    stored: Path


@dataclass(frozen=True)
class ReleaseSource:
    """An upload (``upload``) or an existing artifact (``artifact_id``); ``config`` and
    ``formation`` None mean "the environment's current ones"."""

    upload: Upload | None = None
    artifact_id: int | None = None
    commit: str | None = None
    uploaded_at: datetime | None = None
    config: Mapping[str, str] | None = field(default=None, hash=False)
    formation: Mapping[str, int] | None = field(default=None, hash=False)

    @classmethod
    def of_upload(cls, slug: Slug, stored: Path, commit: str | None) -> ReleaseSource:
        """A new slug, uploaded now from ``commit``; the environment's config and scale."""
        return cls(upload=Upload(slug, stored), commit=commit, uploaded_at=utcnow())

    @classmethod
    def of_release(cls, release: Release, *, with_config: bool = True, with_formation: bool = True) -> ReleaseSource:
        """``release``'s artifact, commit and upload time, and (unless told otherwise) its
        config and formation."""
        return cls(
            artifact_id=release.artifact_id, commit=release.commit, uploaded_at=release.uploaded_at,
            config=dict(release.config) if with_config else None,
            formation=dict(release.formation) if with_formation else None,
        )

    def with_config(self, config: Mapping[str, str] | None) -> ReleaseSource:
        return replace(self, config=dict(config) if config is not None else None)

    def with_formation(self, formation: Mapping[str, int] | None) -> ReleaseSource:
        return replace(self, formation=dict(formation) if formation is not None else None)


def default_formation(processes: Mapping[str, str], app_json: AppJson) -> dict[str, int]:
    """Heroku's rule: one ``web``, no other process type, unless app.json's formation says so."""
    formation = {kind: (1 if kind == "web" else 0) for kind in processes if kind != "release"}
    for kind, entry in app_json.formation.items():
        if kind in formation:
            formation[kind] = entry.quantity
    return formation


def formation_for(current: Mapping[str, int], processes: Mapping[str, str], app_json: AppJson) -> dict[str, int]:
    """Keep the scale the user chose for process types the new slug still has."""
    formation = default_formation(processes, app_json)
    for kind in formation:
        if kind in current:
            formation[kind] = current[kind]
    return formation
