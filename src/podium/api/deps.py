"""Request dependencies: the Podium core and the acting team."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from podium.catalog.auth import Actor, authenticate
from podium.core import Podium

SESSION_COOKIE = "podium_token"


def get_podium(request: Request) -> Podium:
    podium: Podium = request.app.state.podium
    return podium


def presented_token(request: Request) -> str | None:
    """The bearer token of the request, or the web session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE)


def get_actor(request: Request, podium: Annotated[Podium, Depends(get_podium)]) -> Actor:
    with podium.store.session() as session:
        actor = authenticate(session, presented_token(request))
    request.state.actor = actor
    return actor


PodiumDep = Annotated[Podium, Depends(get_podium)]
ActorDep = Annotated[Actor, Depends(get_actor)]
