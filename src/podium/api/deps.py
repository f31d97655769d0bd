"""Request dependencies: the Podium core and the acting team."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from podium.catalog.auth import Actor, authenticate
from podium.core import Podium
from podium.errors import Unauthorized

SESSION_COOKIE = "podium_token"
SAFE_METHODS = frozenset({"GET", "HEAD"})


def get_podium(request: Request) -> Podium:
    podium: Podium = request.app.state.podium
    return podium


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if the request has one."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def presented_token(request: Request) -> str | None:
    """The bearer token of the request, or, for a read, the web session cookie.

    A browser attaches the cookie to any request another page makes it send, so a
    change through the API needs the bearer token, which no other page can add. The
    pages' own forms carry a CSRF token instead (``podium.web.session``).
    """
    token = bearer_token(request)
    if token is None and request.method in SAFE_METHODS:
        return request.cookies.get(SESSION_COOKIE)
    return token


def get_actor(request: Request, podium: Annotated[Podium, Depends(get_podium)]) -> Actor:
    token = presented_token(request)
    if token is None and SESSION_COOKIE in request.cookies:
        raise Unauthorized("the session cookie only reads: send 'Authorization: Bearer <token>' to change things")
    with podium.store.session() as session:
        actor = authenticate(session, token)
    request.state.actor = actor
    return actor


PodiumDep = Annotated[Podium, Depends(get_podium)]
ActorDep = Annotated[Actor, Depends(get_actor)]
