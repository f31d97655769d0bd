"""The one place where Podium's errors become HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from podium.errors import PodiumError, Unauthorized


async def podium_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PodiumError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(PodiumError, podium_error_handler)
