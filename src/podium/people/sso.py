"""What a sign-in through the provider does to Podium's people.

The first sign-in of an account makes its user (or links the user an admin made with the
same e-mail); with a groups claim, each sign-in syncs the memberships that groups make
(source ``oidc``), leaving the ones made by hand alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Team
from podium.catalog.rules import is_name
from podium.config import Settings
from podium.errors import Invalid, Unauthorized
from podium.people.models import Membership, Role, User

SOURCE = "oidc"


@dataclass(frozen=True)
class SignInPolicy:
    """How claims become a user and memberships (from the settings)."""

    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    group_map: dict[str, list[tuple[str, Role]]] = field(default_factory=dict)
    groups_as_teams: bool = False

    @classmethod
    def of(cls, settings: Settings) -> SignInPolicy:
        return cls(
            username_claim=settings.oidc_username_claim, groups_claim=settings.oidc_groups_claim,
            group_map=parse_group_map(settings.oidc_group_map), groups_as_teams=settings.oidc_groups_as_teams,
        )


def parse_group_map(text: str) -> dict[str, list[tuple[str, Role]]]:
    """``GROUP=TEAM[:ROLE],...`` as {group: [(team, role), ...]}; Invalid names the bad entry."""
    mapping: dict[str, list[tuple[str, Role]]] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        group, _, target = entry.partition("=")
        team, _, role = target.strip().partition(":")
        try:
            parsed = Role(role.strip() or Role.MEMBER)
        except ValueError:
            parsed = None
        if not group.strip() or not is_name(team.strip()) or parsed is None:
            raise Invalid(f"invalid PODIUM_OIDC_GROUP_MAP entry {entry!r}: use GROUP=TEAM or GROUP=TEAM:maintainer")
        mapping.setdefault(group.strip(), []).append((team.strip(), parsed))
    return mapping


def wanted_memberships(groups: list[str], policy: SignInPolicy, teams: set[str]) -> dict[str, Role]:
    """The teams (with the strongest role) that ``groups`` make a membership of."""
    wanted: dict[str, Role] = {}
    for group in groups:
        targets = list(policy.group_map.get(group, []))
        if policy.groups_as_teams and group in teams:
            targets.append((group, Role.MEMBER))
        for team, role in targets:
            if team in teams and wanted.get(team) != Role.MAINTAINER:
                wanted[team] = role
    return wanted


def username_from(claims: dict[str, Any], policy: SignInPolicy) -> str:
    """A DNS label made from the username claim, else the e-mail's local part, else the name."""
    email = str(claims.get("email") or "")
    for raw in (claims.get(policy.username_claim), email.partition("@")[0], claims.get("name")):
        if not raw:
            continue
        label = re.sub(r"[^a-z0-9-]+", "-", str(raw).lower()).strip("-")
        label = re.sub(r"^[^a-z]+", "", label)[:40].rstrip("-")
        if is_name(label):
            return label
    raise Unauthorized("the provider's answer names no usable user: no username, e-mail or name claim")


def sign_in(session: Session, issuer: str, claims: dict[str, Any], policy: SignInPolicy) -> User:
    """The user for the provider's account: found, linked or made; memberships synced."""
    subject = f"{issuer} {claims['sub']}"
    email = str(claims.get("email") or "")
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None and email:
        user = session.scalar(select(User).where(User.email == email, User.oidc_subject.is_(None)))
        if user is not None:
            user.oidc_subject = subject
    if user is None:
        base = username_from(claims, policy)
        name, n = base, 1
        while session.scalar(select(User).where(User.name == name)) is not None:
            n += 1
            name = f"{base[:36]}-{n}"
        user = User(name=name, email=email or f"{name}@unknown", oidc_subject=subject, contacts=[], memberships=[])
        session.add(user)
        session.flush()
        audit.record(session, as_person(user), "user.create", target=f"user/{name}",
                     after={"name": name, "email": user.email, "via": "single sign-on"})
    elif email and user.email != email:
        user.email = email
    if policy.groups_claim and (policy.group_map or policy.groups_as_teams):
        # A provider may leave the claim out when the person is in no group: that is no group.
        groups = claims.get(policy.groups_claim) or []
        sync_memberships(session, user, [groups] if isinstance(groups, str) else list(groups), policy)
    return user


def sync_memberships(session: Session, user: User, groups: list[str], policy: SignInPolicy) -> None:
    teams = {team.name: team for team in session.scalars(select(Team))}
    wanted = wanted_memberships([str(g) for g in groups], policy, set(teams))
    actor = as_person(user)
    current = {m.team.name: m for m in user.memberships}
    for team_name, role in wanted.items():
        membership = current.get(team_name)
        target = f"team/{team_name}/{user.name}"
        if membership is None:
            session.add(Membership(user=user, team=teams[team_name], role=role.value, source=SOURCE))
            audit.record(session, actor, "member.add", target=target,
                         after={"user": user.name, "role": role.value, "via": "group claim"})
        elif membership.source == SOURCE and membership.role != role.value:
            audit.record(session, actor, "member.update", target=target, before={"role": membership.role},
                         after={"role": role.value, "via": "group claim"})
            membership.role = role.value
    for team_name, membership in current.items():
        if membership.source == SOURCE and team_name not in wanted:
            audit.record(session, actor, "member.remove", target=f"team/{team_name}/{user.name}",
                         before={"user": user.name, "role": membership.role, "via": "group claim"})
            session.delete(membership)
    session.flush()


def as_person(user: User) -> Actor:
    """The person signing in, as the audit log names them (no team's rights involved)."""
    return Actor(team="", team_id=0, token_id=None, user=user.name, user_id=user.id)
