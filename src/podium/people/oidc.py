"""Single sign-on with an OpenID Connect provider: what Podium asks and what it believes.

Two flows, both through Authlib's OAuth 2 session with the client's secret kept on the
server:

- the web's **authorization code flow with PKCE** (``authorization_url`` then
  ``finish_code``): state, nonce and code verifier are made per sign-in and come back in
  a signed cookie;
- the CLI's **device authorization grant** (``start_device`` then ``poll_device``), as
  ``gh auth login`` does: the person approves a short code in any browser.

Either ends with the ID token verified (signature against the provider's JWKS, issuer,
audience, expiry, and for the web the nonce) and its claims returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from podium.config import Settings
from podium.errors import Invalid, Unauthorized

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DISCOVERY_TTL = 300.0
TIMEOUT = 10.0


@dataclass(frozen=True)
class CodeRequest:
    """One web sign-in in progress: where to send the browser, and what must come back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class DeviceRequest:
    """One device authorization in progress, as the provider answered it."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: int
    expires_in: int


class Pending(Exception):
    """The person has not approved the device code yet (or asked to slow down)."""


class OidcProvider:
    """The company's provider, as the settings name it; discovery is cached for a few minutes."""

    def __init__(self, settings: Settings) -> None:
        if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret):
            raise Invalid("single sign-on is not set up: set PODIUM_OIDC_ISSUER, _CLIENT_ID and _CLIENT_SECRET")
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret
        self.scope = settings.oidc_scopes
        self._metadata: dict[str, Any] | None = None
        self._fetched_at = 0.0

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document."""
        if self._metadata is None or time.monotonic() - self._fetched_at > DISCOVERY_TTL:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                response = requests.get(url, timeout=TIMEOUT)
                response.raise_for_status()
                self._metadata = response.json()
            except (requests.RequestException, ValueError) as exc:
                raise Unauthorized(f"the sign-in provider at {self.issuer} did not answer: {exc}") from None
            self._fetched_at = time.monotonic()
        assert self._metadata is not None
        return self._metadata

    def _session(self, redirect_uri: str | None = None) -> OAuth2Session:
        return OAuth2Session(
            self.client_id, self.client_secret, scope=self.scope, redirect_uri=redirect_uri,
            code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic",  # noqa: S106
        )

    # Web: authorization code + PKCE -------------------------------------------------------

    def authorization_url(self, redirect_uri: str) -> CodeRequest:
        state, nonce, verifier = generate_token(30), generate_token(30), generate_token(64)
        with self._session(redirect_uri) as session:
            url, _ = session.create_authorization_url(
                self.metadata()["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
            )
        return CodeRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    def finish_code(self, redirect_uri: str, code: str, code_verifier: str, nonce: str) -> dict[str, Any]:
        """Trade the code for tokens and return the verified ID token's claims."""
        with self._session(redirect_uri) as session:
            try:
                token = session.fetch_token(
                    self.metadata()["token_endpoint"], grant_type="authorization_code", code=code,
                    code_verifier=code_verifier, timeout=TIMEOUT,
                )
            except (OAuth2Error, requests.RequestException) as exc:
                raise Unauthorized(f"the sign-in provider refused the code: {exc}") from None
        return self.verify(token.get("id_token"), nonce)

    # CLI: device authorization ------------------------------------------------------------

    def start_device(self) -> DeviceRequest:
        endpoint = self.metadata().get("device_authorization_endpoint")
        if not endpoint:
            raise Invalid("the sign-in provider offers no device authorization: log in with a token instead")
        try:
            response = requests.post(
                endpoint, data={"client_id": self.client_id, "scope": self.scope},
                auth=(self.client_id, self.client_secret), timeout=TIMEOUT,
            )
            answer = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise Unauthorized(f"the sign-in provider did not answer: {exc}") from None
        if response.status_code != 200 or "device_code" not in answer:
            raise Unauthorized(f"the sign-in provider refused a device code: {answer.get('error', response.text)}")
        return DeviceRequest(
            device_code=answer["device_code"], user_code=answer["user_code"],
            verification_uri=answer.get("verification_uri") or answer.get("verification_url", ""),
            verification_uri_complete=answer.get("verification_uri_complete"),
            interval=int(answer.get("interval", 5)), expires_in=int(answer.get("expires_in", 600)),
        )

    def poll_device(self, device_code: str) -> dict[str, Any]:
        """The verified claims once the person approved; ``Pending`` until then."""
        try:
            response = requests.post(
                self.metadata()["token_endpoint"], data={"grant_type": DEVICE_GRANT, "device_code": device_code},
                auth=(self.client_id, self.client_secret), timeout=TIMEOUT,
            )
            answer = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise Unauthorized(f"the sign-in provider did not answer: {exc}") from None
        error = answer.get("error")
        if error in ("authorization_pending", "slow_down"):
            raise Pending(error)
        if response.status_code != 200 or error:
            raise Unauthorized(f"the device code was not approved: {error or response.text}")
        return self.verify(answer.get("id_token"), None)

    # ID tokens ----------------------------------------------------------------------------

    def verify(self, id_token: str | None, nonce: str | None) -> dict[str, Any]:
        """The claims of an ID token signed by the provider, for us, still valid."""
        if not id_token:
            raise Unauthorized("the sign-in provider sent no ID token: is 'openid' among PODIUM_OIDC_SCOPES?")
        try:
            keys = KeySet.import_key_set(requests.get(self.metadata()["jwks_uri"], timeout=TIMEOUT).json())
            token = jwt.decode(id_token, keys)
            claims: dict[str, Any] = dict(token.claims)
            registry = jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.metadata().get("issuer", self.issuer)},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
            )
            registry.validate(claims)
        except (JoseError, requests.RequestException, ValueError) as exc:
            raise Unauthorized(f"the ID token is not valid: {exc}") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise Unauthorized("the ID token is not valid: its nonce is not the one this sign-in sent")
        return claims
