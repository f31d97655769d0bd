"""JSON shapes of the catalog API, in and out."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from podium.catalog.models import AuditEvent, Grant, Service, Team, Token
from podium.errors import Invalid
from podium.store.db import utcnow

DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` as a timedelta."""
    match = DURATION_RE.match(text.strip())
    if match is None:
        raise Invalid(f"invalid duration {text!r}: use a number and one of s, m, h, d, w (e.g. 7d)")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


class TeamIn(BaseModel):
    name: str = Field(description="DNS label, e.g. 'checkout'.")
    description: str = Field("", max_length=500)


class TeamOut(BaseModel):
    name: str
    description: str
    created_at: datetime

    @classmethod
    def of(cls, team: Team) -> TeamOut:
        return cls(name=team.name, description=team.description, created_at=team.created_at)


class TokenIn(BaseModel):
    description: str = Field("", max_length=200)


class TokenOut(BaseModel):
    id: str
    team: str
    description: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: Token) -> TokenOut:
        return cls(
            id=token.id, team=token.team.name, description=token.description,
            created_at=token.created_at, revoked_at=token.revoked_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, only its hash is kept.")


class ServiceIn(BaseModel):
    name: str = Field(description="DNS label: [a-z][a-z0-9-]{0,39}.")
    owner: str = Field(description="The owning team.")
    description: str = Field("", max_length=2000)
    lifecycle: str = Field("experimental", description="experimental | production | deprecated")


class ServicePatch(BaseModel):
    description: str | None = Field(None, max_length=2000)
    lifecycle: str | None = None


class TransferIn(BaseModel):
    to: str = Field(description="The team that will own the service.")


class ServiceOut(BaseModel):
    name: str
    owner: str
    description: str
    lifecycle: str
    environments: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, service: Service) -> ServiceOut:
        return cls(
            name=service.name, owner=service.owner.name, description=service.description,
            lifecycle=service.lifecycle, environments=[e.name for e in service.environments],
            created_at=service.created_at, updated_at=service.updated_at,
        )


class GrantIn(BaseModel):
    team: str
    rights: list[str] = Field(description="Any of: deploy, config.")
    expires_at: datetime | None = Field(None, description="When the grant ends (with a timezone).")
    duration: str | None = Field(None, description="Or how long it lasts: 12h, 7d, 2w.")
    reason: str = Field("", max_length=500)

    def end(self) -> datetime:
        if (self.expires_at is None) == (self.duration is None):
            raise Invalid("give exactly one of expires_at or duration")
        if self.duration is not None:
            return utcnow() + parse_duration(self.duration)
        assert self.expires_at is not None
        return self.expires_at


class GrantOut(BaseModel):
    id: int
    service: str
    team: str
    rights: list[str]
    expires_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    active: bool

    @classmethod
    def of(cls, grant: Grant) -> GrantOut:
        return cls(
            id=grant.id, service=grant.service.name, team=grant.team.name, rights=grant.rights,
            expires_at=grant.expires_at, reason=grant.reason, created_by=grant.created_by,
            created_at=grant.created_at, active=grant.revoked_at is None and grant.expires_at > utcnow(),
        )


class AuditOut(BaseModel):
    id: int
    at: datetime
    team: str
    token_id: str | None
    action: str
    service: str | None
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditOut:
        return cls(
            id=event.id, at=event.at, team=event.team, token_id=event.token_id, action=event.action,
            service=event.service, target=event.target, before=event.before, after=event.after,
        )


class ImportIn(BaseModel):
    document: str = Field(description="The text of a Backstage catalog-info.yaml (one or more entities).")


class WhoAmI(BaseModel):
    team: str
    token_id: str | None
    admin: bool
