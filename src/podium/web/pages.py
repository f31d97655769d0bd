"""How a page is answered: its headers, its template, and Podium's errors as pages.

``PageRoute`` turns the error family into pages: no valid session sends the browser to
``/login``, anything else becomes an error page with the error's status.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from podium.api.deps import SESSION_COOKIE
from podium.errors import PodiumError, Unauthorized
from podium.web.session import session_csrf

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


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render a page; every template also sees the signed-in ``actor`` (None on /login)
    and, with a session, the ``csrf`` token its forms carry."""
    templates: Jinja2Templates = request.app.state.web_templates
    actor = getattr(request.state, "actor", None)
    context = {
        "actor": actor,
        "csrf": session_csrf(request) if actor is not None else None,
        **context,
    }
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
    if request.method not in ("GET", "HEAD"):  # a form's target is no page to come back to
        wanted = "/"
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
