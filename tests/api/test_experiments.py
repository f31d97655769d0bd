"""Experiments over HTTP, as a product team uses them: define, start, stop, decide; the cap; stale ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import GenerationMode
from tests.api.test_openapi_fuzz import fuzz

from podium.api.app import create_app
from podium.core import Podium
from podium.experiments.assign import assign
from podium.experiments.service import get_experiment_row
from podium.store.db import utcnow

SHOP = "/api/v1/services/shop/environments/production"


@pytest.fixture
def growth(admin: TestClient, team_client: Callable[[str], TestClient]) -> TestClient:
    """Team ``growth``, owner of service ``shop``."""
    client = team_client("growth")
    admin.post("/api/v1/services", json={"name": "shop", "owner": "growth"}).raise_for_status()
    return client


@pytest.fixture
def search(team_client: Callable[[str], TestClient]) -> TestClient:
    """Another team, with no grant on ``shop``."""
    return team_client("search")


def create(client: TestClient, key: str = "big-button", **fields: Any) -> Any:
    body = {"key": key, "hypothesis": "A larger sign-up button increases registrations", "metric": "signup", **fields}
    response = client.post(f"{SHOP}/experiments", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def audit_actions(admin: TestClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = admin.get("/api/v1/audit", params={"service": "shop"}).json()
    return events


def test_a_draft_is_created_with_the_cap_as_coverage_and_shown(growth: TestClient) -> None:
    made = create(growth, guardrails=["error"])
    assert made["status"] == "draft"
    assert (made["coverage"], made["cap"]) == (0.02, 0.02)
    assert (made["variants"], made["weights"]) == (["control", "treatment"], [0.5, 0.5])
    assert (made["seed"], made["hash_version"], made["guardrails"]) == ("big-button", 2, ["error"])
    assert made["cap_override"] is None
    assert made["decision"] is None
    assert made["created_by"] == "growth"
    assert growth.get(f"{SHOP}/experiments/big-button").json() == made
    assert [e["key"] for e in growth.get(f"{SHOP}/experiments").json()] == ["big-button"]
    duplicate = growth.post(f"{SHOP}/experiments", json={"key": "big-button", "metric": "signup"})
    assert duplicate.status_code == 409
    assert "exists already" in duplicate.json()["detail"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": "Big Button"}, "invalid experiment key 'Big Button'"),
        ({"variants": ["only"]}, "2 to 20 variants"),
        ({"variants": ["a", "a"]}, "variant names must differ"),
        ({"weights": [0.7, 0.7]}, "weights must sum to 1"),
        ({"weights": [1.0]}, "weights has 1 values for 2 variants"),
        ({"weights": [1.2, -0.2]}, "each weight must be a number ≥ 0"),
        ({"coverage": 0}, "coverage must be a number in (0, 1]"),
        ({"coverage": 1.5}, "coverage must be a number in (0, 1]"),
        ({"hash_version": 3}, "hash_version must be 1 or 2"),
        ({"namespace": ["ns", 0.6, 0.4]}, "0 ≤ start < end ≤ 1"),
        ({"metric_kind": "ratio"}, "metric_kind must be binomial or numeric"),
        ({"conditions": {"age": {"$between": [1, 2]}}}, "unknown operator $between"),
        ({"metric": ""}, "metric must not be empty"),
    ],
)
def test_bad_definitions_are_refused_with_the_rule(
    growth: TestClient, admin: TestClient, fields: dict[str, Any], message: str
) -> None:
    body = {"key": "k", "metric": "signup", **fields}
    response = growth.post(f"{SHOP}/experiments", json=body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert growth.get(f"{SHOP}/experiments").json() == []


def test_coverage_above_the_cap_needs_an_override_with_a_reason(growth: TestClient, admin: TestClient) -> None:
    refused = growth.post(f"{SHOP}/experiments", json={"key": "wide", "metric": "signup", "coverage": 0.1})
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "coverage 0.1 is above the exposure cap 0.02: lower it, or pass override_cap with a reason "
        "to exceed the cap on purpose"
    )
    no_reason = growth.post(
        f"{SHOP}/experiments", json={"key": "wide", "metric": "signup", "coverage": 0.1, "override_cap": True}
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"] == "an override of the exposure cap needs a reason"
    assert growth.get(f"{SHOP}/experiments").json() == []

    made = create(growth, "wide", coverage=0.1, override_cap=True, reason="launch week, checked with support")
    assert made["cap_override"]["by"] == "growth"
    assert made["cap_override"]["reason"] == "launch week, checked with support"
    started = growth.post(f"{SHOP}/experiments/wide/start")
    assert started.status_code == 200
    assert started.json()["cap_override"]["reason"] == "launch week, checked with support"
    created = next(e for e in audit_actions(admin) if e["action"] == "experiment.create")
    assert created["after"]["cap_override"]["reason"] == "launch week, checked with support"
    assert created["team"] == "growth"

    # Raising a running experiment's coverage again needs a new override.
    raised = growth.patch(f"{SHOP}/experiments/wide", json={"coverage": 0.2})
    assert raised.status_code == 422
    assert "exposure cap 0.02" in raised.json()["detail"]
    assert growth.get(f"{SHOP}/experiments/wide").json()["coverage"] == 0.1
    again = growth.patch(
        f"{SHOP}/experiments/wide", json={"coverage": 0.2, "override_cap": True, "reason": "support agreed"}
    )
    assert again.status_code == 200
    assert again.json()["cap_override"]["reason"] == "support agreed"


def test_starting_a_draft_above_a_lowered_cap_is_refused(
    core: Podium, growth: TestClient, admin: TestClient
) -> None:
    create(growth, "k", coverage=0.02)
    core.settings.experiments_exposure_cap = 0.01  # the platform team lowered the cap since
    try:
        refused = growth.post(f"{SHOP}/experiments/k/start", json={})
        assert refused.status_code == 422
        assert "exposure cap 0.01" in refused.json()["detail"]
        assert growth.get(f"{SHOP}/experiments/k").json()["status"] == "draft"
        started = growth.post(f"{SHOP}/experiments/k/start", json={"override_cap": True, "reason": "agreed before"})
        assert started.json()["status"] == "running"
        assert started.json()["cap_override"]["reason"] == "agreed before"
    finally:
        core.settings.experiments_exposure_cap = 0.02


def test_lifecycle_records_who_when_and_why(growth: TestClient, admin: TestClient) -> None:
    create(growth)
    started = growth.post(f"{SHOP}/experiments/big-button/start").json()
    assert (started["status"], started["started_by"]) == ("running", "growth")
    assert started["started_at"] is not None
    stopped = growth.post(f"{SHOP}/experiments/big-button/stop", json={"reason": "enough users"}).json()
    assert (stopped["status"], stopped["stopped_by"], stopped["stop_reason"]) == ("stopped", "growth", "enough users")
    decided = growth.post(
        f"{SHOP}/experiments/big-button/decide",
        json={"decision": "ship", "variant": "treatment", "reason": "+12% sign-ups, p = 0.01"},
    ).json()
    assert decided["status"] == "decided"
    assert {k: decided["decision"][k] for k in ("decision", "variant", "by", "reason")} == {
        "decision": "ship", "variant": "treatment", "by": "growth", "reason": "+12% sign-ups, p = 0.01",
    }
    actions = [e["action"] for e in audit_actions(admin)]
    assert actions[:4] == ["experiment.decide", "experiment.stop", "experiment.start", "experiment.create"]
    decide_event = audit_actions(admin)[0]
    assert decide_event["before"]["status"] == "stopped"
    assert decide_event["after"]["decision_reason"] == "+12% sign-ups, p = 0.01"


@pytest.mark.parametrize(
    ("setup", "verb", "body", "message"),
    [
        ([], "stop", {}, "cannot stop experiment 'k': it is draft (only a running experiment can)"),
        ([], "decide", {"decision": "discard", "reason": "no"}, "it is draft"),
        (["start"], "start", {}, "cannot start experiment 'k': it is running (only a draft experiment can)"),
        (["start", "stop"], "stop", {}, "it is stopped"),
        (["start", "stop"], "start", {}, "it is stopped"),
    ],
)
def test_illegal_transitions_are_refused_with_the_current_state(
    growth: TestClient, setup: list[str], verb: str, body: dict[str, Any], message: str
) -> None:
    create(growth, "k")
    for step in setup:
        growth.post(f"{SHOP}/experiments/k/{step}").raise_for_status()
    before = growth.get(f"{SHOP}/experiments/k").json()
    response = growth.post(f"{SHOP}/experiments/k/{verb}", json=body)
    assert response.status_code == 409
    assert message in response.json()["detail"]
    assert growth.get(f"{SHOP}/experiments/k").json() == before


def test_decisions_need_a_reason_and_a_real_variant(growth: TestClient) -> None:
    create(growth, "k")
    growth.post(f"{SHOP}/experiments/k/start").raise_for_status()
    cases = [
        ({"decision": "ship", "variant": "treatment", "reason": " "}, "a decision needs a reason"),
        ({"decision": "ship", "variant": "blue", "reason": "r"}, "no variant 'blue': use one of control, treatment"),
        ({"decision": "ship", "reason": "r"}, "ship needs the variant to ship"),
        ({"decision": "discard", "variant": "treatment", "reason": "r"}, "discard takes no variant"),
        ({"decision": "maybe", "reason": "r"}, "decision must be ship or discard"),
    ]
    for body, message in cases:
        response = growth.post(f"{SHOP}/experiments/k/decide", json=body)
        assert response.status_code == 422, body
        assert message in response.json()["detail"]
    assert growth.get(f"{SHOP}/experiments/k").json()["status"] == "running"
    discarded = growth.post(f"{SHOP}/experiments/k/decide", json={"decision": "discard", "reason": "no lift"})
    assert discarded.json()["decision"]["variant"] is None


def test_a_running_experiment_changes_only_what_keeps_its_results_sound(growth: TestClient) -> None:
    create(growth, "k", guardrails=["error"])
    draft_edit = growth.patch(f"{SHOP}/experiments/k", json={"variants": ["control", "big", "huge"]})
    assert draft_edit.json()["weights"] == pytest.approx([1 / 3] * 3)
    growth.patch(f"{SHOP}/experiments/k", json={"weights": [0.5, 0.25, 0.25]}).raise_for_status()
    growth.post(f"{SHOP}/experiments/k/start").raise_for_status()
    refused = growth.patch(f"{SHOP}/experiments/k", json={"weights": [0.4, 0.3, 0.3]})
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "experiment 'k' is running: only conditions, coverage, cuped, guardrails, hypothesis, sequential may change, "
        "not weights"
    )
    edited = growth.patch(
        f"{SHOP}/experiments/k",
        json={"hypothesis": "Bigger is better", "coverage": 0.01, "conditions": {"country": "FR"},
              "guardrails": ["error", "latency"], "variants": ["control", "big", "huge"]},  # variants unchanged
    )
    assert edited.status_code == 200, edited.text
    shown = edited.json()
    assert shown["weights"] == [0.5, 0.25, 0.25]  # variants sent unchanged leave the weights alone
    assert (shown["hypothesis"], shown["coverage"]) == ("Bigger is better", 0.01)
    assert shown["conditions"] == {"country": "FR"}
    assert shown["guardrails"] == ["error", "latency"]


def test_only_drafts_are_deleted(growth: TestClient) -> None:
    create(growth, "draft")
    create(growth, "ran")
    growth.post(f"{SHOP}/experiments/ran/start").raise_for_status()
    assert growth.delete(f"{SHOP}/experiments/draft").status_code == 204
    refused = growth.delete(f"{SHOP}/experiments/ran")
    assert refused.status_code == 409
    assert "only a draft can be deleted" in refused.json()["detail"]
    assert [e["key"] for e in growth.get(f"{SHOP}/experiments").json()] == ["ran"]


def test_a_foreign_team_changes_nothing(growth: TestClient, search: TestClient, admin: TestClient) -> None:
    create(growth, "k")
    growth.post(f"{SHOP}/flags", json={"key": "f"}).raise_for_status()
    before = (growth.get(f"{SHOP}/experiments").json(), growth.get(f"{SHOP}/flags").json(), audit_actions(admin))
    attempts = [
        ("POST", f"{SHOP}/experiments", {"key": "mine", "metric": "signup"}),
        ("PATCH", f"{SHOP}/experiments/k", {"hypothesis": "hijacked"}),
        ("POST", f"{SHOP}/experiments/k/start", {}),
        ("POST", f"{SHOP}/experiments/k/stop", {}),
        ("POST", f"{SHOP}/experiments/k/decide", {"decision": "discard", "reason": "x"}),
        ("DELETE", f"{SHOP}/experiments/k", None),
        ("POST", f"{SHOP}/flags", {"key": "mine"}),
        ("PATCH", f"{SHOP}/flags/f", {"enabled": True}),
        ("DELETE", f"{SHOP}/flags/f", None),
    ]
    for method, url, body in attempts:
        response = search.request(method, url, json=body)
        assert response.status_code == 403, (method, url, response.text)
        assert "team 'search' may not change service 'shop' owned by 'growth'" in response.json()["detail"]
    after = (growth.get(f"{SHOP}/experiments").json(), growth.get(f"{SHOP}/flags").json(), audit_actions(admin))
    assert after == before


def test_a_config_grant_lets_another_team_run_experiments(
    growth: TestClient, search: TestClient, admin: TestClient
) -> None:
    growth.post(
        "/api/v1/services/shop/grants", json={"team": "search", "rights": ["config"], "duration": "1d"}
    ).raise_for_status()
    made = create(search, "theirs")
    assert made["created_by"] == "search"
    assert search.post(f"{SHOP}/experiments/theirs/start").json()["started_by"] == "search"


def test_stale_experiments_across_the_team_services(
    core: Podium, growth: TestClient, admin: TestClient
) -> None:
    admin.post("/api/v1/services", json={"name": "cart", "owner": "growth"}).raise_for_status()
    create(growth, "old")
    create(growth, "fresh")
    create(growth, "never-started")
    cart = "/api/v1/services/cart/environments/staging/experiments"
    growth.post(cart, json={"key": "old-cart", "metric": "checkout"}).raise_for_status()
    for url in (f"{SHOP}/experiments/old", f"{SHOP}/experiments/fresh", f"{cart}/old-cart"):
        growth.post(f"{url}/start").raise_for_status()
    with core.store.session() as session:
        get_experiment_row(session, "shop", "production", "old").started_at = utcnow() - timedelta(days=20)
        get_experiment_row(session, "cart", "staging", "old-cart").started_at = utcnow() - timedelta(days=15)
    stale = growth.get("/api/v1/teams/growth/experiments", params={"stale": "true"}).json()
    assert [(e["service"], e["env"], e["key"]) for e in stale] == [
        ("cart", "staging", "old-cart"), ("shop", "production", "old"),
    ]
    assert all(e["stale"] for e in stale)
    everything = growth.get("/api/v1/teams/growth/experiments").json()
    assert len(everything) == 4
    assert growth.get(f"{SHOP}/experiments/fresh").json()["stale"] is False
    growth.post(f"{SHOP}/experiments/old/decide", json={"decision": "discard", "reason": "no lift"})
    assert [e["key"] for e in growth.get("/api/v1/teams/growth/experiments?stale=true").json()] == ["old-cart"]
    assert growth.get("/api/v1/teams/nobody/experiments").status_code == 404


def test_definitions_leave_drafts_out_and_answer_304_while_unchanged(growth: TestClient, search: TestClient) -> None:
    create(growth, "draft")
    create(growth, "live", conditions={"country": "FR"})
    growth.post(f"{SHOP}/experiments/live/start").raise_for_status()
    growth.post(f"{SHOP}/flags", json={"key": "new-checkout", "enabled": True, "rollout": 0.1}).raise_for_status()

    first = search.get(f"{SHOP}/definitions")  # any team may read
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    document = first.json()
    assert (document["service"], document["env"]) == ("shop", "production")
    assert document["experiments"] == [{
        "key": "live", "status": "running", "variants": ["control", "treatment"], "weights": [0.5, 0.5],
        "coverage": 0.02, "seed": "live", "hash_version": 2, "namespace": None, "conditions": {"country": "FR"},
        "force": None,
    }]
    assert document["flags"] == [{
        "key": "new-checkout", "enabled": True, "value": True, "default_value": False, "rollout": 0.1, "rules": [],
    }]
    unchanged = search.get(f"{SHOP}/definitions", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag

    growth.post(f"{SHOP}/experiments/live/stop").raise_for_status()
    changed = search.get(f"{SHOP}/definitions", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["experiments"][0]["force"] == "control"
    growth.post(f"{SHOP}/experiments/live/decide", json={"decision": "ship", "variant": "treatment", "reason": "r"})
    assert search.get(f"{SHOP}/definitions").json()["experiments"][0]["force"] == "treatment"


def test_numbers_json_cannot_carry_are_refused(growth: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    bodies = ('{"key": "k", "metric": "m", "coverage": NaN}', '{"key": "k", "metric": "m", "weights": [Infinity, 0]}')
    for body in bodies:
        response = growth.post(f"{SHOP}/experiments", content=body, headers=json_type)
        assert response.status_code == 422, response.text
    flag = growth.post(f"{SHOP}/flags", content='{"key": "f", "value": NaN}', headers=json_type)
    assert flag.status_code == 422
    assert "without NaN" in flag.json()["detail"]
    assert growth.get(f"{SHOP}/experiments").json() == []


def test_definitions_of_what_does_not_exist(growth: TestClient, api: TestClient) -> None:
    assert growth.get("/api/v1/services/nope/environments/production/definitions").status_code == 404
    assert growth.get("/api/v1/services/shop/environments/qa/definitions").status_code == 404
    assert api.get(f"{SHOP}/definitions").status_code == 401


def test_evaluate_gives_what_growthbook_would(growth: TestClient) -> None:
    everyone = {"coverage": 1.0, "override_cap": True, "reason": "a test shop"}
    create(growth, "half", **everyone)
    create(growth, "french", conditions={"country": "FR"}, **everyone)
    create(growth, "draft")
    for key in ("half", "french"):
        growth.post(f"{SHOP}/experiments/{key}/start").raise_for_status()
    variants = ["control", "treatment"]
    for user in ("u1", "u2", "u3", "alice"):
        answer = growth.get(f"{SHOP}/evaluate", params={"user_id": user}).json()
        assert answer == {"french": None, "half": assign("half", user, variants, None, 1.0)}
        french = growth.get(f"{SHOP}/evaluate", params={"user_id": user, "attributes": '{"country": "FR"}'}).json()
        assert french["french"] == assign("french", user, variants, None, 1.0)
        assert french["french"] in variants
    bad = growth.get(f"{SHOP}/evaluate", params={"user_id": "u1", "attributes": "[1]"})
    assert bad.status_code == 422
    assert bad.json()["detail"] == 'attributes must be a JSON object, e.g. {"country": "FR"}'
    assert growth.get(f"{SHOP}/evaluate").status_code == 422  # no user_id


def test_flags_lifecycle_and_evaluation(growth: TestClient, admin: TestClient) -> None:
    made = growth.post(
        f"{SHOP}/flags",
        json={"key": "new-checkout", "description": "the one-page checkout", "value": "v2", "default_value": "v1",
              "rules": [{"condition": {"beta": True}, "value": "v3"}]},
    )
    assert made.status_code == 201, made.text
    assert made.json()["enabled"] is False
    assert growth.get(f"{SHOP}/evaluate/flags", params={"user_id": "u1"}).json() == {"new-checkout": "v1"}
    growth.patch(f"{SHOP}/flags/new-checkout", json={"enabled": True}).raise_for_status()
    assert growth.get(f"{SHOP}/evaluate/flags", params={"user_id": "u1"}).json() == {"new-checkout": "v2"}
    beta = growth.get(f"{SHOP}/evaluate/flags", params={"user_id": "u1", "attributes": '{"beta": true}'})
    assert beta.json() == {"new-checkout": "v3"}
    off = growth.patch(f"{SHOP}/flags/new-checkout", json={"rollout": 0.0}).json()
    assert off["rollout"] == 0.0
    assert growth.get(f"{SHOP}/evaluate/flags", params={"user_id": "u1"}).json() == {"new-checkout": "v1"}
    assert growth.get(f"{SHOP}/flags/new-checkout").json()["description"] == "the one-page checkout"
    for body, message in [
        ({"rollout": 2}, "rollout must be a number in [0, 1]"),
        ({"rules": [{"condition": {"age": {"$older": 3}}, "value": 1}]}, "unknown operator $older"),
    ]:
        refused = growth.patch(f"{SHOP}/flags/new-checkout", json=body)
        assert refused.status_code == 422
        assert message in refused.json()["detail"]
    assert growth.delete(f"{SHOP}/flags/new-checkout").status_code == 204
    assert growth.get(f"{SHOP}/flags/new-checkout").status_code == 404
    actions = [e["action"] for e in audit_actions(admin) if e["action"].startswith("flag.")]
    assert actions == ["flag.delete", "flag.update", "flag.update", "flag.create"]


def test_generated_input_never_answers_5xx(core: Podium, admin_token: str, growth: TestClient) -> None:
    """schemathesis drives every experiments route on a service environment that exists, with an
    experiment and a flag the key names: no input, fitting the schema or not, gives a 5xx."""
    create(growth, "k")
    growth.post(f"{SHOP}/flags", json={"key": "k"}).raise_for_status()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(core)).include(tag="experiments")
    headers = {"Authorization": f"Bearer {admin_token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        fixed = {k: v for k, v in {"service": "shop", "env": "production", "key": "k", "team": "growth"}.items()
                 if k in names}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures.append(fuzz(operation, mode, headers, **fixed) or "")
    found = [f for f in failures if f]
    assert not found, "\n\n".join(found)
