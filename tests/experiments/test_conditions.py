"""Targeting conditions against GrowthBook's published ``evalCondition`` test cases.

The vectors are GrowthBook's shared SDK test cases, ``packages/sdk-js/test/cases.json`` in the
growthbook/growthbook repository (spec version 0.5.4), section ``evalCondition``, as
``(name, condition, attributes, expected)``.
"""

from __future__ import annotations

from typing import Any

import pytest

from podium.experiments.conditions import ConditionError, check, get_path, matches

SANTA = {"$and": [{"father.age": {"$gt": 65}}, {"$or": [{"bday": {"$regex": "-12-25$"}}, {"name": "santa"}]}]}
GROUPS = {
    "$and": [
        {"$groups": {"$elemMatch": {"$eq": "a"}}},
        {"$groups": {"$elemMatch": {"$eq": "b"}}},
        {"$or": [{"$groups": {"$elemMatch": {"$eq": "c"}}}, {"$groups": {"$elemMatch": {"$eq": "e"}}}]},
        {"$not": {"$groups": {"$elemMatch": {"$eq": "f"}}}},
        {"$not": {"$groups": {"$elemMatch": {"$eq": "g"}}}},
    ]
}
GROUPS_NO = {
    "$and": [
        {"$groups": {"$elemMatch": {"$eq": "a"}}},
        {"$groups": {"$elemMatch": {"$eq": "b"}}},
        {"$or": [{"$groups": {"$elemMatch": {"$eq": "c"}}}, {"$groups": {"$elemMatch": {"$eq": "e"}}}]},
        {"$not": {"$groups": {"$elemMatch": {"$eq": "d"}}}},
        {"$not": {"$groups": {"$elemMatch": {"$eq": "g"}}}},
    ]
}
NOR = {"$nor": [{"name": "john"}, {"age": {"$lt": 30}}]}
HOBBY = {"hobbies": {"$elemMatch": {"name": {"$regex": "^ping"}}}}
AGE_30_60 = {"age": {"$gt": 30, "$lt": 60}}
AGE_30_60_INCL = {"age": {"$gte": 30, "$lte": 60}}
WORD = {"word": {"$gt": "alphabet", "$lt": "zebra"}}
DOG = {"pets": {"dog": {"name": "fido"}}}

CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("$not - pass", {"$not": {"name": "hello"}}, {"name": "world"}, True),
    ("$not - fail", {"$not": {"name": "hello"}}, {"name": "hello"}, False),
    ("$and/$or - all true", SANTA, {"name": "santa", "bday": "1980-12-25", "father": {"age": 70}}, True),
    ("$groups - match", GROUPS, {"$groups": ["a", "b", "c", "d"]}, True),
    ("$groups - no match", GROUPS_NO, {"$groups": ["a", "b", "c", "d"]}, False),
    ("$and/$or - first or true", SANTA, {"name": "santa", "bday": "1980-12-20", "father": {"age": 70}}, True),
    ("$and/$or - second or true", SANTA, {"name": "barbara", "bday": "1980-12-25", "father": {"age": 70}}, True),
    ("$and/$or - first and false", SANTA, {"name": "santa", "bday": "1980-12-25", "father": {"age": 65}}, False),
    ("$and/$or - both or false", SANTA, {"name": "barbara", "bday": "1980-11-25", "father": {"age": 70}}, False),
    ("$and/$or - both and false", SANTA, {"name": "john smith", "bday": "1956-12-20", "father": {"age": 40}}, False),
    ("$exists - false pass", {"pets.dog.name": {"$exists": False}}, {"hello": "world"}, True),
    ("$exists - false fail", {"pets.dog.name": {"$exists": False}}, DOG, False),
    ("$exists - true fail", {"pets.dog.name": {"$exists": True}}, {"hello": "world"}, False),
    ("$exists - true pass", {"pets.dog.name": {"$exists": True}}, DOG, True),
    (
        "equals - multiple datatypes",
        {"str": "str", "num": 10, "flag": False},
        {"str": "str", "num": 10, "flag": False},
        True,
    ),
    ("$in - pass", {"num": {"$in": [1, 2, 3]}}, {"num": 2}, True),
    ("$in - fail", {"num": {"$in": [1, 2, 3]}}, {"num": 4}, False),
    ("$in - not array", {"num": {"$in": 1}}, {"num": 1}, False),
    ("$in - array pass 1", {"tags": {"$in": ["a", "b"]}}, {"tags": ["d", "e", "a"]}, True),
    ("$in - array pass 2", {"tags": {"$in": ["a", "b"]}}, {"tags": ["d", "b", "f"]}, True),
    ("$in - array pass 3", {"tags": {"$in": ["a", "b"]}}, {"tags": ["d", "b", "a"]}, True),
    ("$in - array fail 1", {"tags": {"$in": ["a", "b"]}}, {"tags": ["d", "e", "f"]}, False),
    ("$in - array fail 2", {"tags": {"$in": ["a", "b"]}}, {"tags": []}, False),
    ("$nin - pass", {"num": {"$nin": [1, 2, 3]}}, {"num": 4}, True),
    ("$nin - fail", {"num": {"$nin": [1, 2, 3]}}, {"num": 2}, False),
    ("$nin - not array", {"num": {"$nin": 1}}, {"num": 1}, False),
    ("$nin - array fail 1", {"tags": {"$nin": ["a", "b"]}}, {"tags": ["d", "e", "a"]}, False),
    ("$nin - array fail 2", {"tags": {"$nin": ["a", "b"]}}, {"tags": ["d", "b", "f"]}, False),
    ("$nin - array fail 3", {"tags": {"$nin": ["a", "b"]}}, {"tags": ["d", "b", "a"]}, False),
    ("$nin - array pass 1", {"tags": {"$nin": ["a", "b"]}}, {"tags": ["d", "e", "f"]}, True),
    ("$nin - array pass 2", {"tags": {"$nin": ["a", "b"]}}, {"tags": []}, True),
    ("$elemMatch - pass - flat arrays", {"nums": {"$elemMatch": {"$gt": 10}}}, {"nums": [0, 5, -20, 15]}, True),
    ("$elemMatch - fail - flat arrays", {"nums": {"$elemMatch": {"$gt": 10}}}, {"nums": [0, 5, -20, 8]}, False),
    ("missing attribute - fail", {"pets.dog.name": {"$in": ["fido"]}}, {"hello": "world"}, False),
    (
        "missing attribute with comparison operators",
        {"age": {"$gt": -10, "$lt": 10, "$gte": -9, "$lte": 9, "$ne": 10}},
        {},
        True,
    ),
    ("comparing numbers and strings", {"n": {"$gt": 5, "$lt": 10}}, {"n": "8"}, True),
    ("comparing numbers and strings - v2", {"n": {"$gt": "5", "$lt": "10"}}, {"n": 8}, True),
    ("empty $or - pass", {"$or": []}, {"hello": "world"}, True),
    ("empty $and - pass", {"$and": []}, {"hello": "world"}, True),
    ("empty - pass", {}, {"hello": "world"}, True),
    ("$eq - pass", {"occupation": {"$eq": "engineer"}}, {"occupation": "engineer"}, True),
    ("$eq - fail", {"occupation": {"$eq": "engineer"}}, {"occupation": "civil engineer"}, False),
    ("$ne - pass", {"level": {"$ne": "senior"}}, {"level": "junior"}, True),
    ("$ne - fail", {"level": {"$ne": "senior"}}, {"level": "senior"}, False),
    ("$regex - pass", {"userAgent": {"$regex": "(Mobile|Tablet)"}}, {"userAgent": "Android Mobile Browser"}, True),
    ("$regex - fail", {"userAgent": {"$regex": "(Mobile|Tablet)"}}, {"userAgent": "Chrome Desktop Browser"}, False),
    ("$gt/$lt numbers - pass", AGE_30_60, {"age": 50}, True),
    ("$gt/$lt numbers - fail $lt", AGE_30_60, {"age": 60}, False),
    ("$gt/$lt numbers - fail $gt", AGE_30_60, {"age": 30}, False),
    ("$gte/$lte numbers - pass", AGE_30_60_INCL, {"age": 50}, True),
    ("$gte/$lte numbers - pass $gte", AGE_30_60_INCL, {"age": 30}, True),
    ("$gte/$lte numbers - pass $lte", AGE_30_60_INCL, {"age": 60}, True),
    ("$gte/$lte numbers - fail $lte", AGE_30_60_INCL, {"age": 61}, False),
    ("$gte/$lte numbers - fail $gte", AGE_30_60, {"age": 29}, False),
    ("$gt/$lt strings - fail $gt", WORD, {"word": "alphabet"}, False),
    ("$gt/$lt strings - fail $lt", WORD, {"word": "zebra"}, False),
    ("$gt/$lt strings - pass", WORD, {"word": "always"}, True),
    ("$gt/$lt strings - fail uppercase", WORD, {"word": "AZL"}, False),
    ("nested value is null", {"address.state": "CA"}, {"address": None}, False),
    ("nested value is integer", {"address.state": "CA"}, {"address": 123}, False),
    ("$type string - pass", {"a": {"$type": "string"}}, {"a": "a"}, True),
    ("$type string - fail", {"a": {"$type": "string"}}, {"a": 1}, False),
    ("$type null - pass", {"a": {"$type": "null"}}, {"a": None}, True),
    ("$type null - fail", {"a": {"$type": "null"}}, {"a": 1}, False),
    ("$type boolean - pass", {"a": {"$type": "boolean"}}, {"a": False}, True),
    ("$type boolean - fail", {"a": {"$type": "boolean"}}, {"a": 1}, False),
    ("$type number - pass", {"a": {"$type": "number"}}, {"a": 1}, True),
    ("$type number - fail", {"a": {"$type": "number"}}, {"a": "a"}, False),
    ("$type object - pass", {"a": {"$type": "object"}}, {"a": {"a": "b"}}, True),
    ("$type object - fail", {"a": {"$type": "object"}}, {"a": 1}, False),
    ("$type array - pass", {"a": {"$type": "array"}}, {"a": [1, 2]}, True),
    ("$type array - fail", {"a": {"$type": "array"}}, {"a": 1}, False),
    ("unknown operator - pass", {"name": {"$regx": "hello"}}, {"name": "hello"}, False),
    ("$regex invalid - pass", {"name": {"$regex": "/???***[)"}}, {"name": "hello"}, False),
    ("$regex invalid - fail", {"name": {"$regex": "/???***[)"}}, {"hello": "hello"}, False),
    ("$size empty - pass", {"tags": {"$size": 0}}, {"tags": []}, True),
    ("$size empty - fail", {"tags": {"$size": 0}}, {"tags": [10]}, False),
    ("$size number - pass", {"tags": {"$size": 3}}, {"tags": ["a", "b", "c"]}, True),
    ("$size number - fail small", {"tags": {"$size": 3}}, {"tags": ["a", "b"]}, False),
    ("$size number - fail large", {"tags": {"$size": 3}}, {"tags": ["a", "b", "c", "d"]}, False),
    ("$size number - fail not array", {"tags": {"$size": 3}}, {"tags": "abc"}, False),
    ("$size nested - pass", {"tags": {"$size": {"$gt": 2}}}, {"tags": [0, 1, 2]}, True),
    ("$size nested - fail equal", {"tags": {"$size": {"$gt": 2}}}, {"tags": [0, 1]}, False),
    ("$size nested - fail less than", {"tags": {"$size": {"$gt": 2}}}, {"tags": [0]}, False),
    ("$elemMatch contains - pass", {"tags": {"$elemMatch": {"$eq": "bar"}}}, {"tags": ["foo", "bar", "baz"]}, True),
    ("$elemMatch contains - false", {"tags": {"$elemMatch": {"$eq": "bar"}}}, {"tags": ["foo", "baz"]}, False),
    ("$elemMatch intersection - pass", {"tags": {"$elemMatch": {"$in": ["a", "b"]}}}, {"tags": ["d", "e", "b"]}, True),
    (
        "$elemMatch intersection - fail",
        {"tags": {"$elemMatch": {"$in": ["a", "b"]}}},
        {"tags": ["d", "e", "f"]},
        False,
    ),
    (
        "$elemMatch not contains - pass",
        {"tags": {"$not": {"$elemMatch": {"$eq": "bar"}}}},
        {"tags": ["foo", "baz"]},
        True,
    ),
    (
        "$elemMatch not contains - fail",
        {"tags": {"$not": {"$elemMatch": {"$eq": "bar"}}}},
        {"tags": ["foo", "bar", "baz"]},
        False,
    ),
    (
        "$elemMatch nested - pass",
        HOBBY,
        {"hobbies": [{"name": "bowling"}, {"name": "pingpong"}, {"name": "tennis"}]},
        True,
    ),
    ("$elemMatch nested - fail", HOBBY, {"hobbies": [{"name": "bowling"}, {"name": "tennis"}]}, False),
    ("$elemMatch nested - fail not array", HOBBY, {"hobbies": "all"}, False),
    ("$not - pass (operator)", {"name": {"$not": {"$regex": "^hello"}}}, {"name": "world"}, True),
    ("$not - fail (operator)", {"name": {"$not": {"$regex": "^hello"}}}, {"name": "hello world"}, False),
    ("$all - pass", {"tags": {"$all": ["one", "three"]}}, {"tags": ["one", "two", "three"]}, True),
    ("$all - fail", {"tags": {"$all": ["one", "three"]}}, {"tags": ["one", "two", "four"]}, False),
    ("$all - fail not array", {"tags": {"$all": ["one", "three"]}}, {"tags": "hello"}, False),
    ("$nor - pass", NOR, {"name": "jim", "age": 40}, True),
    ("$nor - fail both", NOR, {"name": "john", "age": 20}, False),
    ("$nor - fail first", NOR, {"name": "john", "age": 40}, False),
    ("$nor - fail second", NOR, {"name": "jim", "age": 20}, False),
    ("equals array - pass", {"tags": ["hello", "world"]}, {"tags": ["hello", "world"]}, True),
    ("equals array - fail order", {"tags": ["hello", "world"]}, {"tags": ["world", "hello"]}, False),
    ("equals array - fail missing item", {"tags": ["hello", "world"]}, {"tags": ["hello"]}, False),
    ("equals array - fail extra item", {"tags": ["hello", "world"]}, {"tags": ["hello", "world", "foo"]}, False),
    ("equals array - fail type mismatch", {"tags": ["hello", "world"]}, {"tags": "hello world"}, False),
    ("equals object - pass", {"tags": {"hello": "world"}}, {"tags": {"hello": "world"}}, True),
    (
        "equals object - fail extra property",
        {"tags": {"hello": "world"}},
        {"tags": {"hello": "world", "yes": "please"}},
        False,
    ),
    ("equals object - fail missing property", {"tags": {"hello": "world"}}, {"tags": {}}, False),
    ("equals object - fail type mismatch", {"tags": {"hello": "world"}}, {"tags": "hello world"}, False),
    ("null condition - null attribute", {"userId": None}, {"userId": None}, True),
    ("null condition - missing attribute", {"userId": None}, {}, True),
    ("null condition - string attribute", {"userId": None}, {"userId": "123"}, False),
    ("null condition - zero attribute", {"userId": None}, {"userId": 0}, False),
    ("null condition - empty string attribute", {"userId": None}, {"userId": ""}, False),
    ("$vgt/$vlt - pass - major", {"version": {"$vgt": "9.99.8", "$vlt": "11.0.1"}}, {"version": "10.12.13"}, True),
    ("$vgt/$vlt - pass - minor", {"version": {"$vgt": "10.2.11", "$vlt": "10.20.11"}}, {"version": "10.12.11"}, True),
    ("$vgt/$vlt - pass - patch", {"version": {"$vgt": "10.0.2", "$vlt": "10.0.20"}}, {"version": "10.0.12"}, True),
    ("$vgt/$vlt - fail $vlt - major", {"version": {"$vgt": "30.0.0", "$vlt": "50.0.0"}}, {"version": "60.0.0"}, False),
    (
        "$vgt/$vlt - fail $vgt - minor",
        {"version": {"$vgt": "10.30.0", "$vlt": "10.50.0"}},
        {"version": "10.20.0"},
        False,
    ),
    (
        "$vgt/$vlt - fail $vgt - patch",
        {"version": {"$vgt": "10.30.10", "$vlt": "10.30.20"}},
        {"version": "10.30.2"},
        False,
    ),
    ("$vgte/$vlte - pass $vgte", {"version": {"$vgte": "30.1.2", "$vlte": "60.1.2"}}, {"version": "30.1.2"}, True),
    ("$vgte/$vlte - pass $vlte", {"version": {"$vgte": "1.2.30", "$vlte": "1.2.60"}}, {"version": "1.2.60"}, True),
    ("$vgte/$vlte - fail $vlte", {"version": {"$vgte": "30.1.2", "$vlte": "60.1.2"}}, {"version": "61.1.2"}, False),
    (
        "$vgt/$vlt prerelease - fail $vgt",
        {"v": {"$vgt": "1.0.0-alpha", "$vlt": "1.0.0-beta"}},
        {"v": "1.0.0-alpha"},
        False,
    ),
    (
        "$vgt/$vlt prerelease - fail $vlt",
        {"v": {"$vgt": "1.0.0-alpha", "$vlt": "1.0.0-beta"}},
        {"v": "1.0.0-beta"},
        False,
    ),
    (
        "$vgt/$vlt prerelease - pass",
        {"v": {"$vgt": "1.0.0-alpha", "$vlt": "1.0.0-beta"}},
        {"v": "1.0.0-alpha.10"},
        True,
    ),
    (
        "$vgt/$vlt prerelease - fail uppercase",
        {"v": {"$vgt": "1.0.0-alpha", "$vlt": "1.0.0-beta"}},
        {"v": "1.0.0-ALPHA"},
        False,
    ),
    ("$veq - pass", {"v": {"$veq": "1.2.3"}}, {"v": "1.2.3"}, True),
    ("$veq - pass (with build)", {"v": {"$veq": "1.2.3"}}, {"v": "1.2.3+build.abc.123"}, True),
    ("$vne - pass", {"v": {"$vne": "1.2.3"}}, {"v": "2.2.3"}, True),
    ("$vne - pass (prerelease)", {"v": {"$vne": "1.2.3"}}, {"v": "1.2.3-alpha"}, True),
]


@pytest.mark.parametrize(("name", "condition", "attributes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_growthbook_cases(name: str, condition: dict[str, Any], attributes: dict[str, Any], expected: bool) -> None:
    assert matches(condition, attributes) is expected


def test_literals_compare_as_json_does() -> None:
    # true is not 1, 1 is 1.0, key order matters for objects (JSON.stringify)
    assert not matches({"premium": True}, {"premium": 1})
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
    for name, condition, _, _ in CASES:
        if "unknown operator" in name or "invalid" in name or ("not array" in name and "$size" not in name):
            continue
        check(condition)
