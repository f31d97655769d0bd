"""Database add-on routes under ``/api/v1/services/{service}/``.

Each route checks who asks and calls one ``AddonService`` verb. A change that rolls out
a new release answers with it; follow it at ``.../releases/{version}/events``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from podium.addons.service import AddonInfo, BackupInfo, Change
from podium.api.deploy import ReleaseOut, render
from podium.api.deps import ActorDep, PodiumDep
from podium.api.schemas import ERROR_RESPONSES, RecordOut, fields_of

router = APIRouter(prefix="/api/v1/services/{service}", tags=["addons"], responses=ERROR_RESPONSES)
ADDON = "/environments/{env}/addon"


class AddonIn(BaseModel):
    kind: str = Field("postgres", max_length=40, description="What kind of add-on: postgres.")
    plan: str = Field("small", max_length=40, description="small (20 connections, 1 GB) or medium (60, 10 GB).")


class RestoreIn(BaseModel):
    backup: int = Field(description="The id of a backup of this service (podium addons backups list).")


@fields_of(AddonInfo)
class AddonOut(RecordOut):
    """A database add-on of a service environment."""

    state: str = Field(description="active | destroyed")
    server: str = Field(description="host:port apps connect to")
    server_kind: str = Field(description="embedded (run by Podium) | external")
    role: str = Field(description="The role apps log in as.")
    storage_quota_bytes: int = Field(description="What the plan is sized for; not a hard cap.")
    size_bytes: int | None = Field(description="The last sampled size of the database.")
    rotation_pending: bool = Field(description="The old login still works until the new URL's release is live.")
    url: str | None = Field(None, description="DATABASE_URL, password included; only with show_url.")


@fields_of(BackupInfo)
class BackupOut(RecordOut):
    """A backup of an add-on's database (``pg_dump -Fc``)."""

    kind: str = Field(description="manual | scheduled | safety (before a restore) | final (before destroy)")
    seconds: float = Field(description="How long pg_dump took.")


class ChangeOut(BaseModel):
    """What a change did: the add-on now, and the release it rolled out (none when nothing was live)."""

    addon: AddonOut
    release: ReleaseOut | None
    final_backup: BackupOut | None = None


class RestoreOut(BaseModel):
    restored: BackupOut
    safety_backup: BackupOut = Field(description="Taken just before the restore: restore it to undo.")
    seconds: float = Field(description="How long pg_restore took.")


def addon_out(info: AddonInfo) -> AddonOut:
    return AddonOut.model_validate(info)


def backup_out(info: BackupInfo) -> BackupOut:
    return BackupOut.model_validate(info)


def change_out(podium: Any, change: Change) -> ChangeOut:
    return ChangeOut(
        addon=addon_out(change.addon),
        release=render(podium, change.release) if change.release is not None else None,
        final_backup=backup_out(change.backup) if change.backup is not None else None,
    )


@router.get("/addons")
def list_addons(
    service: str, podium: PodiumDep, actor: ActorDep,
    include_destroyed: bool = Query(False, alias="all", description="Include destroyed add-ons."),
) -> list[AddonOut]:
    """The service's database add-ons, one per environment at most."""
    return [addon_out(a) for a in podium.addons.list_addons(service, include_destroyed=include_destroyed)]


@router.post(ADDON, status_code=status.HTTP_201_CREATED)
def create_addon(service: str, env: str, body: AddonIn, podium: PodiumDep, actor: ActorDep) -> ChangeOut:
    """Provision a database and set ``DATABASE_URL`` (rolled out as a new release when something is live)."""
    return change_out(podium, podium.addons.create(actor, service, env, body.kind, body.plan))


@router.get(ADDON)
def show_addon(
    service: str, env: str, podium: PodiumDep, actor: ActorDep,
    show_url: bool = Query(False, description="Include DATABASE_URL (owner, config grant or platform team)."),
) -> AddonOut:
    return addon_out(podium.addons.info(actor, service, env, show_url=show_url))


@router.delete(ADDON)
def destroy_addon(
    service: str, env: str, podium: PodiumDep, actor: ActorDep,
    confirm: str | None = Query(None, max_length=100, description="The service's name, to confirm."),
) -> ChangeOut:
    """Keep a final backup, unset ``DATABASE_URL``, drop the database and its roles."""
    return change_out(podium, podium.addons.destroy(actor, service, env, confirm))


@router.post(ADDON + "/credentials/rotate", status_code=status.HTTP_202_ACCEPTED)
def rotate_credentials(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> ChangeOut:
    """A new login in a new release; the old one stops working once that release is live."""
    return change_out(podium, podium.addons.rotate(actor, service, env))


@router.post(ADDON + "/backups", status_code=status.HTTP_201_CREATED)
def create_backup(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> BackupOut:
    """Back the database up now (``pg_dump -Fc``); answers when the backup is complete."""
    return backup_out(podium.addons.backup(actor, service, env))


@router.get(ADDON + "/backups")
def list_backups(service: str, env: str, podium: PodiumDep, actor: ActorDep) -> list[BackupOut]:
    """Backups of the environment's add-ons, destroyed ones' included, newest first."""
    return [backup_out(b) for b in podium.addons.list_backups(service, env)]


@router.post(ADDON + "/restore")
def restore_backup(service: str, env: str, body: RestoreIn, podium: PodiumDep, actor: ActorDep) -> RestoreOut:
    """Restore a backup of this service into the environment's database, after a safety backup."""
    done = podium.addons.restore(actor, service, env, body.backup)
    return RestoreOut(restored=backup_out(done.backup), safety_backup=backup_out(done.safety), seconds=done.seconds)
