"""Bounded input: every request body is counted as it streams in, before anything parses it.

Without this, a JSON route reads and parses the whole body before it even looks at the
token, so one unauthenticated 60 MB request costs the server hundreds of megabytes. The
middleware answers 413 as soon as a ``Content-Length`` announces too much, or as soon as
the bytes received pass the route's cap; nothing is read past it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from podium.config import Settings


@dataclass(frozen=True)
class BodyCap:
    """The most bytes a request body may have on the paths ``pattern`` matches, and the setting that says so."""

    pattern: re.Pattern[str]
    limit: int
    setting: str
    counted: bool = True  # False: the route counts the bytes itself; only a Content-Length is checked here


def body_caps(settings: Settings) -> tuple[list[BodyCap], BodyCap]:
    """The caps per route (first match wins) and the default for every other route."""
    routes = [
        # A batch of up to 10,000 events is larger than any other JSON body.
        BodyCap(re.compile(r"/api/v1/events/?"), settings.api_max_events_body_bytes,
                "PODIUM_API_MAX_EVENTS_BODY_BYTES"),
        # Slug uploads stream to a file; the route holds them to the slug limit.
        BodyCap(re.compile(r"/api/v1/services/[^/]+/environments/[^/]+/deploys/?"), settings.slug_max_bytes,
                "PODIUM_SLUG_MAX_BYTES", counted=False),
    ]
    return routes, BodyCap(re.compile(".*"), settings.api_max_body_bytes, "PODIUM_API_MAX_BODY_BYTES")


def too_large(cap: BodyCap) -> str:
    return f"request body is larger than {cap.limit} bytes ({cap.setting})"


class BodyLimit:
    """ASGI middleware: refuse a request body past its route's cap with 413, while it streams in."""

    def __init__(self, app: ASGIApp, routes: Sequence[BodyCap], default: BodyCap) -> None:
        self.app = app
        self.routes = list(routes)
        self.default = default

    def cap_for(self, path: str) -> BodyCap:
        return next((cap for cap in self.routes if cap.pattern.fullmatch(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope["path"])
        if _declared_length(scope) > cap.limit:
            await _refuse(send, cap)
            return
        if not cap.counted:
            await self.app(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def counted() -> Message:
            # Past the cap, the 413 goes out at once and the app is told the client left: an
            # error raised here would reach FastAPI wrapped in a task group's exception group,
            # and come out as a 400.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap.limit:
                    refused = True
                    if not started:
                        await _refuse(send, cap)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the app's answer to a body it never got whole: the 413 went out instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted, tracked)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else 0
    return 0


async def _refuse(send: Send, cap: BodyCap) -> None:
    body = json.dumps({"detail": too_large(cap)}).encode()
    await send({
        "type": "http.response.start", "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
