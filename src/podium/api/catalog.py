"""Catalog routes: teams, tokens, services, grants, audit, Backstage import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep
from podium.api.schemas import (
    ERROR_RESPONSES,
    NAME_SCHEMA,
    AuditOut,
    GrantIn,
    GrantOut,
    ImportIn,
    ServiceIn,
    ServiceOut,
    ServicePatch,
    TeamIn,
    TeamOut,
    TokenCreated,
    TokenIn,
    TokenOut,
    TransferIn,
    WhoAmI,
)
from podium.catalog.models import Lifecycle

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)


@router.get("/whoami", tags=["auth"])
def whoami(actor: ActorDep) -> WhoAmI:
    return WhoAmI(team=actor.team, token_id=actor.token_id, admin=actor.is_admin, user=actor.user,
                  session_id=actor.session_id)


@router.get("/teams", tags=["teams"])
def list_teams(podium: PodiumDep, actor: ActorDep) -> list[TeamOut]:
    return [TeamOut.of(t) for t in podium.catalog.list_teams()]


@router.post("/teams", status_code=status.HTTP_201_CREATED, tags=["teams"])
def create_team(body: TeamIn, podium: PodiumDep, actor: ActorDep) -> TeamOut:
    return TeamOut.of(podium.catalog.create_team(actor, body.name, body.description))


@router.get("/teams/{team}", tags=["teams"])
def show_team(team: str, podium: PodiumDep, actor: ActorDep) -> TeamOut:
    return TeamOut.of(podium.catalog.get_team(team))


class TeamRenameIn(BaseModel):
    name: str = Field(description="The team's new name, a DNS label.", json_schema_extra=NAME_SCHEMA)


@router.patch("/teams/{team}", tags=["teams"])
def rename_team(team: str, body: TeamRenameIn, podium: PodiumDep, actor: ActorDep) -> TeamOut:
    """Rename a team (platform team only); its tokens keep working."""
    return TeamOut.of(podium.catalog.rename_team(actor, team, body.name))


@router.delete("/teams/{team}", status_code=status.HTTP_204_NO_CONTENT, tags=["teams"])
def delete_team(team: str, podium: PodiumDep, actor: ActorDep) -> Response:
    """Delete a team with its tokens (platform team only); 409 while it owns services."""
    podium.catalog.delete_team(actor, team)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/teams/{team}/tokens", tags=["teams"])
def list_tokens(team: str, podium: PodiumDep, actor: ActorDep) -> list[TokenOut]:
    return [TokenOut.of(t) for t in podium.catalog.list_tokens(actor, team)]


@router.post("/teams/{team}/tokens", status_code=status.HTTP_201_CREATED, tags=["teams"])
def create_token(team: str, body: TokenIn, podium: PodiumDep, actor: ActorDep) -> TokenCreated:
    row, token = podium.catalog.create_token(actor, team, body.description, body.name)
    return TokenCreated(**TokenOut.of(row).model_dump(), token=token)


@router.delete("/teams/{team}/tokens/{token_id}", tags=["teams"])
def revoke_token(team: str, token_id: str, podium: PodiumDep, actor: ActorDep) -> TokenOut:
    return TokenOut.of(podium.catalog.revoke_token(actor, team, token_id))


@router.get("/services", tags=["services"])
def list_services(
    podium: PodiumDep,
    actor: ActorDep,
    owner: str | None = Query(None, description="Only services of this team."),
    lifecycle: Annotated[Lifecycle | None, Query(description="Only services at this lifecycle stage.")] = None,
) -> list[ServiceOut]:
    return [ServiceOut.of(s) for s in podium.catalog.list_services(owner=owner, lifecycle=lifecycle)]


@router.post("/services", status_code=status.HTTP_201_CREATED, tags=["services"])
def create_service(body: ServiceIn, podium: PodiumDep, actor: ActorDep) -> ServiceOut:
    service = podium.catalog.create_service(actor, body.name, body.owner, body.description, body.lifecycle)
    return ServiceOut.of(service)


@router.get("/services/{service}", tags=["services"])
def show_service(service: str, podium: PodiumDep, actor: ActorDep) -> ServiceOut:
    return ServiceOut.of(podium.catalog.get_service(service))


@router.patch("/services/{service}", tags=["services"])
def update_service(service: str, body: ServicePatch, podium: PodiumDep, actor: ActorDep) -> ServiceOut:
    updated = podium.catalog.update_service(
        actor, service, description=body.description, lifecycle=body.lifecycle
    )
    return ServiceOut.of(updated)


@router.delete("/services/{service}", status_code=status.HTTP_204_NO_CONTENT, tags=["services"])
def delete_service(
    service: str,
    podium: PodiumDep,
    actor: ActorDep,
    with_addons: bool = Query(False, description="Also delete its databases (a final backup of each is kept)."),
) -> Response:
    """Stop the service's processes, remove its routes, checks and schedules, and delete it;
    its logs and audit trail are kept in a tarball (path in ``Podium-Archive``). Refused
    (409) while it has databases, unless ``with_addons``."""
    archive = podium.delete_service(actor, service, with_addons=with_addons)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Podium-Archive": archive.name})


@router.post("/services/{service}/transfer", tags=["services"])
def transfer_service(service: str, body: TransferIn, podium: PodiumDep, actor: ActorDep) -> ServiceOut:
    return ServiceOut.of(podium.catalog.transfer_service(actor, service, body.to))


@router.get("/services/{service}/grants", tags=["grants"])
def list_grants(
    service: str,
    podium: PodiumDep,
    actor: ActorDep,
    all: bool = Query(False, description="Include revoked and expired grants."),
) -> list[GrantOut]:
    return [GrantOut.of(g) for g in podium.catalog.list_grants(service, include_expired=all)]


@router.post("/services/{service}/grants", status_code=status.HTTP_201_CREATED, tags=["grants"])
def add_grant(service: str, body: GrantIn, podium: PodiumDep, actor: ActorDep) -> GrantOut:
    rights = [right.value for right in body.rights]
    grant = podium.catalog.add_grant(actor, service, body.team, rights, body.end(), body.reason)
    return GrantOut.of(grant)


@router.delete("/services/{service}/grants/{grant_id}", tags=["grants"])
def revoke_grant(service: str, grant_id: int, podium: PodiumDep, actor: ActorDep) -> GrantOut:
    return GrantOut.of(podium.catalog.revoke_grant(actor, service, grant_id))


@router.get("/audit", tags=["audit"])
def audit_log(
    podium: PodiumDep,
    actor: ActorDep,
    service: str | None = None,
    team: str | None = None,
    limit: int = Query(200, ge=1, le=5000),
) -> list[AuditOut]:
    return [AuditOut.of(e) for e in podium.catalog.audit_log(actor, service=service, team=team, limit=limit)]


@router.post("/catalog/import", tags=["services"])
def import_catalog(body: ImportIn, podium: PodiumDep, actor: ActorDep) -> list[dict[str, str]]:
    return podium.catalog.import_backstage(actor, body.document)
