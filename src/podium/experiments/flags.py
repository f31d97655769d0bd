"""Feature flag verbs: create, show, list, edit, delete.

A flag belongs to one service environment and to the service's owning team; changes
follow the catalog's ownership rules and are audited, like experiments'. How a flag
evaluates for a user is ``podium.experiments.evaluate``'s business; here it is stored.
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
from podium.catalog.models import Right
from podium.catalog.rules import check_text
from podium.catalog.service import authorize, get_environment, get_service
from podium.errors import Conflict, Invalid
from podium.experiments.models import Flag
from podium.experiments.rules import (
    DESCRIPTION_MAX,
    check_json,
    check_key,
    check_rules,
    check_share,
    keyed_row,
)
from podium.store.db import Store, utcnow

EDITABLE = frozenset({"description", "enabled", "value", "default_value", "rollout", "rules"})


@dataclass(frozen=True)
class FlagInfo:
    """A flag as the API, CLI and web show it."""

    key: str
    service: str
    env: str
    description: str
    enabled: bool
    value: Any
    default_value: Any
    rollout: float
    rules: tuple[Mapping[str, Any], ...]
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Flag, service: str, env: str) -> FlagInfo:
        return cls(
            key=row.key, service=service, env=env, description=row.description, enabled=row.enabled,
            value=row.value, default_value=row.default_value, rollout=row.rollout, rules=tuple(row.rules),
            created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """The flag as JSON-ready data."""
        data = dataclasses.asdict(self)
        data["rules"] = list(self.rules)
        data["created_at"], data["updated_at"] = self.created_at.isoformat(), self.updated_at.isoformat()
        return data


Flags = list[FlagInfo]  # an alias: inside the service class, ``list`` names its verb


def flag_definition(row: Flag) -> dict[str, Any]:
    """What SDKs get of a flag."""
    return {
        "key": row.key, "enabled": row.enabled, "value": row.value, "default_value": row.default_value,
        "rollout": row.rollout, "rules": row.rules,
    }


def get_flag_row(session: Session, service: str, env: str, key: str) -> Flag:
    """The flag ``key`` of ``service``'s environment ``env``, or NotFound."""
    return keyed_row(session, Flag, service, env, key)


class FlagService:
    """Feature flags of the service environments of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, service: str, env: str, key: str) -> FlagInfo:
        """One flag of a service environment."""
        with self.store.session() as session:
            return FlagInfo.of(get_flag_row(session, service, env, key), service, env)

    def list(self, service: str, env: str) -> Flags:
        """A service environment's flags, by key."""
        with self.store.session() as session:
            environment = get_environment(session, get_service(session, service), env)
            rows = session.scalars(select(Flag).where(Flag.environment_id == environment.id).order_by(Flag.key))
            return [FlagInfo.of(row, service, env) for row in rows]

    def create(
        self, actor: Actor, service: str, env: str, key: str, *, description: str = "", enabled: bool = False,
        value: Any = True, default_value: Any = False, rollout: float = 1.0, rules: Sequence[Any] = (),
    ) -> FlagInfo:
        """Create a flag; it is off (everyone gets ``default_value``) until ``enabled``."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            environment = get_environment(session, svc, env)
            row = Flag(
                environment_id=environment.id, key=check_key("flag", key),
                description=check_text("description", description, DESCRIPTION_MAX), enabled=bool(enabled),
                value=check_json("value", value), default_value=check_json("default_value", default_value),
                rollout=check_share("rollout", rollout, allow_zero=True), rules=check_rules(rules),
                created_by=actor.team,
            )
            if session.scalar(select(Flag.id).where(Flag.environment_id == environment.id, Flag.key == key)):
                raise Conflict(f"flag {key!r} exists already in {service}/{env}")
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise Conflict(f"flag {key!r} exists already in {service}/{env}") from None
            audit.record(
                session, actor, "flag.create", service=svc.name, target=f"flag {env}/{key}", after=_snapshot(row)
            )
            return FlagInfo.of(row, service, env)

    def update(self, actor: Actor, service: str, env: str, key: str, changes: Mapping[str, Any]) -> FlagInfo:
        """Edit a flag: ``changes`` maps field names to new values; fields left out keep theirs."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            unknown = sorted(set(changes) - EDITABLE)
            if unknown:
                raise Invalid(f"cannot edit {', '.join(unknown)}: editable fields are {', '.join(sorted(EDITABLE))}")
            row = get_flag_row(session, service, env, key)
            before = _snapshot(row)
            if "description" in changes:
                row.description = check_text("description", changes["description"] or "", DESCRIPTION_MAX)
            if "enabled" in changes:
                if changes["enabled"] is None:
                    raise Invalid("enabled cannot be null")
                row.enabled = bool(changes["enabled"])
            if "value" in changes:
                row.value = check_json("value", changes["value"])
            if "default_value" in changes:
                row.default_value = check_json("default_value", changes["default_value"])
            if "rollout" in changes:
                if changes["rollout"] is None:
                    raise Invalid("rollout cannot be null")
                row.rollout = check_share("rollout", changes["rollout"], allow_zero=True)
            if "rules" in changes:
                row.rules = check_rules(changes["rules"] or [])
            row.updated_at = utcnow()
            audit.record(
                session, actor, "flag.update", service=svc.name, target=f"flag {env}/{key}", before=before,
                after=_snapshot(row),
            )
            return FlagInfo.of(row, service, env)

    def delete(self, actor: Actor, service: str, env: str, key: str) -> None:
        """Delete a flag: SDKs no longer know it (their callers' defaults apply)."""
        with self.store.session() as session:
            svc = get_service(session, service)
            authorize(session, actor, svc, Right.CONFIG)
            row = get_flag_row(session, service, env, key)
            audit.record(
                session, actor, "flag.delete", service=svc.name, target=f"flag {env}/{key}", before=_snapshot(row)
            )
            session.delete(row)


def _snapshot(row: Flag) -> dict[str, Any]:
    """What the audit log records of a flag before and after a change."""
    return {"description": row.description, **flag_definition(row)}
