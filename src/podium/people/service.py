"""People verbs: users, memberships, personal tokens and sessions.

Every change is authorised and recorded in the audit log in the same transaction, as the
catalog's are. Rights are never stored on a credential: ``catalog.auth`` computes them
from the memberships at each request.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import PERSONAL_PREFIX, TOKEN_ID_RE, Actor, new_token
from podium.catalog.models import Team
from podium.catalog.rules import check_name, check_text, is_name
from podium.catalog.service import check_expiry, get_team, require_admin, require_manager, who
from podium.errors import Conflict, Forbidden, Invalid, NotFound
from podium.health.oncall import check_apprise_url, refresh_user_contacts
from podium.people import sso
from podium.people.models import CredentialKind, Membership, PersonalToken, Role, User
from podium.people.sso import SignInPolicy
from podium.store.db import Store, utcnow

EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}")
CONTACTS_MAX = 10
CONTACT_MAX = 1000
TOKEN_NAME_MAX = 60
TOKEN_LIFETIME_MAX = timedelta(days=366)


def get_user(session: Session, name: str) -> User:
    """The user called ``name``, or NotFound."""
    user = session.scalar(select(User).where(User.name == name)) if is_name(name) else None
    if user is None:
        shown = name if len(name) <= 60 else f"{name[:60]}…"
        raise NotFound(f"user {shown!r} not found")
    return user


def check_email(email: str) -> str:
    if EMAIL_RE.fullmatch(email) is None:
        raise Invalid(f"invalid e-mail {email[:80]!r}: use name@domain")
    return email


def check_contacts(contacts: list[str]) -> list[str]:
    """Apprise URLs (``scheme://...``), at most ``CONTACTS_MAX``."""
    if len(contacts) > CONTACTS_MAX:
        raise Invalid(f"too many contact methods: {len(contacts)}, at most {CONTACTS_MAX}")
    for url in contacts:
        check_text("contact", url, CONTACT_MAX)
        check_apprise_url("this contact", url)  # never echoes the URL: it may hold a secret
    return [url.strip() for url in contacts]


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise Invalid(f"invalid role {role[:40]!r}: use member or maintainer") from None


def user_snapshot(user: User) -> dict[str, Any]:
    return {"name": user.name, "email": user.email, "admin": user.admin, "contacts": list(user.contacts)}


def require_self_or_admin(actor: Actor, user: User, doing: str) -> None:
    if not (actor.is_admin or actor.user_id == user.id):
        raise Forbidden(f"{who(actor)} may not {doing} of user {user.name!r}")


class PeopleService:
    """The people verbs over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # Users -----------------------------------------------------------------------------

    def create_user(
        self, actor: Actor, name: str, email: str, *, admin: bool = False, contacts: list[str] | None = None
    ) -> User:
        """A new person (admins only); they sign in through the provider or with a token made for them."""
        require_admin(actor, "create users")
        check_name("user", name)
        check_email(email)
        methods = check_contacts(contacts or [])
        with self.store.session() as session:
            if session.scalar(select(User).where(User.name == name)) is not None:
                raise Conflict(f"user {name!r} already exists")
            user = User(name=name, email=email, admin=admin, contacts=methods, memberships=[])
            session.add(user)
            try:
                session.flush()
            except IntegrityError:  # created by a concurrent request since the check above
                raise Conflict(f"user {name!r} already exists") from None
            snapshot = {**user_snapshot(user), "contacts": len(methods)}  # URLs may hold secrets
            audit.record(session, actor, "user.create", target=f"user/{name}", after=snapshot)
            return user

    def list_users(self) -> list[User]:
        with self.store.session() as session:
            return list(session.scalars(select(User).order_by(User.name)))

    def get_user(self, name: str) -> User:
        with self.store.session() as session:
            return get_user(session, name)

    def update_user(
        self, actor: Actor, name: str, *, email: str | None = None, contacts: list[str] | None = None,
        admin: bool | None = None,
    ) -> User:
        """Change a person's e-mail or contact methods (themselves or an admin), or admin flag (admins)."""
        with self.store.session() as session:
            user = get_user(session, name)
            require_self_or_admin(actor, user, "change the details")
            if admin is not None and admin != user.admin:
                require_admin(actor, "make or unmake admins")
                user.admin = admin
            before = user_snapshot(user)
            if email is not None:
                user.email = check_email(email)
            if contacts is not None:
                user.contacts = check_contacts(contacts)
            after = user_snapshot(user)
            if after != before:
                # Contact methods are paging targets, which may hold secrets: the log says how many.
                shown = [{**snap, "contacts": len(snap["contacts"])} for snap in (before, after)]
                audit.record(session, actor, "user.update", target=f"user/{name}", before=shown[0], after=shown[1])
            if contacts is not None:
                refresh_user_contacts(session, user)
            return user

    # Memberships -----------------------------------------------------------------------

    def list_members(self, team_name: str) -> list[Membership]:
        with self.store.session() as session:
            team = get_team(session, team_name)
            stmt = select(Membership).join(User).where(Membership.team_id == team.id).order_by(User.name)
            return list(session.scalars(stmt))

    def add_member(self, actor: Actor, team_name: str, user_name: str, role: str = Role.MEMBER) -> Membership:
        """Make a person a member (or change their role); admins and the team's maintainers may."""
        wanted = check_role(role)
        with self.store.session() as session:
            team = get_team(session, team_name)
            require_manager(actor, team, "manage the members")
            user = get_user(session, user_name)
            return self._set_membership(session, actor, team, user, wanted, "manual")

    def _set_membership(
        self, session: Session, actor: Actor, team: Team, user: User, role: Role, source: str
    ) -> Membership:
        target = f"team/{team.name}/{user.name}"
        membership = session.scalar(
            select(Membership).where(Membership.team_id == team.id, Membership.user_id == user.id)
        )
        if membership is None:
            membership = Membership(user=user, team=team, role=role.value, source=source)
            session.add(membership)
            session.flush()
            audit.record(session, actor, "member.add", target=target, after={"user": user.name, "role": role.value})
        elif membership.role != role.value:
            before = {"user": user.name, "role": membership.role}
            membership.role = role.value
            audit.record(session, actor, "member.update", target=target, before=before,
                         after={"user": user.name, "role": role.value})
        return membership

    def remove_member(self, actor: Actor, team_name: str, user_name: str) -> None:
        """End a membership: the person's tokens and sessions lose the team's rights at once."""
        with self.store.session() as session:
            team = get_team(session, team_name)
            require_manager(actor, team, "manage the members")
            user = get_user(session, user_name)
            membership = session.scalar(
                select(Membership).where(Membership.team_id == team.id, Membership.user_id == user.id)
            )
            if membership is None:
                raise NotFound(f"user {user_name!r} is not a member of team {team_name!r}")
            audit.record(session, actor, "member.remove", target=f"team/{team_name}/{user_name}",
                         before={"user": user_name, "role": membership.role})
            session.delete(membership)

    # Personal tokens -------------------------------------------------------------------

    def create_token(
        self, actor: Actor, user_name: str, *, name: str = "", expires_at: datetime,
        teams: list[str] | None = None, read_only: bool = False,
    ) -> tuple[PersonalToken, str]:
        """A personal token (the person themselves, or an admin); the token is returned once.

        Its scope narrows the person's rights: only ``teams`` (all of them when None), and
        reads only with ``read_only``. A scoped credential cannot make a wider one.
        """
        check_text("name", name, TOKEN_NAME_MAX)
        ends = check_expiry(expires_at)
        if ends - utcnow() > TOKEN_LIFETIME_MAX:
            raise Invalid("a personal token lasts at most 366 days")
        with self.store.session() as session:
            user = get_user(session, user_name)
            require_self_or_admin(actor, user, "create tokens")
            member_of = {m.team.name: m.team_id for m in user.memberships}
            if teams is not None:
                unknown = sorted(set(teams) - set(member_of))
                if unknown:
                    raise Invalid(f"user {user_name!r} is not a member of {', '.join(map(repr, unknown))}")
            if actor.user_id == user.id and not actor.is_admin:
                held = {team for team, team_id in member_of.items() if team_id in actor.teams}
                if (teams is None and held != set(member_of)) or (teams is not None and not set(teams) <= held):
                    raise Forbidden("this token's scope is narrower than the one asked for: use a wider one")
                if actor.read_only and not read_only:
                    raise Forbidden("a read-only token cannot make a token that changes things")
            row, token = self._issue(
                session, user, CredentialKind.TOKEN, name or "token", ends, created_by=actor.name,
                teams=sorted(set(teams)) if teams is not None else None, read_only=read_only,
            )
            audit.record(
                session, actor, "user.token.create", target=f"user/{user_name}/{row.id}",
                after={"id": row.id, "name": row.name, "expires_at": ends.isoformat(), "teams": row.teams,
                       "read_only": read_only},
            )
            return row, token

    def _issue(
        self, session: Session, user: User, kind: CredentialKind, name: str, expires_at: datetime, *,
        created_by: str, teams: list[str] | None = None, read_only: bool = False,
    ) -> tuple[PersonalToken, str]:
        token_id, token, secret_hash = new_token(PERSONAL_PREFIX)
        row = PersonalToken(
            id=token_id, user=user, kind=kind.value, name=name, secret_hash=secret_hash, teams=teams,
            read_only=read_only, created_by=created_by, expires_at=expires_at,
        )
        session.add(row)
        session.flush()
        return row, token

    def list_tokens(self, actor: Actor, user_name: str) -> list[PersonalToken]:
        """A person's tokens, sessions and CLI logins, ended ones too (themselves or an admin)."""
        with self.store.session() as session:
            user = get_user(session, user_name)
            require_self_or_admin(actor, user, "list the tokens")
            stmt = select(PersonalToken).where(PersonalToken.user_id == user.id)
            return list(session.scalars(stmt.order_by(PersonalToken.created_at, PersonalToken.id)))

    def revoke_token(self, actor: Actor, user_name: str, token_id: str) -> PersonalToken:
        """Revoke a personal token or session (themselves or an admin); twice is a no-op."""
        with self.store.session() as session:
            user = get_user(session, user_name)
            require_self_or_admin(actor, user, "revoke the tokens")
            row = session.get(PersonalToken, token_id) if TOKEN_ID_RE.fullmatch(token_id) else None
            if row is None or row.user_id != user.id:
                raise NotFound(f"token {token_id[:60]!r} not found for user {user_name!r}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                audit.record(session, actor, "user.token.revoke", target=f"user/{user_name}/{token_id}",
                             before={"id": token_id, "revoked_at": None},
                             after={"id": token_id, "revoked_at": row.revoked_at.isoformat()})
            return row

    def sign_in(self, issuer: str, claims: dict[str, Any], policy: SignInPolicy) -> str:
        """The name of the user a verified provider account signs in as (made on first sign-in)."""
        with self.store.session() as session:
            return sso.sign_in(session, issuer, claims, policy).name

    def end_session(self, session_id: str) -> None:
        """Sign a web session out for good: its cookie, even if kept, gets 401 from now on."""
        with self.store.session() as session:
            row = session.get(PersonalToken, session_id)
            if row is not None and row.revoked_at is None:
                row.revoked_at = utcnow()

    def start_session(self, user_name: str, kind: CredentialKind, name: str, lifetime: timedelta) -> str:
        """A web session or CLI login for a person who has just signed in; the secret, once."""
        with self.store.session() as session:
            user = get_user(session, user_name)
            _, token = self._issue(session, user, kind, name, utcnow() + lifetime, created_by=user.name)
            return token
