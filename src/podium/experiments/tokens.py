"""App tokens: what a deployed app gets as ``PODIUM_TOKEN``.

One live token per service environment, made the first time a release of it rolls out.
It reads that environment's definitions and evaluations and sends its events, nothing
else: every other route takes team tokens only (``pdm_…``), and an app token
(``pda_<id>_<secret>``) is refused there. The store keeps a SHA-256 of the secret to
check it, and the token sealed (with the add-ons key) to hand it to each new release.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.addons.crypto import Sealer
from podium.catalog import audit
from podium.catalog.auth import Actor, hash_secret
from podium.catalog.models import Environment, Right
from podium.catalog.service import authorize, get_environment, get_service
from podium.config import Settings
from podium.errors import Forbidden, Unauthorized
from podium.experiments.models import AppToken
from podium.store.db import Store, utcnow

APP_TOKEN_PREFIX = "pda_"  # noqa: S105 - a prefix, not a secret
APP_TOKEN_RE = re.compile(r"pda_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})")


def is_app_token(presented: str | None) -> bool:
    """Whether ``presented`` is shaped like an app token (checked or not)."""
    return presented is not None and presented.startswith(APP_TOKEN_PREFIX)


@dataclass(frozen=True)
class AppCaller:
    """A deployed app, through its environment's app token."""

    token_id: str
    environment_id: int
    service: str
    env: str
    team: str = ""  # the team owning the service when the token was checked: who the app's requests bill

    def require(self, service: str, env: str) -> None:
        """Forbidden unless this token belongs to ``service``/``env``."""
        if (service, env) != (self.service, self.env):
            raise Forbidden(
                f"this app token belongs to {self.service}/{self.env}; it cannot act on {service[:60]}/{env[:20]}"
            )


Caller = Actor | AppCaller
"""Who calls a route that apps may call: a team, or a deployed app."""


@dataclass(frozen=True)
class AppTokenInfo:
    """An app token as shown to a team: never the secret."""

    id: str
    service: str
    env: str
    created_at: datetime
    release: int | None = None  # the release rolled out to carry a rotated token

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "service": self.service,
            "env": self.env,
            "created_at": self.created_at.isoformat(),
            "release": self.release,
        }


def _new_token() -> tuple[str, str, str]:
    """(id, the full token, the hash of its secret)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{APP_TOKEN_PREFIX}{token_id}_{secret}", hash_secret(secret)


def _live(session: Session, environment_id: int) -> AppToken | None:
    return session.scalar(
        select(AppToken)
        .where(AppToken.environment_id == environment_id, AppToken.revoked_at.is_(None))
        .order_by(AppToken.created_at.desc())
        .limit(1)
    )


class AppTokenService:
    """Makes, checks and rotates the app tokens of one store."""

    def __init__(self, settings: Settings, store: Store, sealer: Sealer | None = None) -> None:
        self.store = store
        self.sealer = sealer or Sealer(settings.data_dir.absolute() / "addons.key", settings.addons_key)
        self._lock = threading.Lock()

    def token_for(self, environment_id: int) -> str:
        """The environment's live app token, made on first need (what ``PODIUM_TOKEN`` is set to)."""
        with self._lock, self.store.session() as session:
            token = _live(session, environment_id)
            if token is not None:
                return self.sealer.open(token.sealed)
            token_id, full, digest = _new_token()
            session.add(
                AppToken(id=token_id, environment_id=environment_id, secret_hash=digest, sealed=self.sealer.seal(full))
            )
            return full

    def authenticate(self, presented: str) -> AppCaller:
        """The app behind an app token; Unauthorized when unknown or revoked."""
        match = APP_TOKEN_RE.fullmatch(presented)
        if match is None:
            raise Unauthorized("invalid app token")
        with self.store.session() as session:
            token = session.get(AppToken, match.group(1))
            # Compare even when the id is unknown, so timing does not tell which ids exist.
            stored = token.secret_hash if token is not None else "0" * 64
            valid = hmac.compare_digest(stored, hash_secret(match.group(2)))
            if token is None or not valid or token.revoked_at is not None:
                raise Unauthorized("invalid app token: it was rotated, or the environment is gone")
            environment = session.get(Environment, token.environment_id)
            if environment is None:
                raise Unauthorized("invalid app token: the environment is gone")
            service = environment.service
            return AppCaller(token.id, environment.id, service.name, environment.name, service.owner.name)

    def show(self, actor: Actor, service: str, env: str) -> AppTokenInfo | None:
        """The environment's live app token (without its secret); None before its first release."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            token = _live(session, get_environment(session, svc, env).id)
            return None if token is None else AppTokenInfo(token.id, service, env, token.created_at)

    def rotate(self, actor: Actor, service: str, env: str) -> AppTokenInfo:
        """Revoke the environment's app token at once and make a new one (for a token that leaked).

        The caller rolls out a release so the app gets the new token; until then the app's
        definitions stay cached and its events wait in its buffer.
        """
        with self._lock, self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            environment = get_environment(session, svc, env)
            now = utcnow()
            revoked = []
            for old in session.scalars(
                select(AppToken).where(AppToken.environment_id == environment.id, AppToken.revoked_at.is_(None))
            ):
                old.revoked_at = now
                revoked.append(old.id)
            token_id, full, digest = _new_token()
            session.add(
                AppToken(
                    id=token_id,
                    environment_id=environment.id,
                    secret_hash=digest,
                    sealed=self.sealer.seal(full),
                    created_at=now,
                )
            )
            audit.record(
                session, actor, "app_token.rotate", service=service, target=env,
                before={"tokens": revoked}, after={"token": token_id},
            )  # fmt: skip
            return AppTokenInfo(token_id, service, env, now)
