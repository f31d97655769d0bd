"""JSON shapes of the catalog API, in and out."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from podium.catalog.models import AuditEvent, Grant, Lifecycle, Right, Service, Team, Token
from podium.catalog.rules import NAME_PATTERN
from podium.errors import Invalid
from podium.store.db import utcnow

DURATION_RE = re.compile(r"(\d{1,9})([smhdw])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# Names are checked by the catalog, whose message names the rule; the schema only tells
# clients (and schema-driven tools) what a valid one looks like.
NAME_SCHEMA: dict[str, Any] = {"pattern": NAME_PATTERN, "maxLength": 40}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` as a timedelta."""
    match = DURATION_RE.fullmatch(text.strip())
    if match is None:
        shown = text if len(text) <= 20 else f"{text[:20]}…"
        raise Invalid(f"invalid duration {shown!r}: use a number and one of s, m, h, d, w (e.g. 7d)")
    try:
        return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise Invalid(f"duration {match.group(0)!r} is too long") from None


class RecordOut(BaseModel):
    """A schema read from a record's attributes: ``Schema.model_validate(record)``."""

    model_config = ConfigDict(from_attributes=True)


Schema = TypeVar("Schema", bound=RecordOut)


def fields_of(record: type[Any], *, but: Collection[str] = ()) -> Callable[[type[Schema]], type[Schema]]:
    """A class decorator: the schema gets every field of the dataclass ``record`` but ``but``, in its order.

    The schema declares only what it describes (a field of the record, which keeps its place)
    or adds (after the record's fields), and its class methods. As a ``RecordOut``,
    ``Schema.model_validate(record)`` copies a record, a property of the record filling a
    field of its name.
    """

    def derive(schema: type[Schema]) -> type[Schema]:
        hints = get_type_hints(record)
        declared = {name: (info.annotation, info) for name, info in schema.model_fields.items()}
        fields: dict[str, Any] = {
            field.name: declared.pop(field.name, (hints[field.name], default_of(field)))
            for field in dataclasses.fields(record)
            if field.name not in but
        }
        fields.update(declared)
        derived = create_model(schema.__name__, __base__=RecordOut, __module__=schema.__module__,
                               __doc__=schema.__doc__, **fields)
        for name, method in vars(schema).items():
            if isinstance(method, classmethod):
                setattr(derived, name, method)
        return cast(type[Schema], derived)

    return derive


def default_of(field: dataclasses.Field[Any]) -> Any:
    """A record field's default as pydantic takes it: ``...`` when it has none."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return Field(default_factory=field.default_factory)
    return ...


def end_of(start: datetime, name: str, end: datetime | None, duration: str | None) -> datetime:
    """The end a body gives: its field ``name`` (``end``), or ``start`` plus ``duration``; exactly one."""
    if (end is None) == (duration is None):
        raise Invalid(f"give exactly one of {name} or duration")
    if end is not None:
        return end
    assert duration is not None
    try:
        return start + parse_duration(duration)
    except OverflowError:
        raise Invalid(f"duration {duration!r} is too long") from None


class ErrorOut(BaseModel):
    """Why a request failed."""

    detail: str | list[dict[str, Any]] = Field(
        description="A sentence saying what is wrong and how to fix it; for a request that does not "
        "fit the schema, FastAPI's list of the fields in error."
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body is not JSON."},
    401: {"model": ErrorOut, "description": "No token, or an unknown or revoked one."},
    403: {"model": ErrorOut, "description": "The calling team may not do this."},
    404: {"model": ErrorOut, "description": "A named team, service, token or grant does not exist."},
    409: {"model": ErrorOut, "description": "The name is taken."},
    422: {"model": ErrorOut, "description": "The input breaks a rule; the detail names it."},
}


class TeamIn(BaseModel):
    name: str = Field(description="DNS label, e.g. 'checkout'.", json_schema_extra=NAME_SCHEMA)
    description: str = Field("", max_length=500)


class TeamOut(RecordOut):
    name: str
    description: str
    created_at: datetime

    @classmethod
    def of(cls, team: Team) -> TeamOut:
        return cls.model_validate(team)


class TokenIn(BaseModel):
    description: str = Field("", max_length=200)
    name: str = Field("", max_length=60, description="What the token is for, e.g. 'ci' (default: the description).")


class TokenOut(BaseModel):
    id: str
    team: str
    name: str
    description: str
    created_by: str = Field(description="Who made it: a person's name, or a team's.")
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: Token) -> TokenOut:
        return cls(
            id=token.id, team=token.team.name, name=token.name, description=token.description,
            created_by=token.created_by, created_at=token.created_at, revoked_at=token.revoked_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, only its hash is kept.")


class ServiceIn(BaseModel):
    name: str = Field(description="DNS label, e.g. 'cart'.", json_schema_extra=NAME_SCHEMA)
    owner: str = Field(description="The owning team.")
    description: str = Field("", max_length=2000)
    lifecycle: Lifecycle = Lifecycle.EXPERIMENTAL


class ServicePatch(BaseModel):
    description: str | None = Field(None, max_length=2000)
    lifecycle: Lifecycle | None = None


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
    team: str = Field(description="The team that receives the rights.")
    rights: list[Right] = Field(description="What the team may do: deploy, config.")
    expires_at: datetime | None = Field(None, description="When the grant ends (with a timezone).")
    duration: str | None = Field(None, description="Or how long it lasts: 12h, 7d, 2w.")
    reason: str = Field("", max_length=500)

    def end(self) -> datetime:
        """When the grant ends, from whichever of ``expires_at`` and ``duration`` was given."""
        return end_of(utcnow(), "expires_at", self.expires_at, self.duration)


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


class AuditActor(BaseModel):
    """Who acted: a person (``user``) through a token or a web session, or a team token."""

    team: str
    user: str | None
    token_id: str | None
    session_id: str | None


class AuditOut(RecordOut):
    id: int
    at: datetime
    team: str
    token_id: str | None
    user: str | None
    actor: AuditActor
    action: str
    service: str | None
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditOut:
        return cls(
            id=event.id, at=event.at, team=event.team, token_id=event.token_id, user=event.user,
            actor=AuditActor(team=event.team, user=event.user, token_id=event.token_id, session_id=event.session_id),
            action=event.action,
            service=event.service, target=event.target, before=event.before, after=event.after,
        )


class ImportIn(BaseModel):
    document: str = Field(description="The text of a Backstage catalog-info.yaml (one or more entities).")


class WhoAmI(BaseModel):
    team: str
    token_id: str | None
    admin: bool
    user: str | None = None
    session_id: str | None = None
