"""Request dependencies: the Podium core and the acting team, or the calling app.

Routes that deployed apps call take ``CallerDep`` (a team token, or an app token,
``pda_…``); every other route takes ``ActorDep``, which refuses app tokens (401).

- ``EnvironmentReaderDep`` — for ``GET /services/{service}/environments/{env}/...`` reads
  (definitions, evaluate): any team token, or the app token of exactly that environment
  (another one's is 403). The path parameters must be named ``service`` and ``env``.
- ``CallerDep`` — for ``POST /events``, whose service and environment are in the body:
  an ``AppCaller`` must then pass ``caller.require(service, env)`` (403 otherwise) and
  its events go to ``caller.environment_id``; an ``Actor`` must be a team that may change
  the service's config (``may_send_events``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from podium.catalog.auth import Actor
from podium.core import Podium
from podium.errors import Forbidden, Unauthorized
from podium.experiments.tokens import AppCaller, Caller, is_app_token

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
    actor = podium.catalog.authenticate(token)
    if actor.read_only and request.method not in SAFE_METHODS:
        raise Forbidden("this token is read-only: it may not change anything")
    request.state.actor = actor
    return actor


def get_caller(request: Request, podium: Annotated[Podium, Depends(get_podium)]) -> Caller:
    """A team (as ``get_actor``) or a deployed app, through its environment's app token."""
    token = bearer_token(request)
    if is_app_token(token):
        assert token is not None
        caller = podium.app_tokens.authenticate(token)
        request.state.actor = None
        return caller
    return get_actor(request, podium)


def get_environment_reader(caller: Annotated[Caller, Depends(get_caller)], service: str, env: str) -> Caller:
    """A caller allowed to read ``service``/``env``'s definitions: any team, or that environment's app."""
    if isinstance(caller, AppCaller):
        caller.require(service, env)
    return caller


PodiumDep = Annotated[Podium, Depends(get_podium)]
ActorDep = Annotated[Actor, Depends(get_actor)]
CallerDep = Annotated[Caller, Depends(get_caller)]
EnvironmentReaderDep = Annotated[Caller, Depends(get_environment_reader)]
