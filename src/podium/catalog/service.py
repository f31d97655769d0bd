"""Catalog verbs: teams, tokens, services, ownership, grants.

Every mutation is authorised by ownership and recorded in the audit log in the same
transaction. Verbs take the acting ``Actor`` first and return detached rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import TOKEN_ID_RE, Actor, authenticate, new_token
from podium.catalog.backstage import parse_components
from podium.catalog.holdings import TeamHoldings, team_holdings
from podium.catalog.models import (
    ENVIRONMENTS,
    PLATFORM_TEAM,
    AuditEvent,
    Environment,
    Grant,
    Right,
    Service,
    Team,
    Token,
)
from podium.catalog.rules import (
    DESCRIPTION_MAX,
    ID_MAX,
    REASON_MAX,
    TEAM_DESCRIPTION_MAX,
    TOKEN_DESCRIPTION_MAX,
    TOKEN_NAME_MAX,
    check_lifecycle,
    check_name,
    check_text,
    is_name,
)
from podium.errors import Conflict, Forbidden, Invalid, NotFound
from podium.store.db import Store, utcnow

__all__ = ["CatalogService", "authorize", "check_lifecycle", "check_name", "get_service", "get_team"]


def service_snapshot(service: Service) -> dict[str, Any]:
    """What the audit log records of a service before and after a change."""
    return {
        "name": service.name,
        "owner": service.owner.name,
        "description": service.description,
        "lifecycle": service.lifecycle,
    }


def get_team(session: Session, name: str) -> Team:
    """The team called ``name``, or NotFound."""
    # A string that is not a name cannot be stored as one: answer without asking the store,
    # which may refuse such text outright (PostgreSQL and NUL).
    team = session.scalar(select(Team).where(Team.name == name)) if is_name(name) else None
    if team is None:
        raise NotFound(f"team {_shown(name)} not found")
    return team


def get_service(session: Session, name: str) -> Service:
    """The service called ``name``, or NotFound."""
    service = session.scalar(select(Service).where(Service.name == name)) if is_name(name) else None
    if service is None:
        raise NotFound(f"service {_shown(name)} not found")
    return service


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short when long."""
    return repr(text if len(text) <= 60 else f"{text[:60]}…")


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
    if actor.acts_for(service.owner_id):
        return
    if right is not None:
        for team_id in {actor.team_id, *actor.teams}:
            for grant in active_grants(session, service, team_id):
                if right.value in grant.rights:
                    return
    what = f"{right.value} " if right is not None else ""
    raise Forbidden(
        f"{who(actor)} may not change service {service.name!r} owned by "
        f"{service.owner.name!r}" + (f" (no live {what}grant)" if right else "")
    )


def who(actor: Actor) -> str:
    """The actor as a message names it: ``user 'ada'`` or ``team 'checkout'``."""
    return f"user {actor.user!r}" if actor.user is not None else f"team {actor.team!r}"


def require_manager(actor: Actor, team: Team, doing: str) -> None:
    """Allow an admin, the team's own token, or a maintainer of the team."""
    if not actor.manages(team.id):
        role = " (maintainers only)" if actor.user is not None and team.id in actor.teams else ""
        raise Forbidden(f"{who(actor)} may not {doing} of team {team.name!r}{role}")


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
            session.add(Token(
                id=token_id, team_id=team.id, secret_hash=secret_hash, description="admin", name="admin",
                created_by=PLATFORM_TEAM,
            ))
            return token

    def authenticate(self, token: str | None) -> Actor:
        """The team a token acts as; Unauthorized for none, an unknown one or a revoked one."""
        with self.store.session() as session:
            return authenticate(session, token)

    def create_team(self, actor: Actor, name: str, description: str = "") -> Team:
        """A new team; platform team only."""
        require_admin(actor, "create teams")
        check_name("team", name)
        check_text("description", description, TEAM_DESCRIPTION_MAX)
        with self.store.session() as session:
            if session.scalar(select(Team).where(Team.name == name)) is not None:
                raise Conflict(f"team {name!r} already exists")
            team = Team(name=name, description=description)
            session.add(team)
            try:
                session.flush()
            except IntegrityError:  # created by a concurrent request since the check above
                raise Conflict(f"team {name!r} already exists") from None
            audit.record(
                session, actor, "team.create", target=name, after={"name": name, "description": description}
            )
            return team

    def list_teams(self) -> list[Team]:
        with self.store.session() as session:
            return list(session.scalars(select(Team).order_by(Team.name)))

    def get_team(self, name: str) -> Team:
        with self.store.session() as session:
            return get_team(session, name)

    def team_holdings(self, name: str) -> TeamHoldings:
        """The team ``name`` (NotFound if unknown), its live token count, and its live grants elsewhere."""
        with self.store.session() as session:
            return team_holdings(session, get_team(session, name))

    def rename_team(self, actor: Actor, name: str, new_name: str) -> Team:
        """Give a team another name (platform team only): its tokens, services, grants and
        rotations hold it by id, so they keep working; the audit log keeps the old name
        on what was done before."""
        require_admin(actor, "rename teams")
        check_name("team", new_name)
        with self.store.session() as session:
            team = get_team(session, name)
            if team.name == PLATFORM_TEAM:
                raise Invalid(f"the {PLATFORM_TEAM} team cannot be renamed")
            if new_name == team.name:
                return team
            if session.scalar(select(Team).where(Team.name == new_name)) is not None:
                raise Conflict(f"team {new_name!r} already exists")
            team.name = new_name
            try:
                session.flush()
            except IntegrityError:  # taken by a concurrent request since the check above
                raise Conflict(f"team {new_name!r} already exists") from None
            audit.record(session, actor, "team.rename", target=new_name, before={"name": name},
                         after={"name": new_name})
            return team

    def delete_team(self, actor: Actor, name: str) -> None:
        """Delete a team with its tokens, grants and on-call rotation (platform team only);
        refused while it owns services, which the error names."""
        require_admin(actor, "delete teams")
        with self.store.session() as session:
            team = get_team(session, name)
            if team.name == PLATFORM_TEAM:
                raise Invalid(f"the {PLATFORM_TEAM} team cannot be deleted")
            owned = list(session.scalars(
                select(Service.name).where(Service.owner_id == team.id).order_by(Service.name)
            ))
            if owned:
                raise Conflict(f"team {name!r} still owns {', '.join(owned)}: transfer or delete them first")
            audit.record(session, actor, "team.delete", target=name,
                         before={"name": team.name, "description": team.description})
            session.delete(team)

    def _require_member(self, actor: Actor, team: Team, doing: str) -> None:
        if not actor.acts_for(team.id):
            raise Forbidden(f"{who(actor)} may not {doing} of team {team.name!r}")

    def create_token(
        self, actor: Actor, team_name: str, description: str = "", name: str = ""
    ) -> tuple[Token, str]:
        """A new token for a team, for a machine (admin, the team, or a maintainer); returned once."""
        with self.store.session() as session:
            team = get_team(session, team_name)
            require_manager(actor, team, "create tokens")
            check_text("description", description, TOKEN_DESCRIPTION_MAX)
            check_text("name", name, TOKEN_NAME_MAX)
            token_id, token, secret_hash = new_token()
            row = Token(
                id=token_id, team_id=team.id, secret_hash=secret_hash, description=description,
                name=name or description[:TOKEN_NAME_MAX] or f"token-{token_id}", created_by=actor.name,
            )
            session.add(row)
            session.flush()
            session.refresh(row)
            audit.record(
                session, actor, "token.create", target=f"{team_name}/{token_id}",
                after={"id": token_id, "team": team_name, "name": row.name, "description": description},
            )
            return row, token

    def list_tokens(self, actor: Actor, team_name: str) -> list[Token]:
        """A team's tokens, revoked ones included (admin or a member)."""
        with self.store.session() as session:
            team = get_team(session, team_name)
            self._require_member(actor, team, "list tokens")
            stmt = select(Token).where(Token.team_id == team.id).order_by(Token.created_at, Token.id)
            return list(session.scalars(stmt))

    def revoke_token(self, actor: Actor, team_name: str, token_id: str) -> Token:
        """Revoke a token (admin, the team, or a maintainer): from then on it gets 401. Twice is a no-op."""
        with self.store.session() as session:
            team = get_team(session, team_name)
            require_manager(actor, team, "revoke tokens")
            token = session.get(Token, token_id) if TOKEN_ID_RE.fullmatch(token_id) else None
            if token is None or token.team_id != team.id:
                raise NotFound(f"token {_shown(token_id)} not found in team {team_name!r}")
            if token.revoked_at is None:
                token.revoked_at = utcnow()
                audit.record(
                    session, actor, "token.revoke", target=f"{team_name}/{token_id}",
                    before={"id": token_id, "revoked_at": None},
                    after={"id": token_id, "revoked_at": token.revoked_at.isoformat()},
                )
            return token

    # Services --------------------------------------------------------------------------

    def create_service(
        self, actor: Actor, name: str, owner: str, description: str = "", lifecycle: str = "experimental"
    ) -> Service:
        """A new service owned by one team, with its staging and production environments.

        A team may create services it owns itself; the platform team, for any team.
        """
        check_name("service", name)
        check_text("description", description, DESCRIPTION_MAX)
        stage = check_lifecycle(lifecycle)
        with self.store.session() as session:
            team = get_team(session, owner)
            if not actor.acts_for(team.id):
                mine = "themselves: one of their teams" if actor.user is not None else "itself"
                raise Forbidden(f"{who(actor)} may only create services owned by {mine}")
            if session.scalar(select(Service).where(Service.name == name)) is not None:
                raise Conflict(f"service {name!r} already exists")
            service = Service(name=name, owner=team, description=description, lifecycle=stage.value)
            service.environments = [Environment(name=env) for env in ENVIRONMENTS]
            session.add(service)
            try:
                session.flush()
            except IntegrityError:  # created by a concurrent request since the check above
                raise Conflict(f"service {name!r} already exists") from None
            audit.record(session, actor, "service.create", service=name, after=service_snapshot(service))
            return service

    def list_services(self, owner: str | None = None, lifecycle: str | None = None) -> list[Service]:
        """Services by name, optionally only those of one team or at one lifecycle stage."""
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

    def allows(self, actor: Actor, service: str, right: Right) -> bool:
        """Whether ``actor`` holds ``right`` on ``service`` (the rule of ``authorize``): pages
        offer a form only then, and its verb checks again."""
        with self.store.session() as session:
            try:
                authorize(session, actor, get_service(session, service), right)
            except Forbidden:
                return False
            return True

    def update_service(
        self, actor: Actor, name: str, *, description: str | None = None, lifecycle: str | None = None
    ) -> Service:
        """Change a service's description or lifecycle (owner or platform team)."""
        with self.store.session() as session:
            service = get_service(session, name)
            authorize(session, actor, service)
            before = service_snapshot(service)
            if description is not None:
                service.description = check_text("description", description, DESCRIPTION_MAX)
            if lifecycle is not None:
                service.lifecycle = check_lifecycle(lifecycle).value
            after = service_snapshot(service)
            if after != before:  # a change that changes nothing is not recorded
                service.updated_at = utcnow()
                audit.record(session, actor, "service.update", service=name, before=before, after=after)
            return service

    def delete_service(self, actor: Actor, name: str) -> None:
        """Delete a service with its environments and grants (owner or platform team)."""
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
            if team.id == service.owner_id:
                return service
            before = service_snapshot(service)
            service.owner = team
            service.updated_at = utcnow()
            after = service_snapshot(service)
            audit.record(session, actor, "service.transfer", service=name, before=before, after=after)
            return service

    # Grants ----------------------------------------------------------------------------

    def add_grant(
        self, actor: Actor, service_name: str, team_name: str, rights: list[str], expires_at: datetime,
        reason: str = "",
    ) -> Grant:
        """Let another team deploy or configure a service until ``expires_at`` (owner or platform team)."""
        with self.store.session() as session:
            service = get_service(session, service_name)
            authorize(session, actor, service)
            require_manager(actor, service.owner, "manage the grants")
            parsed = check_rights(rights)
            ends = check_expiry(expires_at)
            check_text("reason", reason, REASON_MAX)
            team = get_team(session, team_name)
            if team.id == service.owner_id:
                raise Invalid(f"team {team_name!r} owns {service_name!r} already")
            grant = Grant(
                service=service, team=team, rights=parsed, expires_at=ends, reason=reason,
                created_by=actor.name,
            )
            session.add(grant)
            session.flush()
            audit.record(
                session, actor, "grant.add", service=service_name, target=team_name,
                after={"id": grant.id, "team": team_name, "rights": parsed, "expires_at": ends.isoformat()},
            )
            return grant

    def list_grants(self, service_name: str, include_expired: bool = False) -> list[Grant]:
        """A service's live grants; with ``include_expired``, the revoked and ended ones too."""
        with self.store.session() as session:
            service = get_service(session, service_name)
            stmt = select(Grant).where(Grant.service_id == service.id).order_by(Grant.id)
            if not include_expired:
                stmt = stmt.where(Grant.revoked_at.is_(None), Grant.expires_at > utcnow())
            return list(session.scalars(stmt))

    def revoke_grant(self, actor: Actor, service_name: str, grant_id: int) -> Grant:
        """End a grant now (owner or platform team). Revoking twice is a no-op."""
        with self.store.session() as session:
            service = get_service(session, service_name)
            authorize(session, actor, service)
            require_manager(actor, service.owner, "manage the grants")
            grant = session.get(Grant, grant_id) if 0 < grant_id <= ID_MAX else None
            if grant is None or grant.service_id != service.id:
                raise NotFound(f"grant {grant_id} not found on service {service_name!r}")
            if grant.revoked_at is None:
                grant.revoked_at = utcnow()
                audit.record(
                    session, actor, "grant.revoke", service=service_name, target=grant.team.name,
                    before={"id": grant.id, "team": grant.team.name, "rights": grant.rights},
                    after={"id": grant.id, "revoked_at": grant.revoked_at.isoformat()},
                )
            return grant

    # Backstage import ------------------------------------------------------------------

    def import_backstage(self, actor: Actor, document: str) -> list[dict[str, str]]:
        """Create or update services from a Backstage ``catalog-info.yaml`` (Components only).

        Owners named as ``group:default/team-a`` become team ``team-a``; missing teams are
        created. Platform team only, since it may create teams. Returns, per Component,
        whether its service was created, updated or left unchanged.
        """
        require_admin(actor, "import a catalog")
        components = parse_components(document)
        results: list[dict[str, str]] = []
        with self.store.session() as session:
            for component in components:
                name, owner = component.name, component.owner
                team = session.scalar(select(Team).where(Team.name == owner))
                if team is None:
                    team = Team(name=owner)
                    session.add(team)
                    session.flush()
                    audit.record(session, actor, "team.create", target=owner, after={"name": owner})
                service = session.scalar(select(Service).where(Service.name == name))
                if service is None:
                    service = Service(
                        name=name, owner=team, lifecycle=component.lifecycle.value,
                        description=component.description,
                    )
                    service.environments = [Environment(name=env) for env in ENVIRONMENTS]
                    session.add(service)
                    session.flush()
                    after = service_snapshot(service)
                    audit.record(session, actor, "service.create", service=name, after=after)
                    results.append({"service": name, "owner": owner, "action": "created"})
                    continue
                before = service_snapshot(service)
                service.owner, service.lifecycle = team, component.lifecycle.value
                if component.description:
                    service.description = component.description
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
    ) -> list[AuditEvent]:
        """Audit events, newest first; a non-admin team sees those on its services and its own actions."""
        with self.store.session() as session:
            visible_to = None if actor.is_admin else actor
            return audit.query(session, service=service, team=team, visible_to=visible_to, limit=limit)


def check_rights(rights: list[str]) -> list[str]:
    """The distinct rights of a grant, sorted; at least one."""
    allowed = ", ".join(r.value for r in Right)
    if not rights:
        raise Invalid(f"a grant needs at least one right: {allowed}")
    unknown = [r for r in rights if r not in {v.value for v in Right}]
    if unknown:
        raise Invalid(f"invalid rights {unknown!r}: use {allowed}")
    return sorted(set(rights))


def check_expiry(expires_at: datetime) -> datetime:
    """A grant's end: timezone-aware and in the future."""
    if expires_at.tzinfo is None:
        raise Invalid("expires_at needs a timezone, e.g. 2026-12-01T00:00:00Z")
    try:
        ends = expires_at.astimezone(UTC)
    except OverflowError:  # a moment near datetime.max that UTC cannot express
        raise Invalid("expires_at is out of range") from None
    if ends <= utcnow():
        raise Invalid("expires_at is in the past: a grant must end in the future")
    return ends
