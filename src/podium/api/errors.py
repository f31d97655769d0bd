"""The one place where Podium's errors become HTTP responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from podium.errors import PodiumError, Unauthorized


def encodable(value: Any) -> Any:
    """``value`` with every string made UTF-8 encodable (a lone surrogate becomes "?")."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if not value.isascii() else value
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(v) for v in value]
    return value


async def podium_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PodiumError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse({"detail": encodable(exc.detail)}, status_code=exc.status_code, headers=headers)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for a request that does not fit the schema, safe for any input.

    FastAPI echoes the offending input back; a lone surrogate in it (valid in JSON text,
    not in UTF-8) would otherwise turn the 422 into a 500.
    """
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": encodable(jsonable_encoder(exc.errors()))}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(PodiumError, podium_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
