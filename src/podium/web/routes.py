"""Pages: sign in and out, services, one service, teams, one team.

Each page checks the session the way the API does (``get_actor``), calls the catalog's
verbs on ``request.app.state.podium`` and renders a template. ``PageRoute`` turns the
error family into pages: no valid session sends the browser to ``/login``, anything else
becomes an error page with the error's status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from podium.api.deps import SESSION_COOKIE, ActorDep, PodiumDep
from podium.catalog.auth import authenticate
from podium.errors import Invalid, NotFound, PodiumError, Unauthorized
from podium.web import queries

AUDIT_EVENTS_SHOWN = 20

# Pages hold a team's view of the catalog: never cached, never framed, no outside scripts.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class PageRoute(APIRoute):
    """A route that answers Podium's errors with pages instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except Unauthorized:
                response = login_redirect(request)
            except PodiumError as exc:
                response = render(request, "error.html", {"error": exc}, status_code=exc.status_code)
            response.headers.update(PAGE_HEADERS)
            return response

        return page_handler


router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render a page; every template also sees the signed-in ``actor`` (None on /login)."""
    templates: Jinja2Templates = request.app.state.web_templates
    context = {"actor": getattr(request.state, "actor", None), **context}
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def is_htmx(request: Request) -> bool:
    """An htmx swap asks for a fragment; a history restore needs the whole page."""
    return "hx-request" in request.headers and "hx-history-restore-request" not in request.headers


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only, never another host."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target)
    ):
        return "/"
    return target


def login_redirect(request: Request) -> Response:
    """Send the browser to /login, remembering the page it asked for."""
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/login?{urlencode({'next': wanted})}" if wanted != "/" else "/login"
    if is_htmx(request):
        # htmx would swap the login page into the table; make the browser navigate instead.
        return Response(status_code=401, headers={"HX-Redirect": location})
    response = RedirectResponse(location, status_code=303)
    if SESSION_COOKIE in request.cookies:  # a revoked or mangled token: forget it
        clear_session(response, request.app.state.podium.settings.cookie_secure)
    return response


def clear_session(response: Response, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=secure, path="/")


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
