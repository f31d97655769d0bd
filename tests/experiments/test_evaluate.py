"""Answers from a definitions document, as the SDK and the evaluate endpoint give them."""

from __future__ import annotations

from typing import Any

from growthbook import Experiment, GrowthBook

from podium.experiments.assign import assign, hash
from podium.experiments.evaluate import Assignment, Evaluator

USERS = [f"user-{i}" for i in range(2000)]


def experiment(key: str = "big-button", **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "key": key,
        "status": "running",
        "variants": ["control", "treatment"],
        "weights": [0.5, 0.5],
        "coverage": 1.0,
        "seed": key,
        "hash_version": 2,
        "namespace": None,
        "conditions": {},
        "force": None,
    }
    entry.update(fields)
    return entry


def flag(key: str = "new-checkout", **fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "key": key,
        "enabled": True,
        "value": True,
        "default_value": False,
        "rollout": 1.0,
        "rules": [],
    }
    entry.update(fields)
    return entry


def document(experiments: list[dict[str, Any]] = (), flags: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {"service": "shop", "env": "production", "experiments": list(experiments), "flags": list(flags)}


def test_running_experiment_assigns_as_growthbook_does() -> None:
    ev = Evaluator(document([experiment(coverage=0.3, weights=[0.2, 0.8], seed="s1")]))
    gb_experiment = Experiment(key="big-button", variations=["control", "treatment"], weights=[0.2, 0.8], coverage=0.3)
    gb_experiment.seed = "s1"
    gb_experiment.hashVersion = 2
    for user in USERS[:500]:
        gb = GrowthBook(attributes={"id": user})
        result = gb.run(gb_experiment)
        expected = result.value if result.inExperiment else None
        assert ev.variant("big-button", user) == expected
        assert ev.variant("big-button", user) == assign(
            "big-button", user, ["control", "treatment"], [0.2, 0.8], 0.3, "s1", 2
        )


def test_exposure_only_for_a_running_experiment_that_gave_a_variant() -> None:
    ev = Evaluator(document([experiment(coverage=0.5)]))
    answers = [ev.assignment("big-button", u) for u in USERS]
    exposed = [a for a in answers if a.variant is not None]
    assert all(a.exposure for a in exposed)
    assert all(not a.exposure for a in answers if a.variant is None)
    assert 0.45 < len(exposed) / len(USERS) < 0.55
    assert ev.exposure_needed("big-button")


def test_forced_variant_for_everyone_without_exposure() -> None:
    ev = Evaluator(
        document(
            [
                experiment("stopped", status="stopped", force="control", coverage=0.01),
                experiment("shipped", status="decided", force="treatment", conditions={"country": "FR"}),
            ]
        )
    )
    for user in USERS[:100]:
        assert ev.assignment("stopped", user) == Assignment("control", False)
        assert ev.assignment("shipped", user, {"country": "DE"}) == Assignment("treatment", False)
    assert not ev.exposure_needed("stopped")
    assert not ev.exposure_needed("shipped")


def test_unknown_and_draft_experiments_give_none() -> None:
    ev = Evaluator(document([experiment("draft", status="draft")]))
    assert ev.variant("nope", "u1") is None
    assert ev.variant("draft", "u1") is None
    assert not ev.exposure_needed("nope")
    assert ev.assignment("nope", "u1") == Assignment(None, False)


def test_conditions_gate_the_experiment_and_see_the_user_id() -> None:
    ev = Evaluator(document([experiment(conditions={"profession": {"$in": ["marketing", "sales"]}})]))
    marketing = [ev.variant("big-button", u, {"profession": "marketing"}) for u in USERS[:200]]
    assert all(v is not None for v in marketing)
    assert all(ev.variant("big-button", u, {"profession": "dev"}) is None for u in USERS[:200])
    assert all(ev.variant("big-button", u) is None for u in USERS[:200])
    by_id = Evaluator(document([experiment(conditions={"id": {"$regex": "^user-1"}})]))
    assert by_id.variant("big-button", "user-12") is not None
    assert by_id.variant("big-button", "user-22") is None


def test_namespace_and_hash_version_1() -> None:
    ev = Evaluator(document([experiment(namespace=["pricing", 0.0, 0.5], hash_version=1)]))
    for user in USERS[:300]:
        expected = assign(
            "big-button", user, ["control", "treatment"], [0.5, 0.5], 1.0, "big-button", 1, ("pricing", 0.0, 0.5)
        )
        assert ev.variant("big-button", user) == expected


def test_variants_lists_every_experiment() -> None:
    ev = Evaluator(document([experiment("a"), experiment("b", status="stopped", force="control")]))
    assert ev.experiments() == ["a", "b"]
    answers = ev.variants("u1")
    assert set(answers) == {"a", "b"}
    assert answers["b"] == "control"
    assert answers["a"] in ("control", "treatment")


def test_flag_disabled_gives_default_value() -> None:
    ev = Evaluator(document(flags=[flag(enabled=False, value="blue", default_value="grey")]))
    assert ev.flag("new-checkout", "u1") == "grey"


def test_flag_first_matching_rule_wins() -> None:
    rules = [
        {"condition": {"country": "FR"}, "value": "fr"},
        {"condition": {"country": {"$in": ["FR", "DE"]}}, "value": "eu"},
    ]
    ev = Evaluator(document(flags=[flag(value="all", default_value="none", rollout=0.0, rules=rules)]))
    assert ev.flag("new-checkout", "u1", {"country": "FR"}) == "fr"
    assert ev.flag("new-checkout", "u1", {"country": "DE"}) == "eu"
    assert ev.flag("new-checkout", "u1", {"country": "US"}) == "none"


def test_flag_rollout_follows_the_user_hash() -> None:
    ev = Evaluator(document(flags=[flag(rollout=0.1)]))
    on = [u for u in USERS if ev.flag("new-checkout", u)]
    assert on == [u for u in USERS if (hash("new-checkout", u, 2) or 0) < 0.1]
    assert 0.08 < len(on) / len(USERS) < 0.12
    # The same users stay on as the rollout grows.
    wider = Evaluator(document(flags=[flag(rollout=0.5)]))
    assert all(wider.flag("new-checkout", u) for u in on)


def test_unknown_flag_gives_the_callers_default() -> None:
    ev = Evaluator(document(flags=[flag()]))
    assert ev.flag("missing", "u1", default="fallback") == "fallback"
    assert ev.flags() == ["new-checkout"]


def test_malformed_entries_are_left_out_not_raised() -> None:
    ev = Evaluator(
        {
            "experiments": [{"key": "no-variants"}, "junk", experiment("ok"), experiment("bad", coverage="x")],
            "flags": [{"nokey": 1}, flag("ok-flag", rules=[{"condition": {"$and": 3}, "value": 1}])],
        }
    )
    assert ev.experiments() == ["ok"]
    assert ev.variant("no-variants", "u1") is None
    assert ev.flag("ok-flag", "u1") is True  # the broken rule never matches
    assert Evaluator(None).experiments() == []
