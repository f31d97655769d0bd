"""Saved groups: a team's named lists of attribute values, for ``$inGroup`` / ``$notInGroup``.

A saved group is GrowthBook's "ID list" group: a key, the attribute its values are of, and
the values (strings and numbers; ``"2"`` and ``2`` differ, as in GrowthBook). The conditions
of a team's experiments and flags name it by key, ``{"id": {"$inGroup": "beta-testers"}}``,
and the definitions of the team's service environments carry, as ``savedGroups``, the groups
their conditions name, so SDKs evaluate membership locally. The team's members (and the
platform team) change its groups; every change is audited; a group some condition still
names cannot be deleted, and the refusal lists who names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Environment, Service, Team
from podium.catalog.rules import check_text
from podium.catalog.service import get_team, who
from podium.errors import Conflict, Forbidden, Invalid, NotFound
from podium.experiments.conditions import groups_named
from podium.experiments.models import Experiment, Flag, SavedGroup
from podium.experiments.rules import DESCRIPTION_MAX, check_key, check_label, is_key, shown
from podium.store.db import Store, utcnow

VALUES_MAX = 20_000  # every SDK of the team's environments downloads the groups its conditions name
VALUE_MAX = 200  # characters of one value (a user id is at most 200)
EDITABLE = frozenset({"attribute", "values", "description"})


@dataclass(frozen=True)
class SavedGroupInfo:
    """A saved group as the API, CLI and web show it."""

    key: str
    team: str
    attribute: str
    values: tuple[Any, ...]
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: SavedGroup, team: str) -> SavedGroupInfo:
        return cls(
            key=row.key, team=team, attribute=row.attribute, values=tuple(row.values), description=row.description,
            created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """The group as JSON-ready data."""
        data = dataclasses.asdict(self)
        data["values"] = list(self.values)
        data["created_at"], data["updated_at"] = self.created_at.isoformat(), self.updated_at.isoformat()
        return data


Groups = list[SavedGroupInfo]  # an alias: inside the service class, ``list`` names its verb
Names = list[str]


def check_values(values: Any) -> list[Any]:
    """A group's values: a list of distinct strings and finite numbers, at most ``VALUES_MAX``."""
    if not isinstance(values, list | tuple):
        raise Invalid("values must be a list of strings or numbers, e.g. [\"u1\", \"u2\"]")
    if len(values) > VALUES_MAX:
        raise Invalid(f"a saved group holds at most {VALUES_MAX} values, got {len(values)}")
    checked: dict[tuple[str, Any], Any] = {}
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Invalid(f"value {i} must be a string or a number, not {value!r}")
        if isinstance(value, float) and not (value == value and abs(value) != float("inf")):
            raise Invalid(f"value {i} must be a finite number")
        if isinstance(value, str):
            check_label(f"value {i}", value)
            if len(value) > VALUE_MAX:
                raise Invalid(f"value {i} is too long: at most {VALUE_MAX} characters")
        checked.setdefault((type(value).__name__ if isinstance(value, str) else "number", value), value)
    return list(checked.values())


def check_attribute(attribute: str) -> str:
    """The attribute a group's values are of: a name or a dotted path, as conditions use."""
    return check_label("attribute", attribute)


def team_groups(session: Session, team_id: int, keys: set[str] | None = None) -> dict[str, list[Any]]:
    """The values of a team's saved groups by key (only ``keys`` when given), as SDKs get them."""
    stmt = select(SavedGroup.key, SavedGroup.values).where(SavedGroup.team_id == team_id)
    if keys is not None:
        if not keys:
            return {}
        stmt = stmt.where(SavedGroup.key.in_(sorted(keys)))
    return {key: list(values) for key, values in session.execute(stmt.order_by(SavedGroup.key))}


def users_of(session: Session, team_id: int, key: str) -> list[str]:
    """Who names group ``key`` in a condition: ``experiment service/env/key`` and ``flag service/env/key``."""
    experiments = select(Service.name, Environment.name, Experiment.key, Experiment.conditions).join(
        Environment, Experiment.environment_id == Environment.id
    )
    flags = select(Service.name, Environment.name, Flag.key, Flag.rules).join(
        Environment, Flag.environment_id == Environment.id
    )
    found: list[str] = []
    for kind, stmt in (("experiment", experiments), ("flag", flags)):
        rows = session.execute(
            stmt.join(Service, Environment.service_id == Service.id)
            .where(Service.owner_id == team_id)
            .order_by(Service.name, Environment.name)
        )
        found += sorted(
            f"{kind} {service}/{env}/{name}" for service, env, name, where in rows if key in groups_named(where)
        )
    return found


def _get_row(session: Session, team: Team, key: str) -> SavedGroup:
    row = session.scalar(select(SavedGroup).where(SavedGroup.team_id == team.id, SavedGroup.key == key)) \
        if is_key(key) else None
    if row is None:
        raise NotFound(f"saved group {shown(key)} not found in team {team.name!r}")
    return row


def _require_member(actor: Actor, team: Team) -> None:
    if not actor.acts_for(team.id):
        raise Forbidden(f"{who(actor)} may not change the saved groups of team {team.name!r}")


def _snapshot(row: SavedGroup) -> dict[str, Any]:
    """What the audit log records of a group before and after a change."""
    return {"attribute": row.attribute, "values": list(row.values), "description": row.description}


class SavedGroupService:
    """The saved groups of the teams of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self, team: str) -> Groups:
        """A team's saved groups, by key."""
        with self.store.session() as session:
            row_team = get_team(session, team)
            rows = session.scalars(select(SavedGroup).where(SavedGroup.team_id == row_team.id).order_by(SavedGroup.key))
            return [SavedGroupInfo.of(row, row_team.name) for row in rows]

    def get(self, team: str, key: str) -> SavedGroupInfo:
        """One saved group of a team."""
        with self.store.session() as session:
            row_team = get_team(session, team)
            return SavedGroupInfo.of(_get_row(session, row_team, key), row_team.name)

    def users(self, team: str, key: str) -> Names:
        """The experiments and flags whose conditions name the group."""
        with self.store.session() as session:
            row_team = get_team(session, team)
            _get_row(session, row_team, key)
            return users_of(session, row_team.id, key)

    def create(
        self, actor: Actor, team: str, key: str, *, attribute: str = "id", values: Sequence[Any] = (),
        description: str = "",
    ) -> SavedGroupInfo:
        """Create a saved group of ``team``; conditions name it by ``key``."""
        with self.store.session() as session:
            row_team = get_team(session, team)
            _require_member(actor, row_team)
            row = SavedGroup(
                team_id=row_team.id, key=check_key("saved group", key), attribute=check_attribute(attribute),
                values=check_values(values), description=check_text("description", description, DESCRIPTION_MAX),
                created_by=actor.name[:40],
            )
            if session.scalar(select(SavedGroup.id).where(SavedGroup.team_id == row_team.id, SavedGroup.key == key)):
                raise Conflict(f"saved group {key!r} exists already in team {row_team.name!r}")
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise Conflict(f"saved group {key!r} exists already in team {row_team.name!r}") from None
            audit.record(session, actor, "saved_group.create", target=f"saved group {row_team.name}/{key}",
                         after=_snapshot(row))
            return SavedGroupInfo.of(row, row_team.name)

    def update(self, actor: Actor, team: str, key: str, changes: Mapping[str, Any]) -> SavedGroupInfo:
        """Edit a group (``attribute``, ``values``, ``description``); SDKs get the new values on their next poll."""
        with self.store.session() as session:
            row_team = get_team(session, team)
            _require_member(actor, row_team)
            unknown = sorted(set(changes) - EDITABLE)
            if unknown:
                raise Invalid(f"cannot edit {', '.join(unknown)}: editable fields are {', '.join(sorted(EDITABLE))}")
            row = _get_row(session, row_team, key)
            before = _snapshot(row)
            if "attribute" in changes:
                row.attribute = check_attribute(changes["attribute"] or "")
            if "values" in changes:
                row.values = check_values(changes["values"])
            if "description" in changes:
                row.description = check_text("description", changes["description"] or "", DESCRIPTION_MAX)
            row.updated_at = utcnow()
            audit.record(session, actor, "saved_group.update", target=f"saved group {row_team.name}/{key}",
                         before=before, after=_snapshot(row))
            return SavedGroupInfo.of(row, row_team.name)

    def delete(self, actor: Actor, team: str, key: str) -> None:
        """Delete a group no condition names; refused (409) with the list of those that do."""
        with self.store.session() as session:
            row_team = get_team(session, team)
            _require_member(actor, row_team)
            row = _get_row(session, row_team, key)
            named_by = users_of(session, row_team.id, key)
            if named_by:
                raise Conflict(f"saved group {key!r} is used by {', '.join(named_by)}: "
                               "take it out of their conditions first")
            audit.record(session, actor, "saved_group.delete", target=f"saved group {row_team.name}/{key}",
                         before=_snapshot(row))
            session.delete(row)
