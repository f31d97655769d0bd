"""Reading a Backstage ``catalog-info.yaml``: the Components it declares, nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from podium.catalog.models import Lifecycle
from podium.catalog.rules import DESCRIPTION_MAX, check_name, check_text
from podium.errors import Invalid

LIFECYCLES = [stage.value for stage in Lifecycle]


@dataclass(frozen=True)
class Component:
    """A Backstage Component as the catalog sees it: a service and its owning team."""

    name: str
    owner: str
    lifecycle: Lifecycle
    description: str


def owner_team(ref: str) -> str:
    """The team named by a Backstage owner reference: ``group:default/team-a`` → ``team-a``."""
    return ref.rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def parse_components(document: str) -> list[Component]:
    """The Components of a (multi-document) catalog file; other kinds are skipped.

    Backstage lifecycles other than Podium's three read as ``experimental``.
    """
    try:
        entities = [doc for doc in yaml.safe_load_all(document) if doc is not None]
    except yaml.YAMLError as exc:
        raise Invalid(f"catalog file does not parse as YAML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        # PyYAML raises these for values it parses but cannot build, e.g. a date 2001-13-45,
        # or for nesting deeper than Python's stack.
        raise Invalid(f"catalog file does not parse as YAML: {type(exc).__name__}") from None
    components: list[Component] = []
    for index, entity in enumerate(entities):
        if not isinstance(entity, dict) or entity.get("kind") != "Component":
            continue
        metadata, spec = _mapping(entity, "metadata", index), _mapping(entity, "spec", index)
        name, owner = metadata.get("name"), spec.get("owner")
        if not isinstance(name, str) or not isinstance(owner, str):
            raise Invalid(f"entity {index}: a Component needs metadata.name and spec.owner as strings")
        lifecycle = spec.get("lifecycle")
        stage = Lifecycle(lifecycle) if lifecycle in LIFECYCLES else Lifecycle.EXPERIMENTAL
        description = metadata.get("description") or ""
        if not isinstance(description, str):
            raise Invalid(f"entity {index}: metadata.description must be a string")
        components.append(
            Component(
                name=check_name("service", name),
                owner=check_name("team", owner_team(owner)),
                lifecycle=stage,
                description=check_text("description", description, DESCRIPTION_MAX),
            )
        )
    return components


def _mapping(entity: dict[Any, Any], key: str, index: int) -> dict[Any, Any]:
    value = entity.get(key) or {}
    if not isinstance(value, dict):
        raise Invalid(f"entity {index}: {key} must be a mapping")
    return value
