"""HTTP routes: events apps send, and experiment results."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["experiments"])
