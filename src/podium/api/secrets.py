"""``POST /api/v1/secrets/rotate-key``: seal every stored secret with a new key (platform team only)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep

router = APIRouter(prefix="/api/v1/secrets", tags=["secrets"])


class RotationOut(BaseModel):
    resealed: dict[str, int] = Field(description="Values sealed again with the new key, per table.column.")
    key: str = Field(description="Where the key now in force lives.")


@router.post("/rotate-key")
async def rotate_key(podium: PodiumDep, actor: ActorDep) -> RotationOut:
    """Seal every config var in the store (current and every release's) with a new key, in one
    transaction; the old key is dropped only once all of them are sealed with the new one."""
    rotation = await run_in_threadpool(podium.secrets.rotate_key, actor)
    return RotationOut(resealed=rotation.resealed, key=rotation.key_source)
