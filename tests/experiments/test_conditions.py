"""Targeting conditions against GrowthBook's published ``evalCondition`` test cases.

The vectors are GrowthBook's shared SDK test cases, ``packages/sdk-js/test/cases.json`` in the
growthbook/growthbook repository at commit 8f1db445 (2026-08-21, spec version 0.8.0), section
``evalCondition``, copied verbatim into ``growthbook_conditions.json`` beside this file (its
``source`` names the exact URL): ``(name, condition, attributes, expected[, saved groups])``.
Every case passes; none is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium.experiments.conditions import ConditionError, check, get_path, matches
from podium.experiments.evaluate import Evaluator

CASES_FILE = Path(__file__).with_name("growthbook_conditions.json")
SPEC = json.loads(CASES_FILE.read_text(encoding="utf-8"))
CASES = [
    (case[0], case[1], case[2], case[3], case[4] if len(case) > 4 else None) for case in SPEC["evalCondition"]
]


def test_the_cases_are_the_current_spec() -> None:
    assert SPEC["specVersion"] == "0.8.0"
    assert len(CASES) == 248


@pytest.mark.parametrize(("name", "condition", "attributes", "expected", "groups"), CASES, ids=[c[0] for c in CASES])
def test_growthbook_cases(
    name: str, condition: dict[str, Any], attributes: dict[str, Any], expected: bool, groups: dict[str, Any] | None
) -> None:
    assert matches(condition, attributes, groups) is expected


def test_case_insensitive_and_negated_operators() -> None:
    assert matches({"country": {"$ini": ["nl", "be"]}}, {"country": "NL"})
    assert matches({"country": {"$nini": ["nl", "be"]}}, {"country": "FR"})
    assert matches({"tags": {"$alli": ["A", "b"]}}, {"tags": ["a", "B", "c"]})
    assert matches({"email": {"$regexi": "@EXAMPLE\\.com$"}}, {"email": "ann@example.com"})
    assert matches({"email": {"$notRegex": "@example\\.com$"}}, {"email": "ann@other.org"})
    assert not matches({"email": {"$notRegexi": "@EXAMPLE\\.com$"}}, {"email": "ann@example.com"})
    assert matches({"id": {"$inGroup": "beta"}}, {"id": "u2"}, {"beta": ["u1", "u2"]})
    assert matches({"id": {"$notInGroup": "beta"}}, {"id": "u3"}, {"beta": ["u1", "u2"]})
    assert not matches({"id": {"$inGroup": "unknown"}}, {"id": "u1"}, {"beta": ["u1"]})


def test_saved_groups_reach_the_evaluator_through_the_definitions() -> None:
    document = {
        "saved_groups": {"beta": ["u1"]},
        "flags": [{"key": "f", "enabled": True, "value": "on", "default_value": "off", "rollout": 0.0,
                   "rules": [{"condition": {"id": {"$inGroup": "beta"}}, "value": "beta"}]}],
    }  # fmt: skip
    evaluator = Evaluator(document)
    assert evaluator.flag("f", "u1") == "beta"
    assert evaluator.flag("f", "u2") == "off"


def test_literals_compare_as_json_does() -> None:
    # Literals compare as GrowthBook's current SDK does: a string as String(value), a number as
    # Number(value), a boolean as truthiness of a value that is not null; objects as JSON.stringify.
    assert matches({"premium": True}, {"premium": 1})
    assert not matches({"premium": False}, {})  # a missing attribute is null: neither true nor false
    assert matches({"n": "1"}, {"n": 1})
    assert matches({"n": 1}, {"n": "1"})
    assert matches({"n": 1}, {"n": 1.0})
    assert not matches({"o": {"a": 1, "b": 2}}, {"o": {"b": 2, "a": 1}})
    assert matches({"o": {"a": [1, {"b": None}]}}, {"o": {"a": [1, {"b": None}]}})
    # $eq and $in use ===: containers are never identical, types must match
    assert not matches({"tags": {"$eq": ["a"]}}, {"tags": ["a"]})
    assert not matches({"n": {"$in": [True]}}, {"n": 1})
    assert matches({"n": {"$in": [1]}}, {"n": 1.0})


def test_no_condition_matches_everyone_and_a_broken_one_nobody() -> None:
    assert matches(None, None)
    assert matches({}, {"x": 1})
    assert not matches({"$and": "not a list"}, {"x": 1})
    assert not matches({"$or": [3]}, {"x": 1})


def test_dotted_paths() -> None:
    attributes = {"company": {"plan": {"tier": "pro"}}, "a.b": 1}
    assert get_path(attributes, "company.plan.tier") == "pro"
    assert get_path(attributes, "company.missing.tier") is None
    assert get_path(attributes, "company.plan.tier.x") is None
    assert matches({"company.plan.tier": {"$in": ["pro", "team"]}}, attributes)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ([1], "condition must be an object"),
        ({"$or": {"a": 1}}, "condition.$or must be a list of conditions"),
        ({"$and": [{"x": {"$bogus": 1}}]}, "condition.$and[0].x: unknown operator $bogus"),
        ({"x": {"$in": "abc"}}, "condition.x.$in must be a list"),
        ({"x": {"$regex": "("}}, "condition.x.$regex is not a valid regular expression"),
        ({"x": {"$type": "integer"}}, "condition.x.$type must be one of"),
        ({"$not": [1]}, "condition.$not must be an object"),
    ],
)
def test_check_names_the_problem(condition: Any, message: str) -> None:
    with pytest.raises(ConditionError, match=message.replace("$", r"\$").replace("[", r"\[").replace("(", r"\(")):
        check(condition)


def test_check_accepts_every_published_condition() -> None:
    for name, condition, *_ in CASES:
        if "unknown operator" in name or "invalid" in name or ("not array" in name and "$size" not in name):
            continue
        check(condition)
