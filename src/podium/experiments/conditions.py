"""GrowthBook's condition language on user attributes (the targeting of experiments and flags).

A condition is a JSON object. Each key is either an attribute path (``"country"``,
``"father.age"``) whose value is a literal to equal or an object of operators, or one of
``$and``, ``$or``, ``$nor`` (lists of conditions) and ``$not`` (a condition). Operators on
a value: ``$eq $ne $gt $gte $lt $lte $in $nin $ini $nini $exists $regex $regexi $notRegex
$notRegexi $not $type $size $elemMatch $all $alli $inGroup $notInGroup $veq $vne $vgt $vgte
$vlt $vlte``. Every entry must hold.

The answers follow GrowthBook's JavaScript SDK (``mongrule.ts``) and its published test
cases (``cases.json``, ``evalCondition``, spec 0.8.0): a missing attribute reads as ``null``;
a literal string matches when the value written as JavaScript's ``String(value)`` equals it
(``{"n": "1"}`` matches the number 1), a literal number when ``Number(value)`` equals it, a
literal boolean when the value is not null and has that truthiness, arrays and objects like
``JSON.stringify``; ``$eq``/``$in`` use ``===`` (type matters); ``$gt``/``$lt`` compare like
JavaScript's ``<`` (two strings by code unit, anything else as numbers, so ``"8" > 5`` and a
missing attribute is 0); the ``i`` operators ignore case; ``$inGroup``/``$notInGroup``
look the value up in the environment's saved groups (lists of values by id). ``$notRegex``
and ``$notRegexi`` (GrowthBook's Python SDK, not in the JavaScript one) are the negation of
``$regex``/``$regexi``. An unknown operator or an invalid regular expression never matches.
Standard library only: the SDK imports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

Condition = Mapping[str, Any]

_VALUE_OPERATORS = frozenset(
    {
        "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$ini", "$nini", "$exists",
        "$regex", "$regexi", "$notRegex", "$notRegexi", "$not", "$type", "$size", "$elemMatch",
        "$all", "$alli", "$inGroup", "$notInGroup", "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte",
    }
)  # fmt: skip
_REGEX_OPERATORS = frozenset({"$regex", "$regexi", "$notRegex", "$notRegexi"})
_LIST_OPERATORS = frozenset({"$in", "$nin", "$ini", "$nini", "$all", "$alli"})
SavedGroups = Mapping[str, list[Any]]
_TYPES = frozenset({"string", "number", "boolean", "object", "array", "null"})

_MISSING = object()


class ConditionError(ValueError):
    """A condition that is not well formed (reported when a condition is saved)."""


def matches(
    condition: Condition | None, attributes: Mapping[str, Any] | None, saved_groups: SavedGroups | None = None
) -> bool:
    """Whether ``attributes`` satisfy ``condition``; an empty or missing condition always does.

    ``saved_groups`` maps a group id to its values, for ``$inGroup`` and ``$notInGroup``.
    Never raises: a malformed condition does not match.
    """
    if not condition:
        return True
    try:
        return _Evaluation(saved_groups or {}).condition(attributes or {}, condition)
    except (TypeError, ValueError, AttributeError, RecursionError, OverflowError):
        return False


def check(condition: Any) -> None:
    """Raise ``ConditionError`` naming the problem when ``condition`` is not a well-formed condition."""
    _check_condition(condition, "condition")


def groups_named(condition: Any) -> set[str]:
    """The saved groups a condition names with ``$inGroup`` / ``$notInGroup``, at any depth."""
    found: set[str] = set()
    pending = [condition]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("$inGroup", "$notInGroup") and isinstance(value, str):
                    found.add(value)
                else:
                    pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)
    return found


def _check_condition(condition: Any, where: str) -> None:
    if not isinstance(condition, dict):
        raise ConditionError(f"{where} must be an object")
    for key, value in condition.items():
        if not isinstance(key, str) or not key:
            raise ConditionError(f"{where} has an empty key")
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list):
                raise ConditionError(f"{where}.{key} must be a list of conditions")
            for index, item in enumerate(value):
                _check_condition(item, f"{where}.{key}[{index}]")
        elif key == "$not":
            _check_condition(value, f"{where}.$not")
        elif _is_operator_object(value):
            _check_operators(value, f"{where}.{key}")


def _check_operators(operators: dict[str, Any], where: str) -> None:
    for op, arg in operators.items():
        if op not in _VALUE_OPERATORS:
            raise ConditionError(f"{where}: unknown operator {op}")
        if op in _LIST_OPERATORS and not isinstance(arg, list):
            raise ConditionError(f"{where}.{op} must be a list")
        if op in ("$inGroup", "$notInGroup") and not isinstance(arg, str):
            raise ConditionError(f"{where}.{op} must be a saved group's id (a string)")
        if op in _REGEX_OPERATORS:
            if not isinstance(arg, str):
                raise ConditionError(f"{where}.{op} must be a string")
            try:
                re.compile(arg)
            except re.error as exc:
                raise ConditionError(f"{where}.{op} is not a valid regular expression: {exc}") from None
        if op == "$type" and arg not in _TYPES:
            raise ConditionError(f"{where}.$type must be one of {', '.join(sorted(_TYPES))}")
        if op == "$not" and _is_operator_object(arg):
            _check_operators(arg, f"{where}.$not")
        if op == "$elemMatch":
            if not isinstance(arg, dict):
                raise ConditionError(f"{where}.$elemMatch must be an object")
            if _is_operator_object(arg):
                _check_operators(arg, f"{where}.$elemMatch")
            else:
                _check_condition(arg, f"{where}.$elemMatch")


def get_path(attributes: Any, path: str) -> Any:
    """The value at a dotted path, or None when any step is missing (as GrowthBook reads it)."""
    current = attributes
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return None
    return current


class _Evaluation:
    """One evaluation of a condition, with the saved groups ``$inGroup`` reads."""

    __slots__ = ("groups",)

    def __init__(self, groups: SavedGroups) -> None:
        self.groups = groups

    def condition(self, attributes: Any, condition: Condition) -> bool:
        for key, value in condition.items():
            if key == "$or":
                if not self.any_of(attributes, value):
                    return False
            elif key == "$nor":
                if self.any_of(attributes, value):
                    return False
            elif key == "$and":
                if not all(self.condition(attributes, c) for c in value):
                    return False
            elif key == "$not":
                if self.condition(attributes, value):
                    return False
            elif not self.value(value, get_path(attributes, key)):
                return False
        return True

    def any_of(self, attributes: Any, conditions: list[Condition]) -> bool:
        if not conditions:
            return True
        return any(self.condition(attributes, c) for c in conditions)

    def value(self, expected: Any, actual: Any, insensitive: bool = False) -> bool:
        """``evalConditionValue``: a literal compared as JavaScript would, or an object of operators."""
        if isinstance(expected, str):
            if insensitive:
                return _js_string(actual).lower() == expected.lower()
            return _js_string(actual) == expected
        if isinstance(expected, bool):
            return actual is not None and _truthy(actual) is expected
        if isinstance(expected, int | float):
            return _to_number(actual) == expected
        if expected is None:
            return actual is None
        if not _is_operator_object(expected):
            return _json_equal(expected, actual)
        return all(self.operator(op, actual, arg) for op, arg in expected.items())

    def operator(self, op: str, actual: Any, expected: Any) -> bool:
        if op == "$eq":
            return _strict_equal(actual, expected)
        if op == "$ne":
            return not _strict_equal(actual, expected)
        if op in ("$gt", "$gte", "$lt", "$lte"):
            order = _js_compare(actual, expected)
            if order is None:
                return False
            return {"$gt": order > 0, "$gte": order >= 0, "$lt": order < 0, "$lte": order <= 0}[op]
        if op in ("$in", "$nin", "$ini", "$nini"):
            if not isinstance(expected, list):
                return False
            found = _is_in(actual, expected, insensitive=op.endswith("i"))
            return found if op in ("$in", "$ini") else not found
        if op in ("$inGroup", "$notInGroup"):
            group = self.groups.get(expected) if isinstance(expected, str) else None
            found = _is_in(actual, group if isinstance(group, list) else [])
            return found if op == "$inGroup" else not found
        if op == "$exists":
            return (actual is not None) if _truthy(expected) else (actual is None)
        if op in _REGEX_OPERATORS:
            if not isinstance(expected, str):
                return False
            try:
                pattern = _regex(expected, op.endswith("i"))
            except re.error:
                return False
            found = pattern.search(_js_string(actual)) is not None
            return found if op in ("$regex", "$regexi") else not found
        if op == "$not":
            return not self.value(expected, actual)
        if op == "$type":
            return bool(_type_of(actual) == expected)
        if op == "$size":
            return isinstance(actual, list) and self.value(expected, len(actual))
        if op == "$elemMatch":
            return self.elem_match(actual, expected)
        if op in ("$all", "$alli"):
            if not isinstance(actual, list) or not isinstance(expected, list):
                return False
            insensitive = op == "$alli"
            return all(any(self.value(e, item, insensitive) for item in actual) for e in expected)
        if op in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"):
            a, b = _padded_version(actual), _padded_version(expected)
            return {
                "$veq": a == b,
                "$vne": a != b,
                "$vgt": a > b,
                "$vgte": a >= b,
                "$vlt": a < b,
                "$vlte": a <= b,
            }[op]
        return False  # an unknown operator never matches

    def elem_match(self, actual: Any, expected: Any) -> bool:
        """At least one truthy element of ``actual`` matches ``expected`` (a value's operators or a condition)."""
        if not isinstance(actual, list) or not isinstance(expected, dict):
            return False
        if _is_operator_object(expected):
            return any(_truthy(item) and self.value(expected, item) for item in actual)
        return any(
            _truthy(item) and self.condition(item if isinstance(item, dict) else {}, expected) for item in actual
        )


def _is_operator_object(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(k, str) and k.startswith("$") for k in value)


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as ``JSON.stringify(a) === JSON.stringify(b)``: same types, same order, 1 == 1.0."""
    kind = _type_of(a)
    if kind != _type_of(b):
        return False
    if kind == "array":
        return len(a) == len(b) and all(_json_equal(_json_item(x), _json_item(y)) for x, y in zip(a, b, strict=True))
    if kind == "object":
        return list(a) == list(b) and all(_json_equal(_json_item(a[k]), _json_item(b[k])) for k in a)
    if kind == "number" and not (math.isfinite(a) and math.isfinite(b)):
        return False  # JSON has no NaN or infinities; the SDK never sees them from JSON
    return bool(a == b)


def _json_item(value: Any) -> Any:
    """JSON.stringify writes NaN and infinities inside arrays and objects as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _strict_equal(a: Any, b: Any) -> bool:
    """JavaScript's ``===`` on values parsed from JSON: arrays and objects are never identical."""
    kind = _type_of(a)
    if kind != _type_of(b) or kind in ("array", "object", "unknown"):
        return False
    return bool(a == b)


def _js_number(value: float) -> str:
    """JavaScript's ``String(number)`` for the numbers JSON carries."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if float(value).is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(float(value))
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa.removesuffix('.0')}e{sign}{int(exponent.lstrip('+-'))}"
    return text


def _js_string(value: Any) -> str:
    """JavaScript's ``String(value)`` for JSON values (``value + ""``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _js_number(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else _js_string(item) for item in value)
    return "[object Object]"


def _to_number(value: Any) -> float:
    """JavaScript's ``Number(value)`` for JSON values (NaN when there is no number)."""
    if value is None:
        return 0.0
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return _to_number(_js_string(value))  # [] is 0, [5] is 5, [1, 2] is NaN
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0.0
        if text in ("Infinity", "+Infinity", "-Infinity"):
            return -math.inf if text.startswith("-") else math.inf
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
            return float(int(text, 16))
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
            return math.nan
        return float(text)
    return math.nan


def _js_compare(actual: Any, expected: Any) -> int | None:
    """-1, 0 or 1 as JavaScript's relational operators order the two values; None when unordered."""
    if isinstance(actual, str) and isinstance(expected, str):
        a = actual.encode("utf-16-be", "surrogatepass")
        b = expected.encode("utf-16-be", "surrogatepass")
        return (a > b) - (a < b)
    x, y = _to_number(actual), _to_number(expected)
    if math.isnan(x) or math.isnan(y):
        return None
    return (x > y) - (x < y)


def _fold(value: Any, insensitive: bool) -> Any:
    return value.lower() if insensitive and isinstance(value, str) else value


def _is_in(actual: Any, expected: list[Any], insensitive: bool = False) -> bool:
    """``expected.includes(actual)``, or an intersection when ``actual`` is an array; case folded for $ini."""
    options = [_fold(e, insensitive) for e in expected]
    values = actual if isinstance(actual, list) else [actual]
    return any(_strict_equal(_fold(item, insensitive), e) for item in values for e in options)


def _truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value."""
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, list | dict):
        return True
    return bool(value)


@lru_cache(maxsize=256)
def _regex(pattern: str, insensitive: bool = False) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if insensitive else 0)


def _padded_version(value: Any) -> str:
    """A version string that orders like the version (GrowthBook's ``paddedVersionString``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = _js_number(float(value))
    text = value if isinstance(value, str) and value else "0"
    text = re.sub(r"(^v|\+.*$)", "", text)
    parts = re.split(r"[-.]", text)
    if len(parts) == 3:
        parts.append("~")  # 1.0.0 sorts after 1.0.0-beta
    return "-".join(p.rjust(5) if p.isdigit() else p for p in parts)
