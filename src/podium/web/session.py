"""The pages' session: who is signed in, and the CSRF tokens their forms carry.

A page signs in with the same token as the API, kept in an httponly cookie. Every form
that changes something carries a CSRF token: an HMAC, under a secret every server of the
store shares (``PODIUM_WEB_SECRET``, or one kept in the store), of the session token (or,
on the sign-in form, of a random pre-session nonce kept in its own cookie). Another site
can make a browser send the cookie, but it cannot read our pages, so it cannot know the
token.

The deployed apps live on ``*.localhost`` hosts, the same *site* as a Podium on
localhost: SameSite cookies do not keep them out, and they could plant a cookie of
their own. So every form POST is also refused when the browser says, through
``Sec-Fetch-Site``, that it did not come from this origin. Browsers that do not send
the header still need the token; the header only narrows things further.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Form, Request

from podium.api.deps import SESSION_COOKIE, PodiumDep
from podium.catalog.auth import Actor, authenticate
from podium.errors import Forbidden

LOGIN_COOKIE = "podium_login"
FLASH_COOKIE = "podium_flash"
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})
FORGED = "This form did not come from this page, or it has expired. Go back, reload the page and try again."


class Signer:
    """HMACs under one secret (kept in ``app.state``, never a module global).

    The secret is given, or read once from ``source`` at the first signature: the core's
    shared one, so a form opened on one server posts to any other, and survives restarts.
    Without either, a secret of this app alone.
    """

    def __init__(self, secret: bytes | Callable[[], bytes] | None = None) -> None:
        self._secret = secret if isinstance(secret, bytes) else None
        self._source = secret if callable(secret) else None
        self._reading = threading.Lock()

    def key(self) -> bytes:
        if self._secret is None:
            with self._reading:
                if self._secret is None:
                    self._secret = self._source() if self._source is not None else secrets.token_bytes(32)
        return self._secret

    def sign(self, purpose: str, value: str) -> str:
        message = f"{purpose}\0{value}".encode()
        return hmac.new(self.key(), message, hashlib.sha256).hexdigest()

    def verify(self, purpose: str, value: str, signature: str) -> bool:
        # Bytes: compare_digest refuses a str that is not ASCII, and a forger may send one.
        return hmac.compare_digest(self.sign(purpose, value).encode(), signature.encode())

    def seal(self, purpose: str, text: str) -> str:
        """``text`` and its signature in one cookie-safe string (readable, not secret)."""
        encoded = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        return f"{encoded}.{self.sign(purpose, encoded)}"

    def unseal(self, purpose: str, sealed: str) -> str | None:
        encoded, _, signature = sealed.partition(".")
        if not self.verify(purpose, encoded, signature):
            return None
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode(errors="replace")


def signer_of(request: Request) -> Signer:
    signer: Signer = request.app.state.web_signer
    return signer


def session_csrf(request: Request) -> str | None:
    """The CSRF token for the forms of the signed-in session, None without a session."""
    token = request.cookies.get(SESSION_COOKIE)
    return signer_of(request).sign("session", token) if token else None


def new_login_nonce() -> str:
    """A pre-session nonce: the sign-in form's CSRF token is its HMAC, the nonce its cookie."""
    return secrets.token_urlsafe(24)


def check_fetch_site(request: Request) -> None:
    """Refuse a POST the browser says another origin (even a sibling app) made it send."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in TRUSTED_FETCH_SITES:
        raise Forbidden(FORGED)


def check_login_csrf(request: Request, presented: str) -> None:
    nonce = request.cookies.get(LOGIN_COOKIE)
    check_fetch_site(request)
    if not nonce or not signer_of(request).verify("login", nonce, presented):
        raise Forbidden(FORGED)


def page_actor(request: Request, podium: PodiumDep) -> Actor:
    """The team signed in through the session cookie; pages take no bearer tokens."""
    with podium.store.session() as session:
        actor = authenticate(session, request.cookies.get(SESSION_COOKIE))
    request.state.actor = actor
    return actor


def form_actor(
    request: Request, actor: Annotated[Actor, Depends(page_actor)], csrf: Annotated[str, Form()] = ""
) -> Actor:
    """The signed-in team, for a form that changes something: its CSRF token must match."""
    check_fetch_site(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    if not signer_of(request).verify("session", token, csrf):
        raise Forbidden(FORGED)
    if actor.read_only and request.url.path != "/logout":  # signing out changes nothing
        raise Forbidden("this token is read-only: it may not change anything")
    return actor


PageActor = Annotated[Actor, Depends(page_actor)]
FormActor = Annotated[Actor, Depends(form_actor)]
