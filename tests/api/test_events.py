"""POST /api/v1/events and the results route, as an app's team uses them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from podium.api.app import create_app
from podium.catalog.auth import authenticate
from podium.catalog.models import Environment, Service
from podium.core import Podium
from podium.experiments.models import ExperimentEvent
from podium.experiments.service import ExperimentService

API = "/api/v1"
RESULTS = f"{API}/services/shop/environments/production/experiments/big-button/results"


@pytest.fixture
def owner(admin: TestClient, team_client: Callable[[str], TestClient]) -> TestClient:
    client = team_client("shop-team")
    admin.post(f"{API}/services", json={"name": "shop", "owner": "shop-team"}).raise_for_status()
    return client


def count(core: Podium) -> int:
    with core.store.session() as session:
        return session.scalar(select(func.count()).select_from(ExperimentEvent)) or 0


def batch(*events: dict[str, Any], service: str = "shop", env: str = "production") -> dict[str, Any]:
    return {"service": service, "env": env, "events": list(events)}


EXPOSURE = {"id": "6f1c", "type": "exposure", "user_id": "u1", "experiment": "big-button", "variant": "treatment",
            "attributes": {"profession": "marketing"}, "at": "2026-12-03T10:00:00Z"}
SIGNUP = {"id": "7a2d", "type": "metric", "user_id": "u1", "name": "signup", "value": 1.0,
          "at": "2026-12-03T10:01:00Z"}


def test_the_owning_team_sends_a_batch_and_a_retry_adds_nothing(owner: TestClient, core: Podium) -> None:
    sent = owner.post(f"{API}/events", json=batch(EXPOSURE, SIGNUP, {"id": "x", "type": "metric"}))
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"accepted": 2, "duplicates": 0,
                           "rejected": [{"index": 2, "reason": "user_id must be a non-empty string"}]}
    retried = owner.post(f"{API}/events", json=batch(EXPOSURE, SIGNUP))
    assert retried.json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    assert count(core) == 2


def test_a_foreign_team_is_refused_and_nothing_is_stored(
    owner: TestClient, team_client: Callable[[str], TestClient], core: Podium
) -> None:
    foreign = team_client("foreign-team")
    refused = foreign.post(f"{API}/events", json=batch(EXPOSURE, SIGNUP))
    assert refused.status_code == 403
    assert "may not change service 'shop'" in refused.json()["detail"]
    assert count(core) == 0


@pytest.mark.parametrize(("body", "status", "detail"), [
    (batch(SIGNUP, service="nope"), 404, "service 'nope' not found"),
    (batch(SIGNUP, env="qa"), 422, "env must be one of staging, production"),
    ({"service": "shop", "env": "production", "events": {"id": "x"}}, 422, None),
    ({"service": "shop", "env": "production"}, 422, None),
    (batch(*[dict(SIGNUP, id=str(i)) for i in range(10_001)]), 413, "at most 10,000 events"),
])
def test_a_bad_envelope_refuses_the_whole_batch(
    owner: TestClient, core: Podium, body: dict[str, Any], status: int, detail: str | None
) -> None:
    response = owner.post(f"{API}/events", json=body)
    assert response.status_code == status, response.text
    if detail is not None:
        assert detail in response.json()["detail"]
    assert count(core) == 0


def test_events_need_a_token(api: TestClient, owner: TestClient, core: Podium) -> None:
    assert api.post(f"{API}/events", json=batch(SIGNUP)).status_code == 401
    assert count(core) == 0


def test_any_team_reads_results_after_the_app_sent_events(
    owner: TestClient, team_client: Callable[[str], TestClient], core: Podium
) -> None:
    with core.store.session() as session:
        admin = authenticate(session, core.settings.admin_token_path.read_text().strip())
    experiments = ExperimentService(core.settings, core.store)
    experiments.create(admin, "shop", "production", "big-button", metric="signup", guardrails=["error"])
    experiments.start(admin, "shop", "production", "big-button")
    events = []
    for i in range(300):
        variant = "control" if i % 2 else "treatment"
        events.append({"id": f"x{i}", "type": "exposure", "user_id": f"u{i}", "experiment": "big-button",
                       "variant": variant, "attributes": {"profession": "marketing" if i % 3 == 0 else "dev"}})
        if i % 4 == 0:
            events.append({"id": f"s{i}", "type": "metric", "user_id": f"u{i}", "name": "signup"})
    assert owner.post(f"{API}/events", json=batch(*events)).json()["accepted"] == 375

    reader = team_client("someone-else")
    response = reader.get(RESULTS, params={"segment": "profession=marketing"})
    assert response.status_code == 200, response.text
    results = response.json()
    assert (results["experiment"], results["service"], results["env"]) == ("big-button", "shop", "production")
    assert (results["metric"], results["kind"], results["status"]) == ("signup", "binomial", "running")
    control, treatment = results["variants"]
    assert (control["name"], control["users"], control["conversions"]) == ("control", 150, 0)
    assert (treatment["name"], treatment["users"], treatment["conversions"]) == ("treatment", 150, 75)
    assert treatment["rate"] == 0.5
    assert set(treatment) >= {"lift", "ci_low", "ci_high", "p_value", "chance_to_beat_control"}
    assert results["srm_p_value"] == 1.0
    assert results["srm_mismatch"] is False
    assert [g["metric"] for g in results["guardrails"]] == ["error"]
    segment = results["segment"]
    assert (segment["attribute"], segment["value"]) == ("profession", "marketing")
    assert [v["users"] for v in segment["segment"]["variants"]] == [50, 50]
    assert [v["users"] for v in segment["rest"]["variants"]] == [100, 100]

    other_metric = reader.get(RESULTS, params={"metric": "error"}).json()
    assert other_metric["metric"] == "error"
    assert other_metric["variants"][1]["conversions"] == 0
    assert reader.get(RESULTS, params={"segment": "no-equals-sign"}).status_code == 422
    missing = reader.get(f"{API}/services/shop/environments/production/experiments/nope/results")
    assert missing.status_code == 404


def test_the_environments_app_token_sends_events_and_no_other(owner: TestClient, core: Podium) -> None:
    with core.store.session() as session:
        ids = dict(session.execute(
            select(Environment.name, Environment.id).join(Service).where(Service.name == "shop")
        ).all())
    production, staging = (core.app_tokens.token_for(ids[env]) for env in ("production", "staging"))
    with TestClient(create_app(core), headers={"Authorization": f"Bearer {production}"}) as app:
        sent = app.post(f"{API}/events", json=batch(EXPOSURE, SIGNUP))
        assert sent.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    with TestClient(create_app(core), headers={"Authorization": f"Bearer {staging}"}) as app:
        refused = app.post(f"{API}/events", json=batch(dict(SIGNUP, id="other")))
        assert refused.status_code == 403
        assert "belongs to shop/staging" in refused.json()["detail"]
    assert count(core) == 2
