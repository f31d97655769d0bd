"""The definitions document SDKs fetch per service environment, its ETag, and an evaluator over it.

SDKs poll the document, so it is kept per environment and built again only when
something in it changed: one small query reads a version of the environment's started
experiments and flags (every change sets their ``updated_at``, a delete changes their
count), which also catches changes made by another process or a guardrail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from podium.catalog.models import ENVIRONMENTS, Environment, Service
from podium.catalog.rules import is_name
from podium.catalog.service import get_environment, get_service
from podium.errors import NotFound
from podium.experiments.conditions import groups_named
from podium.experiments.evaluate import Evaluator
from podium.experiments.flags import flag_definition
from podium.experiments.groups import team_groups
from podium.experiments.models import Decision, Experiment, ExperimentStatus, Flag, SavedGroup
from podium.store.db import Store

Version = tuple[Any, ...]


def etag_of(document: Mapping[str, Any]) -> str:
    """A strong ETag of a JSON document: a SHA-256 of its canonical form."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32] + '"'


def experiment_definition(row: Experiment) -> dict[str, Any]:
    """What SDKs get of a started experiment; ``force`` is who gets what once it no longer runs."""
    force: str | None = None
    if row.status == ExperimentStatus.STOPPED or row.decision == Decision.DISCARD:
        force = row.variants[0]
    elif row.decision == Decision.SHIP:
        force = row.decided_variant
    return {
        "key": row.key, "status": row.status, "variants": list(row.variants), "weights": list(row.weights),
        "coverage": row.coverage, "seed": row.seed or row.key, "hash_version": row.hash_version,
        "namespace": list(row.namespace) if row.namespace else None, "conditions": row.conditions,
        "force": force,
    }


def build(session: Session, environment_id: int, service: str, env: str, team_id: int) -> dict[str, Any]:
    """The definitions document of one environment: every experiment but drafts, every flag, by key,
    and (as GrowthBook's ``savedGroups``) the owning team's saved groups their conditions name."""
    experiments = [experiment_definition(row) for row in session.scalars(
        select(Experiment)
        .where(Experiment.environment_id == environment_id, Experiment.status != ExperimentStatus.DRAFT)
        .order_by(Experiment.key)
    )]
    flags = [flag_definition(row) for row in session.scalars(
        select(Flag).where(Flag.environment_id == environment_id).order_by(Flag.key)
    )]
    named = groups_named([e["conditions"] for e in experiments] + [f["rules"] for f in flags])
    return {
        "service": service, "env": env, "experiments": experiments, "flags": flags,
        "savedGroups": team_groups(session, team_id, named),
    }


def version_of(session: Session, service: str, env: str) -> Version:
    """What changes whenever an environment's definitions do: its id, the number and latest change
    of its started experiments, of its flags and of its owning team's saved groups, and that team
    (its id last). NotFound names what does not exist."""
    if is_name(service) and env in ENVIRONMENTS:
        live = (Experiment.environment_id == Environment.id, Experiment.status != ExperimentStatus.DRAFT)
        flags = Flag.environment_id == Environment.id
        groups = SavedGroup.team_id == Service.owner_id
        stmt = (
            select(
                Environment.id,
                select(func.count()).where(*live).correlate(Environment).scalar_subquery(),
                select(func.max(Experiment.updated_at)).where(*live).correlate(Environment).scalar_subquery(),
                select(func.count()).where(flags).correlate(Environment).scalar_subquery(),
                select(func.max(Flag.updated_at)).where(flags).correlate(Environment).scalar_subquery(),
                select(func.count()).where(groups).correlate(Service).scalar_subquery(),
                select(func.max(SavedGroup.updated_at)).where(groups).correlate(Service).scalar_subquery(),
                Service.owner_id,
            )
            .join(Service, Environment.service_id == Service.id)
            .where(Service.name == service, Environment.name == env)
        )
        row = session.execute(stmt).first()
        if row is not None:
            return tuple(row)
    get_environment(session, get_service(session, service), env)  # says which of the two is not found
    raise NotFound(f"environment {env!r} not found on service {service!r}")


@dataclass(frozen=True)
class Definitions:
    """One environment's definitions as last built: the document (shared: do not change it), its ETag,
    and an evaluator over it."""

    version: Version
    document: dict[str, Any]
    etag: str
    evaluator: Evaluator


class DefinitionsCache:
    """The definitions of each service environment of one store, built again only after a change."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._kept: dict[tuple[str, str], Definitions] = {}  # one entry per environment asked for

    def get(self, service: str, env: str) -> Definitions:
        """The current definitions of ``service``'s environment ``env``."""
        with self.store.session() as session:
            version = version_of(session, service, env)
            kept = self._kept.get((service, env))
            if kept is not None and kept.version == version:
                return kept
            document = build(session, version[0], service, env, version[-1])
        fresh = Definitions(version, document, etag_of(document), Evaluator(document))
        self._kept[(service, env)] = fresh
        return fresh
