"""What experiments and flags accept: keys, shares, variants, weights, JSON values.

Each check raises ``Invalid`` with a message that names the rule broken, so a user can fix
the request from the message alone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.catalog.rules import check_text
from podium.catalog.service import get_environment, get_service
from podium.errors import Invalid, NotFound
from podium.experiments.conditions import ConditionError
from podium.experiments.conditions import check as check_condition
from podium.experiments.models import Experiment, Flag

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
KEY_RE = re.compile(KEY_PATTERN)
KEY_RULE = "a lower-case letter or digit, then up to 99 lower-case letters, digits, '_', '.' or '-'"
HYPOTHESIS_MAX = 5000
DESCRIPTION_MAX = 2000
NAME_MAX = 100  # variant, metric and seed names
VARIANTS_MAX = 20
GUARDRAILS_MAX = 20
RULES_MAX = 100
JSON_MAX = 20_000  # characters of a condition or a flag value, as compact JSON
WEIGHT_SUM_TOLERANCE = 0.01
HASH_VERSIONS = (1, 2)
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut short when long."""
    return repr(text if len(text) <= limit else f"{text[:limit]}…")


def is_key(text: str) -> bool:
    return KEY_RE.fullmatch(text) is not None


def check_key(kind: str, key: str) -> str:
    """An experiment's or flag's key: ``^[a-z0-9][a-z0-9_.-]{0,99}$``."""
    if not is_key(key):
        raise Invalid(f"invalid {kind} key {shown(key)}: use {KEY_RULE}")
    return key


def check_label(field: str, value: str) -> str:
    """A short name (a variant, a metric, a seed): 1 to 100 characters, no control characters."""
    if not value or not value.strip():
        raise Invalid(f"{field} must not be empty")
    if len(value) > NAME_MAX:
        raise Invalid(f"{field} {shown(value)} is too long: at most {NAME_MAX} characters")
    if _CONTROL.search(value):
        raise Invalid(f"{field} {shown(value)} contains a control character")
    check_text(field, value, NAME_MAX)
    return value


def check_share(field: str, value: float, *, allow_zero: bool) -> float:
    """A share of users: in (0, 1], or [0, 1] with ``allow_zero``."""
    low_ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and low_ok and value <= 1):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise Invalid(f"{field} must be a number in {interval}, not {value!r}")
    return float(value)


def check_variants(variants: Sequence[str]) -> list[str]:
    """At least two variants with distinct names; the first is the control."""
    names = [check_label("variant name", v) for v in variants]
    if not 2 <= len(names) <= VARIANTS_MAX:
        raise Invalid(f"an experiment needs 2 to {VARIANTS_MAX} variants (the first is the control), got {len(names)}")
    if len(set(names)) != len(names):
        raise Invalid(f"variant names must differ: {', '.join(names)}")
    return names


def check_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """One weight per variant, each ≥ 0, summing to 1 (± 0.01); ``None`` means equal weights."""
    if weights is None:
        return [1 / count] * count
    values = [float(w) for w in weights]
    if len(values) != count:
        raise Invalid(f"weights has {len(values)} values for {count} variants: give one per variant")
    if not all(math.isfinite(w) and w >= 0 for w in values):
        raise Invalid("each weight must be a number ≥ 0")
    if abs(sum(values) - 1) > WEIGHT_SUM_TOLERANCE:
        raise Invalid(f"weights must sum to 1 (± {WEIGHT_SUM_TOLERANCE}), they sum to {sum(values):g}")
    return values


def check_hash_version(version: int) -> int:
    if version not in HASH_VERSIONS:
        raise Invalid(f"hash_version must be 1 or 2, not {version!r}")
    return version


def check_namespace(namespace: Sequence[Any] | None) -> list[Any] | None:
    """``[id, start, end]`` with ``0 ≤ start < end ≤ 1``, or ``None``."""
    if namespace is None:
        return None
    if len(namespace) != 3:
        raise Invalid("namespace must be [id, start, end], e.g. [\"checkout\", 0.0, 0.5]")
    ns_id, start, end = namespace
    if not isinstance(ns_id, str) or isinstance(start, bool) or isinstance(end, bool):
        raise Invalid("namespace must be [id, start, end]: a name and two numbers")
    if not isinstance(start, int | float) or not isinstance(end, int | float):
        raise Invalid("namespace must be [id, start, end]: a name and two numbers")
    check_label("namespace id", ns_id)
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end <= 1):
        raise Invalid(f"namespace range must have 0 ≤ start < end ≤ 1, not [{start!r}, {end!r}]")
    return [ns_id, float(start), float(end)]


def check_json(field: str, value: Any) -> Any:
    """A JSON value a store keeps faithfully: finite numbers, storable text, at most ``JSON_MAX`` characters."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise Invalid(f"{field} must be JSON without NaN or infinite numbers") from None
    except RecursionError:
        raise Invalid(f"{field} is nested too deeply") from None
    if len(text) > JSON_MAX:
        raise Invalid(f"{field} is too large: {len(text)} characters of JSON, at most {JSON_MAX}")
    if "\\u0000" in text or re.search(r"\\ud[89a-f][0-9a-f]{2}", text):
        raise Invalid(f"{field} contains a NUL character or a lone surrogate, which cannot be stored")
    return value


def check_conditions(field: str, conditions: Any) -> dict[str, Any]:
    """Targeting conditions: a JSON object in GrowthBook's condition language (``{}`` matches everyone)."""
    if not isinstance(conditions, dict):
        raise Invalid(f"{field} must be a JSON object, e.g. {{\"country\": \"FR\"}}")
    check_json(field, conditions)
    try:
        check_condition(conditions)
    except ConditionError as exc:
        raise Invalid(f"{field}: {exc}") from None
    except RecursionError:
        raise Invalid(f"{field} is nested too deeply") from None
    return dict(conditions)


def check_names(field: str, names: Sequence[str], limit: int) -> list[str]:
    """A list of distinct short names, e.g. guardrail metrics."""
    values = [check_label(field, n) for n in names]
    if len(values) > limit:
        raise Invalid(f"at most {limit} {field}s, got {len(values)}")
    return list(dict.fromkeys(values))


def check_rules(rules: Sequence[Any]) -> list[dict[str, Any]]:
    """A flag's targeting rules: ``[{"condition": {...}, "value": ...}]``, the first match wins."""
    if len(rules) > RULES_MAX:
        raise Invalid(f"a flag has at most {RULES_MAX} rules, got {len(rules)}")
    checked = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) != {"condition", "value"}:
            raise Invalid(f"rule {i} must be {{\"condition\": {{...}}, \"value\": ...}}")
        condition = check_conditions(f"rule {i} condition", rule["condition"])
        checked.append({"condition": condition, "value": check_json(f"rule {i} value", rule["value"])})
    return checked


Keyed = TypeVar("Keyed", Flag, Experiment)


def keyed_row(session: Session, model: type[Keyed], service: str, env: str, key: str) -> Keyed:
    """The flag or experiment ``key`` of ``service``'s environment ``env``, or NotFound."""
    environment = get_environment(session, get_service(session, service), env)
    row = (
        session.scalar(select(model).where(model.environment_id == environment.id, model.key == key))
        if is_key(key) else None
    )
    if row is None:
        raise NotFound(f"{model.__tablename__[:-1]} {shown(key)} not found in {service}/{env}")
    return row
