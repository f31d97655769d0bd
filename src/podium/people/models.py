"""People tables: users, memberships in teams, personal tokens and sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from podium.catalog.models import Team
from podium.store.db import Base, utcnow


class Role(StrEnum):
    """A member's role in a team: a maintainer also manages its members, grants and rotations."""

    MEMBER = "member"
    MAINTAINER = "maintainer"


class CredentialKind(StrEnum):
    """What a personal credential is: a token its owner made, a web session, a CLI login."""

    TOKEN = "token"  # noqa: S105  (a kind of credential, not a secret)
    SESSION = "session"
    LOGIN = "login"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    admin: Mapped[bool] = mapped_column(default=False)
    # Apprise URLs: where a page for this person goes.
    contacts: Mapped[list[str]] = mapped_column(JSON, default=list)
    # ``<issuer> <subject>`` of the provider account that signs in as this user.
    oidc_subject: Mapped[str | None] = mapped_column(String(600), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin", order_by="Membership.id"
    )


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "team_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default=Role.MEMBER)
    # Where it came from: "manual", or "oidc" when a group claim made it (and may unmake it).
    source: Mapped[str] = mapped_column(String(20), default="manual")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="memberships", lazy="joined")
    team: Mapped[Team] = relationship(lazy="joined")


class PersonalToken(Base):
    """A person's credential: a named token, a web session or a CLI login; the secret is hashed."""

    __tablename__ = "personal_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default=CredentialKind.TOKEN)
    name: Mapped[str] = mapped_column(String(60), default="")
    secret_hash: Mapped[str] = mapped_column(String(64))
    # The scope: only these teams' rights (None: all of the person's), and reads only.
    teams: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    read_only: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")
