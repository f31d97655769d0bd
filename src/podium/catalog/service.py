"""Catalog verbs: teams, tokens, services, ownership, grants.

Every mutation is authorised by ownership and recorded in the audit log in the same
transaction. Verbs take the acting ``Actor`` first and return detached rows.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import Actor, new_token
from podium.catalog.models import (
    ENVIRONMENTS,
    PLATFORM_TEAM,
    Environment,
    Grant,
    Lifecycle,
    Right,
    Service,
    Team,
    Token,
)
from podium.errors import Conflict, Forbidden, Invalid, NotFound
from podium.store.db import Store, utcnow

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def check_name(kind: str, name: str) -> str:
    """A DNS label: lower-case letter first, then letters, digits and dashes, 40 at most."""
    if not NAME_RE.match(name) or name.endswith("-"):
        raise Invalid(
            f"invalid {kind} name {name!r}: use a lower-case letter, then up to 39 lower-case "
            "letters, digits or dashes, not ending in a dash"
        )
    return name


def check_lifecycle(value: str) -> Lifecycle:
    try:
        return Lifecycle(value)
    except ValueError:
        allowed = ", ".join(v.value for v in Lifecycle)
        raise Invalid(f"invalid lifecycle {value!r}: use one of {allowed}") from None


def service_snapshot(service: Service) -> dict[str, Any]:
    """What the audit log records of a service before and after a change."""
    return {
        "name": service.name,
        "owner": service.owner.name,
        "description": service.description,
        "lifecycle": service.lifecycle,
    }


def get_team(session: Session, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name))
    if team is None:
        raise NotFound(f"team {name!r} not found")
    return team


def get_service(session: Session, name: str) -> Service:
    service = session.scalar(select(Service).where(Service.name == name))
    if service is None:
        raise NotFound(f"service {name!r} not found")
    return service


def get_environment(session: Session, service: Service, env: str) -> Environment:
    for environment in service.environments:
        if environment.name == env:
            return environment
    raise NotFound(f"environment {env!r} not found on service {service.name!r}: use staging or production")


def active_grants(session: Session, service: Service, team_id: int) -> list[Grant]:
    stmt = select(Grant).where(
        Grant.service_id == service.id,
        Grant.team_id == team_id,
        Grant.revoked_at.is_(None),
        Grant.expires_at > utcnow(),
    )
    return list(session.scalars(stmt))


def authorize(session: Session, actor: Actor, service: Service, right: Right | None = None) -> None:
    """Allow the platform team, the owning team, or (for ``right``) a team holding a live grant.

    ``right=None`` means an owner-only change (update, delete, transfer, grants).
    """
    if actor.is_admin or actor.team_id == service.owner_id:
        return
    if right is not None:
        for grant in active_grants(session, service, actor.team_id):
            if right.value in grant.rights:
                return
    what = f"{right.value} " if right is not None else ""
    raise Forbidden(
        f"team {actor.team!r} may not change service {service.name!r} owned by "
        f"{service.owner.name!r}" + (f" (no live {what}grant)" if right else "")
    )


def require_admin(actor: Actor, doing: str) -> None:
    if not actor.is_admin:
        raise Forbidden(f"only the {PLATFORM_TEAM!r} team may {doing}")


class CatalogService:
    """The catalog's verbs over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # Teams and tokens ------------------------------------------------------------------

    def bootstrap_admin(self) -> str | None:
        """Create the platform team and its first token if the store has none; return that token."""
        with self.store.session() as session:
            team = session.scalar(select(Team).where(Team.name == PLATFORM_TEAM))
            if team is None:
                team = Team(name=PLATFORM_TEAM, description="The platform team: runs Podium.")
                session.add(team)
                session.flush()
            live = session.scalar(select(Token).where(Token.team_id == team.id, Token.revoked_at.is_(None)))
            if live is not None:
                return None
            token_id, token, secret_hash = new_token()
            session.add(Token(id=token_id, team_id=team.id, secret_hash=secret_hash, description="admin"))
            return token

    def create_team(self, actor: Actor, name: str, description: str = "") -> Team:
        require_admin(actor, "create teams")
        check_name("team", name)
        with self.store.session() as session:
            if session.scalar(select(Team).where(Team.name == name)) is not None:
                raise Conflict(f"team {name!r} already exists")
            team = Team(name=name, description=description)
            session.add(team)
            audit.record(session, actor, "team.create", target=name, after={"name": name})
            return team

    def list_teams(self) -> list[Team]:
        with self.store.session() as session:
            return list(session.scalars(select(Team).order_by(Team.name)))

    def get_team(self, name: str) -> Team:
        with self.store.session() as session:
            return get_team(session, name)

    def _require_member(self, actor: Actor, team: Team, doing: str) -> None:
        if not (actor.is_admin or actor.team_id == team.id):
            raise Forbidden(f"team {actor.team!r} may not {doing} of team {team.name!r}")

    def create_token(self, actor: Actor, team_name: str, description: str = "") -> tuple[Token, str]:
        """A new token for a team (admin or a member); the token itself is returned once."""
        with self.store.session() as session:
            team = get_team(session, team_name)
            self._require_member(actor, team, "create tokens")
            token_id, token, secret_hash = new_token()
            row = Token(id=token_id, team_id=team.id, secret_hash=secret_hash, description=description)
            session.add(row)
            audit.record(session, actor, "token.create", target=f"{team_name}/{token_id}")
            session.flush()
            session.refresh(row)
            return row, token

    def list_tokens(self, actor: Actor, team_name: str) -> list[Token]:
        with self.store.session() as session:
            team = get_team(session, team_name)
            self._require_member(actor, team, "list tokens")
            stmt = select(Token).where(Token.team_id == team.id).order_by(Token.created_at)
            return list(session.scalars(stmt))

    def revoke_token(self, actor: Actor, team_name: str, token_id: str) -> Token:
        with self.store.session() as session:
            team = get_team(session, team_name)
            self._require_member(actor, team, "revoke tokens")
            token = session.get(Token, token_id)
            if token is None or token.team_id != team.id:
                raise NotFound(f"token {token_id!r} not found in team {team_name!r}")
            if token.revoked_at is None:
                token.revoked_at = utcnow()
                audit.record(session, actor, "token.revoke", target=f"{team_name}/{token_id}")
            return token

    # Services --------------------------------------------------------------------------

    def create_service(
        self, actor: Actor, name: str, owner: str, description: str = "", lifecycle: str = "experimental"
    ) -> Service:
        """A new service owned by one team, with its staging and production environments."""
        check_name("service", name)
        stage = check_lifecycle(lifecycle)
        with self.store.session() as session:
            team = get_team(session, owner)
            if not actor.is_admin and actor.team_id != team.id:
                raise Forbidden(f"team {actor.team!r} may only create services owned by itself")
            if session.scalar(select(Service).where(Service.name == name)) is not None:
                raise Conflict(f"service {name!r} already exists")
            service = Service(name=name, owner=team, description=description, lifecycle=stage.value)
            service.environments = [Environment(name=env) for env in ENVIRONMENTS]
            session.add(service)
            try:
                session.flush()
            except IntegrityError:
                raise Conflict(f"service {name!r} already exists") from None
            audit.record(session, actor, "service.create", service=name, after=service_snapshot(service))
            return service

    def list_services(self, owner: str | None = None, lifecycle: str | None = None) -> list[Service]:
        with self.store.session() as session:
            stmt = select(Service).order_by(Service.name)
            if owner is not None:
                stmt = stmt.where(Service.owner_id == get_team(session, owner).id)
            if lifecycle is not None:
                stmt = stmt.where(Service.lifecycle == check_lifecycle(lifecycle).value)
            return list(session.scalars(stmt))

    def get_service(self, name: str) -> Service:
        with self.store.session() as session:
            return get_service(session, name)

    def update_service(
        self, actor: Actor, name: str, *, description: str | None = None, lifecycle: str | None = None
    ) -> Service:
        with self.store.session() as session:
            service = get_service(session, name)
            authorize(session, actor, service)
            before = service_snapshot(service)
            if description is not None:
                service.description = description
            if lifecycle is not None:
                service.lifecycle = check_lifecycle(lifecycle).value
            service.updated_at = utcnow()
            audit.record(
                session, actor, "service.update", service=name, before=before, after=service_snapshot(service)
            )
            return service

    def delete_service(self, actor: Actor, name: str) -> None:
        with self.store.session() as session:
            service = get_service(session, name)
            authorize(session, actor, service)
            audit.record(session, actor, "service.delete", service=name, before=service_snapshot(service))
            session.delete(service)

    def transfer_service(self, actor: Actor, name: str, to_team: str) -> Service:
        """Hand a service to another team: the current owner or the platform team may do it."""
        with self.store.session() as session:
            service = get_service(session, name)
            authorize(session, actor, service)
            team = get_team(session, to_team)
            before = service_snapshot(service)
            service.owner = team
            service.updated_at = utcnow()
            audit.record(
                session, actor, "service.transfer", service=name, before=before, after=service_snapshot(service)
            )
            return service

    # Grants ----------------------------------------------------------------------------

    def add_grant(
        self, actor: Actor, service_name: str, team_name: str, rights: list[str], expires_at: datetime,
        reason: str = "",
    ) -> Grant:
        """Let another team deploy or configure a service until ``expires_at``."""
        if not rights:
            raise Invalid("a grant needs at least one right: deploy, config")
        try:
            parsed = sorted({Right(r).value for r in rights})
        except ValueError:
            raise Invalid(f"invalid rights {rights!r}: use deploy, config") from None
        if expires_at.tzinfo is None:
            raise Invalid("expires_at needs a timezone, e.g. 2026-12-01T00:00:00Z")
        if expires_at <= utcnow():
            raise Invalid("expires_at is in the past: a grant must end in the future")
        with self.store.session() as session:
            service = get_service(session, service_name)
            authorize(session, actor, service)
            team = get_team(session, team_name)
            if team.id == service.owner_id:
                raise Invalid(f"team {team_name!r} owns {service_name!r} already")
            grant = Grant(
                service=service, team=team, rights=parsed, expires_at=expires_at, reason=reason,
                created_by=actor.team,
            )
            session.add(grant)
            session.flush()
            audit.record(
                session, actor, "grant.add", service=service_name, target=team_name,
                after={"id": grant.id, "team": team_name, "rights": parsed, "expires_at": expires_at.isoformat()},
            )
            return grant

    def list_grants(self, service_name: str, include_expired: bool = False) -> list[Grant]:
        with self.store.session() as session:
            service = get_service(session, service_name)
            stmt = select(Grant).where(Grant.service_id == service.id).order_by(Grant.id)
            if not include_expired:
                stmt = stmt.where(Grant.revoked_at.is_(None), Grant.expires_at > utcnow())
            return list(session.scalars(stmt))

    def revoke_grant(self, actor: Actor, service_name: str, grant_id: int) -> Grant:
        with self.store.session() as session:
            service = get_service(session, service_name)
            authorize(session, actor, service)
            grant = session.get(Grant, grant_id)
            if grant is None or grant.service_id != service.id:
                raise NotFound(f"grant {grant_id} not found on service {service_name!r}")
            if grant.revoked_at is None:
                grant.revoked_at = utcnow()
                audit.record(
                    session, actor, "grant.revoke", service=service_name, target=grant.team.name,
                    before={"id": grant.id, "rights": grant.rights},
                )
            return grant

    # Backstage import ------------------------------------------------------------------

    def import_backstage(self, actor: Actor, document: str) -> list[dict[str, str]]:
        """Create or update services from a Backstage ``catalog-info.yaml`` (Components only).

        Owners named as ``group:default/team-a`` become team ``team-a``; missing teams are
        created. Platform team only, since it may create teams.
        """
        require_admin(actor, "import a catalog")
        try:
            entities = [doc for doc in yaml.safe_load_all(document) if doc]
        except yaml.YAMLError as exc:
            raise Invalid(f"catalog file does not parse as YAML: {exc}") from None
        wanted: list[tuple[str, str, str, str]] = []
        for index, entity in enumerate(entities):
            if not isinstance(entity, dict) or entity.get("kind") != "Component":
                continue
            metadata, spec = entity.get("metadata") or {}, entity.get("spec") or {}
            name, owner = metadata.get("name"), spec.get("owner")
            if not isinstance(name, str) or not isinstance(owner, str):
                raise Invalid(f"entity {index}: a Component needs metadata.name and spec.owner")
            owner = owner.split("/")[-1].split(":")[-1]
            lifecycle = str(spec.get("lifecycle", "experimental"))
            if lifecycle not in {v.value for v in Lifecycle}:
                lifecycle = Lifecycle.EXPERIMENTAL.value
            check_name("service", name)
            check_name("team", owner)
            wanted.append((name, owner, lifecycle, str(metadata.get("description", ""))))
        results: list[dict[str, str]] = []
        with self.store.session() as session:
            for name, owner, lifecycle, description in wanted:
                team = session.scalar(select(Team).where(Team.name == owner))
                if team is None:
                    team = Team(name=owner)
                    session.add(team)
                    session.flush()
                    audit.record(session, actor, "team.create", target=owner, after={"name": owner})
                service = session.scalar(select(Service).where(Service.name == name))
                if service is None:
                    service = Service(name=name, owner=team, lifecycle=lifecycle, description=description)
                    service.environments = [Environment(name=env) for env in ENVIRONMENTS]
                    session.add(service)
                    session.flush()
                    audit.record(session, actor, "service.create", service=name, after=service_snapshot(service))
                    results.append({"service": name, "owner": owner, "action": "created"})
                    continue
                before = service_snapshot(service)
                service.owner, service.lifecycle = team, lifecycle
                if description:
                    service.description = description
                after = service_snapshot(service)
                if after != before:
                    service.updated_at = utcnow()
                    audit.record(session, actor, "service.import", service=name, before=before, after=after)
                    results.append({"service": name, "owner": owner, "action": "updated"})
                else:
                    results.append({"service": name, "owner": owner, "action": "unchanged"})
        return results

    # Audit -----------------------------------------------------------------------------

    def audit_log(
        self, actor: Actor, *, service: str | None = None, team: str | None = None, limit: int = 200
    ) -> list[Any]:
        """Audit events; a non-admin team sees those on its services and its own actions."""
        with self.store.session() as session:
            events = audit.query(session, service=service, team=team, limit=limit)
            if actor.is_admin:
                return events
            owned = set(session.scalars(select(Service.name).where(Service.owner_id == actor.team_id)))
            return [e for e in events if e.team == actor.team or (e.service in owned)]
