"""Pages: sign in and out, services, one service and its environments, teams, one team.

The availability parts of the service and team pages come from ``podium.web.availability``;
the status page and the incident pages are in ``podium.web.health_pages``; the experiment
pages, and the experiment parts of the service and team pages, in ``podium.web.experiments``.

Each page checks the session cookie (``podium.web.session``), calls the core's verbs on
``request.app.state.podium`` and renders a template; forms that change something carry
a CSRF token. Errors become pages (``podium.web.pages.PageRoute``).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from podium.api.deps import SESSION_COOKIE, PodiumDep
from podium.catalog.models import Service
from podium.core import Podium
from podium.deploy.models import Release
from podium.errors import Forbidden, Invalid, NotFound, Unauthorized
from podium.health.incidents import LIST_MAX, IncidentInfo
from podium.health.models import IncidentState
from podium.store.db import utcnow
from podium.web.availability import service_health, team_health
from podium.web.environments import environment_view
from podium.web.experiments import service_experiments, stale_rows
from podium.web.pages import PageRoute, clear_session, is_htmx, render, safe_next
from podium.web.session import (
    FLASH_COOKIE,
    LOGIN_COOKIE,
    FormActor,
    PageActor,
    check_login_csrf,
    new_login_nonce,
    signer_of,
)

AUDIT_EVENTS_SHOWN = 20

router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)


# Signing in and out ----------------------------------------------------------------------


def login_page(request: Request, target: str, error: str | None, status_code: int = 200) -> HTMLResponse:
    """The sign-in form, with a CSRF token bound to the browser's pre-session nonce cookie."""
    nonce = request.cookies.get(LOGIN_COOKIE) or new_login_nonce()
    context = {"next": target, "error": error, "csrf": signer_of(request).sign("login", nonce)}
    response = render(request, "login.html", context, status_code=status_code)
    secure = request.app.state.podium.settings.cookie_secure
    response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="lax", secure=secure, path="/login")
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return login_page(request, safe_next(next), None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    podium: PodiumDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Check the form's CSRF token, then the token as the API would; keep it in an httponly cookie."""
    target = safe_next(next)
    try:
        check_login_csrf(request, csrf)
    except Forbidden as exc:  # another site's form, or one opened before a restart
        return login_page(request, target, exc.detail, status_code=403)
    token = token.strip()
    try:
        podium.catalog.authenticate(token)
    except Unauthorized:
        error = "That token is not valid. Paste a live token of your team." if token else "Enter a token."
        return login_page(request, target, error, status_code=401)
    response = RedirectResponse(target, status_code=303)
    secure = podium.settings.cookie_secure
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")
    response.delete_cookie(LOGIN_COOKIE, httponly=True, samesite="lax", secure=secure, path="/login")
    return response


@router.post("/logout")
def logout(podium: PodiumDep, actor: FormActor) -> RedirectResponse:
    if actor.session_id is not None:  # a single sign-on session ends here; a pasted token lives on
        podium.people.end_session(actor.session_id)
    response = RedirectResponse("/login", status_code=303)
    clear_session(response, podium.settings.cookie_secure)
    return response


# Services --------------------------------------------------------------------------------


def last_deploys(podium: Podium, services: list[Service]) -> dict[str, Release]:
    """Per service name, its newest release in any environment (none: never deployed)."""
    newest: dict[str, Release] = {}
    for service in services:
        for env in service.environments:
            for release in podium.deploys.list_releases(service.name, env.name, limit=1):
                if service.name not in newest or release.created_at > newest[service.name].created_at:
                    newest[service.name] = release
    return newest


def open_incidents(podium: Podium) -> dict[str, list[IncidentInfo]]:
    """Per service name, its incidents not resolved yet, newest first."""
    found: dict[str, list[IncidentInfo]] = {}
    for state in (IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED):
        for incident in podium.incidents.list(state=state, limit=LIST_MAX):
            found.setdefault(incident.service, []).append(incident)
    return found


@router.get("/")
def services_page(
    request: Request, podium: PodiumDep, actor: PageActor, owner: str = "", lifecycle: str = ""
) -> HTMLResponse:
    """Every service, optionally narrowed by owner and lifecycle; htmx gets the table only."""
    notice = None
    try:
        services = podium.catalog.list_services(owner=owner or None, lifecycle=lifecycle or None)
    except (NotFound, Invalid) as exc:
        services, notice = [], exc.detail
    context = {
        "services": services,
        "statuses": podium.checks.environment_statuses(utcnow()),
        "last_deploys": last_deploys(podium, services),
        "open_incidents": open_incidents(podium),
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
def service_page(request: Request, name: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """A service: its facts, health, incidents, each environment's deploys and experiments, grants, changes."""
    service = podium.catalog.get_service(name)
    flash_cookie = request.cookies.get(FLASH_COOKIE)
    now = utcnow()
    statuses = podium.checks.environment_statuses(now)
    context = {
        "service": service,
        "statuses": statuses,
        "health": service_health(podium, actor, name, statuses.get(name, []), now),
        "environments": [environment_view(podium, actor, name, env.name) for env in service.environments],
        "experiments": service_experiments(podium, name, [env.name for env in service.environments]),
        "flash": signer_of(request).unseal(f"flash {name}", flash_cookie) if flash_cookie else None,
        "grants": podium.catalog.list_grants(name),
        "events": podium.catalog.audit_log(actor, service=name, limit=AUDIT_EVENTS_SHOWN),
    }
    response = render(request, "service.html", context)
    if flash_cookie:  # shown once
        response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="lax", path=f"/services/{name}")
    return response


@router.get("/services/{name}/environments/{env}", response_model=None)
def environment_section(request: Request, name: str, env: str, podium: PodiumDep, actor: PageActor) -> Response:
    """One environment's section, for htmx to refresh while a release is on its way."""
    view = environment_view(podium, actor, name, env)
    if not is_htmx(request):
        return RedirectResponse(f"/services/{name}#environment-{env}", status_code=303)
    context = {
        "environment": view,
        "service": podium.catalog.get_service(name),
        "statuses": podium.checks.environment_statuses(utcnow()),
    }
    return render(request, "_environment_refresh.html", context)


@router.get("/services/{name}/environments/{env}/config")
def config_values(request: Request, name: str, env: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """The environment's config vars with their values, for those with the config right (403 otherwise)."""
    config = podium.deploys.read_config(actor, name, env)
    response = render(request, "config.html", {"service": name, "env": env, "config": config})
    response.headers["Cache-Control"] = "no-store"  # secrets: not kept by the browser or a proxy
    return response


@router.post("/services/{name}/environments/{env}/rollback")
def rollback(
    request: Request, name: str, env: str, podium: PodiumDep, actor: FormActor, to: Annotated[str, Form()] = ""
) -> RedirectResponse:
    """Roll back to release ``to`` (a new release), then show the service page with a note."""
    release = podium.deploys.rollback(actor, name, env, to=to)
    note = f"Rolling back to v{release.rollback_of}: v{release.version} started in {env}."
    response = RedirectResponse(f"/services/{name}#environment-{env}", status_code=303)
    response.set_cookie(
        FLASH_COOKIE,
        signer_of(request).seal(f"flash {name}", note),
        httponly=True,
        samesite="lax",
        secure=podium.settings.cookie_secure,
        path=f"/services/{name}",
        max_age=60,
    )
    return response


# Teams -----------------------------------------------------------------------------------


@router.get("/teams")
def teams_page(request: Request, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    owned = Counter(service.owner.name for service in podium.catalog.list_services())
    return render(request, "teams.html", {"teams": podium.catalog.list_teams(), "owned": owned})


@router.get("/teams/{name}")
def team_page(request: Request, name: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """A team: who is on call, its services' health and incidents, its tokens, grants and stale experiments."""
    holdings = podium.catalog.team_holdings(name)
    services = podium.catalog.list_services(owner=name)
    now = utcnow()
    context = {
        "team": holdings.team,
        "services": services,
        "statuses": podium.checks.environment_statuses(now),
        "health": team_health(podium, actor, holdings.team.name, [s.name for s in services], now),
        "live_tokens": holdings.live_tokens,
        "grants": holdings.grants,
        "stale_experiments": stale_rows(podium, holdings.team.name),
        "stale_days": f"{podium.settings.experiments_stale_days:g}",
    }
    return render(request, "team.html", context)
