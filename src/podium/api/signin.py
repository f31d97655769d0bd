"""Sign-in routes for the CLI: the device authorization grant, through Podium.

``podium login`` asks ``POST /api/auth/device`` for a code, shows it, and polls
``POST /api/auth/device/token`` until the person approved it at the provider; Podium holds
the client secret, verifies the ID token, signs the person in and hands the CLI a login
token (a personal credential of kind ``login``). No bearer token is needed here: these
routes are how one is got.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from podium.api.deps import PodiumDep
from podium.api.schemas import ERROR_RESPONSES
from podium.core import Podium
from podium.errors import Invalid
from podium.people.models import CredentialKind
from podium.people.oidc import OidcProvider, Pending
from podium.people.sso import SignInPolicy

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=ERROR_RESPONSES)


class SignInConfig(BaseModel):
    oidc: bool = Field(description="Whether single sign-on is set up (else: tokens only).")
    issuer: str | None


class DeviceOut(BaseModel):
    device_code: str
    user_code: str = Field(description="The code the person types (or confirms) at the provider.")
    verification_uri: str
    verification_uri_complete: str | None
    interval: int = Field(description="Seconds to wait between two polls.")
    expires_in: int


class DeviceTokenIn(BaseModel):
    device_code: str = Field(max_length=2000)
    name: str = Field("podium login", max_length=60, description="What the login is called in the user's tokens.")


class DeviceTokenOut(BaseModel):
    status: str = Field(description="pending (poll again after the interval), or approved.")
    user: str | None = None
    token: str | None = Field(None, description="The login token: shown this once.")


def provider(podium: Podium) -> OidcProvider:
    if podium.oidc is None:
        raise Invalid("single sign-on is not set up on this server: log in with a token (podium login --token)")
    return podium.oidc


@router.get("/config")
def signin_config(podium: PodiumDep) -> SignInConfig:
    return SignInConfig(oidc=podium.oidc is not None, issuer=podium.settings.oidc_issuer)


@router.post("/device")
def start_device(podium: PodiumDep) -> DeviceOut:
    request = provider(podium).start_device()
    return DeviceOut(**request.__dict__)


@router.post("/device/token", responses={428: {"description": "Not approved yet: poll again."}})
def finish_device(body: DeviceTokenIn, podium: PodiumDep) -> DeviceTokenOut:
    oidc = provider(podium)
    try:
        claims = oidc.poll_device(body.device_code)
    except Pending:
        raise HTTPException(status_code=428, detail="not approved yet: poll again after the interval") from None
    user = podium.people.sign_in(oidc.issuer, claims, SignInPolicy.of(podium.settings))
    token = podium.people.start_session(
        user, CredentialKind.LOGIN, body.name, timedelta(days=podium.settings.login_days)
    )
    return DeviceTokenOut(status="approved", user=user, token=token)
