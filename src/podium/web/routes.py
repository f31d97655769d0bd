"""Pages: sign in and out, services, one service, teams, one team.

Each page checks the session the way the API does (``get_actor``), calls the catalog's
verbs on ``request.app.state.podium`` and renders a template. Errors become pages
(``podium.web.pages.PageRoute``).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from podium.api.deps import SESSION_COOKIE, ActorDep, PodiumDep
from podium.catalog.auth import authenticate
from podium.errors import Invalid, NotFound, Unauthorized
from podium.web import queries
from podium.web.pages import PageRoute, clear_session, is_htmx, render, safe_next

AUDIT_EVENTS_SHOWN = 20

router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)


# Signing in and out ----------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login", response_model=None)
def login(
    request: Request,
    podium: PodiumDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the token as the API would; keep it in an httponly cookie if it is good."""
    target = safe_next(next)
    token = token.strip()
    try:
        with podium.store.session() as session:
            authenticate(session, token)
    except Unauthorized:
        error = "That token is not valid. Paste a live token of your team." if token else "Enter a token."
        return render(request, "login.html", {"next": target, "error": error}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=podium.settings.cookie_secure,
        path="/",
    )
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout(podium: PodiumDep) -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    clear_session(response, podium.settings.cookie_secure)
    return response


# Services --------------------------------------------------------------------------------


@router.get("/")
def services_page(
    request: Request, podium: PodiumDep, actor: ActorDep, owner: str = "", lifecycle: str = ""
) -> HTMLResponse:
    """Every service, optionally narrowed by owner and lifecycle; htmx gets the table only."""
    notice = None
    try:
        services = podium.catalog.list_services(owner=owner or None, lifecycle=lifecycle or None)
    except (NotFound, Invalid) as exc:
        services, notice = [], exc.detail
    context = {
        "services": services,
        "teams": podium.catalog.list_teams(),
        "owner": owner,
        "lifecycle": lifecycle,
        "notice": notice,
    }
    template = "_services_table.html" if is_htmx(request) else "services.html"
    response = render(request, template, context)
    response.headers["Vary"] = "HX-Request"
    return response


@router.get("/services/{name}")
def service_page(request: Request, name: str, podium: PodiumDep, actor: ActorDep) -> HTMLResponse:
    service = podium.catalog.get_service(name)
    context = {
        "service": service,
        "environments": service.environments,
        "grants": podium.catalog.list_grants(name),
        "events": podium.catalog.audit_log(actor, service=name, limit=AUDIT_EVENTS_SHOWN),
    }
    return render(request, "service.html", context)


# Teams -----------------------------------------------------------------------------------


@router.get("/teams")
def teams_page(request: Request, podium: PodiumDep, actor: ActorDep) -> HTMLResponse:
    owned = Counter(service.owner.name for service in podium.catalog.list_services())
    return render(request, "teams.html", {"teams": podium.catalog.list_teams(), "owned": owned})


@router.get("/teams/{name}")
def team_page(request: Request, name: str, podium: PodiumDep, actor: ActorDep) -> HTMLResponse:
    holdings = queries.team_holdings(podium.store, name)
    context = {
        "team": holdings.team,
        "services": podium.catalog.list_services(owner=name),
        "live_tokens": holdings.live_tokens,
        "grants": holdings.grants,
    }
    return render(request, "team.html", context)
