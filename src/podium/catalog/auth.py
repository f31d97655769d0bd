"""Tokens and the actor a request acts as.

A token reads ``pdm_<id>_<secret>``; the store keeps only a SHA-256 of the secret, looked
up by id and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from podium.catalog.models import PLATFORM_TEAM, Token
from podium.errors import Unauthorized

TOKEN_ID_RE = re.compile(r"[0-9a-f]{12}")
TOKEN_RE = re.compile(rf"pdm_({TOKEN_ID_RE.pattern})_([A-Za-z0-9_-]{{20,100}})")


@dataclass(frozen=True)
class Actor:
    """Who is asking: a team, through one of its tokens."""

    team: str
    team_id: int
    token_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.team == PLATFORM_TEAM

    @classmethod
    def system(cls) -> Actor:
        """Podium acting by itself (an auto-rollback, a month closed, a backup taken): the
        platform team, with no token."""
        return cls(team=PLATFORM_TEAM, team_id=0, token_id=None)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """A fresh token: (token id, the full token to hand out once, the hash to store)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, f"pdm_{token_id}_{secret}", hash_secret(secret)


def authenticate(session: Session, presented: str | None) -> Actor:
    """The actor behind a presented token; Unauthorized when missing, unknown or revoked."""
    if not presented:
        raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
    match = TOKEN_RE.fullmatch(presented)
    if match is None:
        raise Unauthorized("invalid token")
    token = session.get(Token, match.group(1))
    # Compare even when the id is unknown, so timing does not tell which ids exist.
    stored = token.secret_hash if token is not None else "0" * 64
    valid = hmac.compare_digest(stored, hash_secret(match.group(2)))
    if token is None or not valid or token.revoked_at is not None:
        raise Unauthorized("invalid token")
    return Actor(team=token.team.name, team_id=token.team_id, token_id=token.id)
