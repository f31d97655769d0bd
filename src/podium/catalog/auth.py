"""Tokens and the actor a request acts as.

A team token reads ``pdm_<id>_<secret>``, a person's token or session ``pdu_<id>_<secret>``;
the store keeps only a SHA-256 of the secret, looked up by id and compared in constant time.

A person's rights are computed from their memberships at each request: a member removed
from a team has none of its rights from the next request on, whatever token or session
they hold.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from podium.catalog.models import PLATFORM_TEAM, Team, Token
from podium.errors import Unauthorized
from podium.people.models import CredentialKind, Membership, PersonalToken, Role, User
from podium.store.db import utcnow

TOKEN_ID_RE = re.compile(r"[0-9a-f]{12}")
TOKEN_RE = re.compile(rf"(pdm|pdu)_({TOKEN_ID_RE.pattern})_([A-Za-z0-9_-]{{20,100}})")
PERSONAL_PREFIX = "pdu"
# A personal token with its user, memberships and their teams, in one query.
PERSON = joinedload(PersonalToken.user).joinedload(User.memberships).joinedload(Membership.team)


@dataclass(frozen=True)
class Actor:
    """Who is asking: a team through one of its tokens, or a person through a token or session.

    For a person, ``team``/``team_id`` is the team they act as by default (the platform team
    for an admin, else their first team by name, or ``""``/0 with no team), and ``teams``
    every team whose rights they hold now.
    """

    team: str
    team_id: int
    token_id: str | None
    user: str | None = None
    user_id: int | None = None
    session_id: str | None = None
    teams: frozenset[int] = field(default_factory=frozenset)
    maintains: frozenset[int] = field(default_factory=frozenset)
    read_only: bool = False

    @property
    def is_admin(self) -> bool:
        return self.team == PLATFORM_TEAM

    @classmethod
    def system(cls) -> Actor:
        """Podium acting by itself (an auto-rollback, a month closed, a backup taken): the
        platform team, with no token."""
        return cls(team=PLATFORM_TEAM, team_id=0, token_id=None)

    def acts_for(self, team_id: int) -> bool:
        """Whether the actor holds the rights of team ``team_id`` (the platform team holds all)."""
        return self.is_admin or team_id == self.team_id or team_id in self.teams

    def manages(self, team_id: int) -> bool:
        """Whether the actor may manage that team's members, tokens, grants and rotations.

        A team token manages its own team (it is the whole team); a person must be a
        maintainer of it, or an admin.
        """
        if self.is_admin:
            return True
        if self.user is None:
            return team_id == self.team_id
        return team_id in self.maintains

    @property
    def name(self) -> str:
        """Who acted, for people to read: the person's name, else the team's."""
        return self.user or self.team


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(prefix: str = "pdm") -> tuple[str, str, str]:
    """A fresh token: (token id, the full token to hand out once, the hash to store)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, f"{prefix}_{token_id}_{secret}", hash_secret(secret)


def authenticate(session: Session, presented: str | None) -> Actor:
    """The actor behind a presented token; Unauthorized when missing, unknown, revoked or expired."""
    if not presented:
        raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
    match = TOKEN_RE.fullmatch(presented)
    if match is None:
        raise Unauthorized("invalid token")
    kind, token_id, secret = match.groups()
    row: Token | PersonalToken | None = (
        session.get(Token, token_id) if kind == "pdm" else session.get(PersonalToken, token_id, options=[PERSON])
    )
    # Compare even when the id is unknown, so timing does not tell which ids exist.
    stored = row.secret_hash if row is not None else "0" * 64
    valid = hmac.compare_digest(stored, hash_secret(secret))
    if row is None or not valid or row.revoked_at is not None:
        raise Unauthorized("invalid token")
    if isinstance(row, Token):
        return Actor(team=row.team.name, team_id=row.team_id, token_id=row.id)
    if row.expires_at <= utcnow():
        what = "session" if row.kind == CredentialKind.SESSION else "token"
        raise Unauthorized(f"this {what} has expired: sign in again or make a new token")
    return person_actor(session, row.user, row)


def person_actor(session: Session, user: User, credential: PersonalToken) -> Actor:
    """The rights of ``user`` now, narrowed to the credential's scope."""
    scope = set(credential.teams) if credential.teams is not None else None
    teams: list[tuple[str, int, str]] = sorted(
        (m.team.name, m.team_id, m.role) for m in user.memberships if scope is None or m.team.name in scope
    )
    admin = any(name == PLATFORM_TEAM for name, _, _ in teams) or (user.admin and scope is None)
    if admin:
        platform = session.scalar(select(Team).where(Team.name == PLATFORM_TEAM))
        team, team_id = PLATFORM_TEAM, platform.id if platform is not None else 0
    elif teams:
        team, team_id = teams[0][0], teams[0][1]
    else:
        team, team_id = "", 0
    is_session = credential.kind == CredentialKind.SESSION
    return Actor(
        team=team, team_id=team_id,
        token_id=None if is_session else credential.id,
        session_id=credential.id if is_session else None,
        user=user.name, user_id=user.id,
        teams=frozenset(tid for _, tid, _ in teams),
        maintains=frozenset(tid for _, tid, role in teams if role == Role.MAINTAINER),
        read_only=credential.read_only,
    )
