"""HTTP routes: experiments, flags, definitions and evaluation."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["experiments"])
