"""Pages about people: single sign-on, a person's page, a team's members.

Signing in with the provider is the authorization code flow with PKCE: ``/auth/oidc/start``
makes the state, nonce and code verifier, keeps them in a signed, short-lived cookie
scoped to ``/auth/oidc``, and sends the browser to the provider; ``/auth/oidc/callback``
checks the state, trades the code, verifies the ID token, signs the person in and
starts a web session (a personal credential of kind ``session``), whose token becomes
the session cookie exactly as a pasted token does.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from podium.api.deps import SESSION_COOKIE, PodiumDep
from podium.catalog.models import Team
from podium.core import Podium
from podium.errors import Forbidden, Unauthorized
from podium.health.models import Rotation
from podium.health.oncall import people, shift_at, who_is_on_call
from podium.people.models import CredentialKind
from podium.people.sso import SignInPolicy
from podium.store.db import utcnow
from podium.web.pages import PageRoute, render, safe_next
from podium.web.session import PageActor, signer_of

router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)

OIDC_COOKIE = "podium_oidc"
OIDC_PATH = "/auth/oidc"
SIGN_IN_MINUTES = 10  # how long a sign-in at the provider may take


def redirect_uri(podium: Podium) -> str:
    return f"{podium.settings.base_url.rstrip('/')}{OIDC_PATH}/callback"


@router.get(f"{OIDC_PATH}/start")
def start_sign_in(request: Request, podium: PodiumDep, next: str = "/") -> RedirectResponse:
    """Send the browser to the provider, remembering (signed) what must come back."""
    if podium.oidc is None:
        raise Forbidden("single sign-on is not set up on this server: sign in with a token")
    pending = podium.oidc.authorization_url(redirect_uri(podium))
    remembered = json.dumps({
        "state": pending.state, "nonce": pending.nonce, "verifier": pending.code_verifier,
        "next": safe_next(next), "until": (utcnow() + timedelta(minutes=SIGN_IN_MINUTES)).isoformat(),
    })
    response = RedirectResponse(pending.url, status_code=303)
    response.set_cookie(
        OIDC_COOKIE, signer_of(request).seal("oidc", remembered), max_age=SIGN_IN_MINUTES * 60, httponly=True,
        samesite="lax", secure=podium.settings.cookie_secure, path=OIDC_PATH,
    )
    return response


@router.get(f"{OIDC_PATH}/callback")
def finish_sign_in(
    request: Request, podium: PodiumDep, code: str = "", state: str = "", error: str = "",
    error_description: str = "",
) -> RedirectResponse:
    """Check the state, verify the provider's answer, and start a web session for the person."""
    if podium.oidc is None:
        raise Forbidden("single sign-on is not set up on this server: sign in with a token")
    if error:
        raise Unauthorized(f"the provider refused the sign-in: {error_description or error}")
    sealed = request.cookies.get(OIDC_COOKIE, "")
    remembered = signer_of(request).unseal("oidc", sealed) if sealed else None
    pending: dict[str, Any] = json.loads(remembered) if remembered else {}
    if not pending or pending["state"] != state or datetime.fromisoformat(pending["until"]) < utcnow():
        raise Forbidden("this sign-in did not start here, or took too long: start it again from the sign-in page")
    claims = podium.oidc.finish_code(redirect_uri(podium), code, pending["verifier"], pending["nonce"])
    user = podium.people.sign_in(podium.oidc.issuer, claims, SignInPolicy.of(podium.settings))
    token = podium.people.start_session(
        user, CredentialKind.SESSION, "web", timedelta(hours=podium.settings.session_hours)
    )
    response = RedirectResponse(pending["next"], status_code=303)
    secure = podium.settings.cookie_secure
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")
    response.delete_cookie(OIDC_COOKIE, httponly=True, samesite="lax", secure=secure, path=OIDC_PATH)
    return response


@router.get("/people/{name}")
def person_page(request: Request, name: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """A person: their teams and roles, their on-call shifts, and (for them or an admin) their tokens."""
    user = podium.people.get_user(name)
    tokens = podium.people.list_tokens(actor, name) if actor.is_admin or actor.user_id == user.id else None
    context = {
        "user": user, "memberships": sorted(user.memberships, key=lambda m: m.team.name),
        "tokens": tokens, "shifts": shifts_of(podium, name), "now": utcnow(),
    }
    return render(request, "person.html", context)


@router.get("/teams/{name}/members")
def team_members(request: Request, name: str, podium: PodiumDep, actor: PageActor) -> HTMLResponse:
    """A team's members and roles: a fragment the team page loads."""
    return render(request, "_members.html", {"team": name, "members": podium.people.list_members(name)})


def shifts_of(podium: Podium, user: str) -> list[dict[str, Any]]:
    """Each rotation naming ``user``: whether they are on call now, else when their next shift starts."""
    now = utcnow()
    found: list[dict[str, Any]] = []
    with podium.store.session() as session:
        rows = session.execute(select(Rotation, Team.name).join(Team, Team.id == Rotation.team_id))
        for rotation, team in rows:
            names = [p.name for p in people(rotation)]
            if not any(m.get("user") == user for m in rotation.members):
                continue
            on_call = who_is_on_call(rotation, [], now)
            entry: dict[str, Any] = {"team": team, "now": on_call.current.name == user, "next": None}
            moment = now
            for _ in range(len(names) + 1):  # one lap of the rotation finds their next shift
                passed, handoff = shift_at(rotation, moment)
                if names[(passed + 1) % len(names)] == user:
                    entry["next"] = handoff
                    break
                moment = handoff
            found.append(entry)
    return sorted(found, key=lambda e: e["team"])
