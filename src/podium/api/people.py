"""People routes: users, team members, personal tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep
from podium.api.schemas import ERROR_RESPONSES, NAME_SCHEMA, parse_duration
from podium.errors import Invalid
from podium.people.models import Membership, PersonalToken, Role, User
from podium.store.db import utcnow

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


class UserIn(BaseModel):
    name: str = Field(description="DNS label, e.g. 'ada'.", json_schema_extra=NAME_SCHEMA)
    email: str = Field(max_length=254)
    admin: bool = Field(False, description="A platform admin: every right on everything.")
    contacts: list[str] = Field(default_factory=list, description="Apprise URLs where pages for them go.")


class UserPatch(BaseModel):
    email: str | None = Field(None, max_length=254)
    admin: bool | None = None
    contacts: list[str] | None = None


class MembershipOut(BaseModel):
    team: str
    user: str
    role: str
    source: str
    since: datetime

    @classmethod
    def of(cls, membership: Membership) -> MembershipOut:
        return cls(team=membership.team.name, user=membership.user.name, role=membership.role,
                   source=membership.source, since=membership.created_at)


class UserOut(BaseModel):
    name: str
    email: str
    admin: bool
    contacts: list[str]
    teams: dict[str, str] = Field(description="The teams they are a member of, with their role in each.")
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(name=user.name, email=user.email, admin=user.admin, contacts=list(user.contacts),
                   teams={m.team.name: m.role for m in user.memberships}, created_at=user.created_at)


class MemberIn(BaseModel):
    user: str = Field(description="The user to add.")
    role: Role = Role.MEMBER


class PersonalTokenIn(BaseModel):
    name: str = Field("", max_length=60, description="What the token is for.")
    expires_at: datetime | None = Field(None, description="When it stops working (with a timezone).")
    expires: str | None = Field(None, description="Or how long it lasts: 12h, 30d (default 30d).")
    teams: list[str] | None = Field(None, description="Only these teams' rights (default: all of the person's).")
    read_only: bool = Field(False, description="Reads only.")

    def end(self) -> datetime:
        if self.expires_at is not None and self.expires is not None:
            raise Invalid("give at most one of expires_at or expires")
        if self.expires_at is not None:
            return self.expires_at
        try:
            return utcnow() + parse_duration(self.expires or "30d")
        except OverflowError:
            raise Invalid(f"expires {self.expires!r} is too long") from None


class PersonalTokenOut(BaseModel):
    id: str
    user: str
    kind: str = Field(description="token (made by its owner), session (web) or login (CLI).")
    name: str
    teams: list[str] | None
    read_only: bool
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool

    @classmethod
    def of(cls, row: PersonalToken) -> PersonalTokenOut:
        return cls(
            id=row.id, user=row.user.name, kind=row.kind, name=row.name, teams=row.teams, read_only=row.read_only,
            created_by=row.created_by, created_at=row.created_at, expires_at=row.expires_at,
            revoked_at=row.revoked_at, active=row.revoked_at is None and row.expires_at > utcnow(),
        )


class PersonalTokenCreated(PersonalTokenOut):
    token: str = Field(description="The token itself: shown this once, only its hash is kept.")


@router.get("/users", tags=["people"])
def list_users(podium: PodiumDep, actor: ActorDep) -> list[UserOut]:
    return [UserOut.of(u) for u in podium.people.list_users()]


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["people"])
def create_user(body: UserIn, podium: PodiumDep, actor: ActorDep) -> UserOut:
    return UserOut.of(podium.people.create_user(actor, body.name, body.email, admin=body.admin,
                                                contacts=body.contacts))


@router.get("/users/{user}", tags=["people"])
def show_user(user: str, podium: PodiumDep, actor: ActorDep) -> UserOut:
    return UserOut.of(podium.people.get_user(user))


@router.patch("/users/{user}", tags=["people"])
def update_user(user: str, body: UserPatch, podium: PodiumDep, actor: ActorDep) -> UserOut:
    updated = podium.people.update_user(actor, user, email=body.email, contacts=body.contacts, admin=body.admin)
    return UserOut.of(updated)


@router.get("/users/{user}/tokens", tags=["people"])
def list_personal_tokens(user: str, podium: PodiumDep, actor: ActorDep) -> list[PersonalTokenOut]:
    return [PersonalTokenOut.of(t) for t in podium.people.list_tokens(actor, user)]


@router.post("/users/{user}/tokens", status_code=status.HTTP_201_CREATED, tags=["people"])
def create_personal_token(user: str, body: PersonalTokenIn, podium: PodiumDep, actor: ActorDep) -> PersonalTokenCreated:
    row, token = podium.people.create_token(
        actor, user, name=body.name, expires_at=body.end(), teams=body.teams, read_only=body.read_only
    )
    return PersonalTokenCreated(**PersonalTokenOut.of(row).model_dump(), token=token)


@router.delete("/users/{user}/tokens/{token_id}", tags=["people"])
def revoke_personal_token(user: str, token_id: str, podium: PodiumDep, actor: ActorDep) -> PersonalTokenOut:
    return PersonalTokenOut.of(podium.people.revoke_token(actor, user, token_id))


@router.get("/teams/{team}/members", tags=["teams"])
def list_members(team: str, podium: PodiumDep, actor: ActorDep) -> list[MembershipOut]:
    return [MembershipOut.of(m) for m in podium.people.list_members(team)]


@router.post("/teams/{team}/members", status_code=status.HTTP_201_CREATED, tags=["teams"])
def add_member(team: str, body: MemberIn, podium: PodiumDep, actor: ActorDep) -> MembershipOut:
    return MembershipOut.of(podium.people.add_member(actor, team, body.user, body.role))


@router.delete("/teams/{team}/members/{user}", status_code=status.HTTP_204_NO_CONTENT, tags=["teams"])
def remove_member(team: str, user: str, podium: PodiumDep, actor: ActorDep) -> Response:
    podium.people.remove_member(actor, team, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
