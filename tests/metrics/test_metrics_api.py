"""The metrics API on incidents, maintenance and releases written straight into the store."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from tests.metrics.support import Seed

from podium.deploy.models import ReleaseCause

MIN = 60.0
DAY = 86400.0
MONTH = 30 * DAY


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def cart(seed: Seed, now: datetime) -> Seed:
    """Service cart of team checkout with a known month: 50 min down, 20 min of maintenance."""
    seed.service("cart", "checkout")
    day5 = now - timedelta(days=5)
    seed.incident("cart", day5, day5 + timedelta(minutes=30), acknowledged=day5 + timedelta(minutes=5))
    seed.incident("cart", day5 + timedelta(minutes=20), day5 + timedelta(minutes=40))  # overlaps the first
    seed.incident("cart", now - timedelta(days=2), now - timedelta(days=2, minutes=-60), env="staging")
    day1 = now - timedelta(days=1)
    seed.incident("cart", day1, day1 + timedelta(minutes=20), env=None)  # no environment: counts everywhere
    seed.maintenance("cart", day1 + timedelta(minutes=10), day1 + timedelta(minutes=30))
    seed.incident("cart", now - timedelta(days=45), now - timedelta(days=44))  # before the period
    return seed


def test_availability_of_a_service(cart: Seed) -> None:
    answer = cart.team("checkout").get("/api/v1/metrics/availability", params={"service": "cart"}).json()
    observed = MONTH - 20 * MIN
    assert answer["service"] == "cart"
    assert answer["environment"] == "production"
    assert answer["incidents"] == 3
    assert answer["downtime_seconds"] == pytest.approx(50 * MIN)  # 40 min merged, then 10 min outside maintenance
    assert answer["observed_seconds"] == pytest.approx(observed)
    assert answer["availability"] == pytest.approx(1 - 50 * MIN / observed)
    assert answer["weighted_availability"] == pytest.approx(answer["availability"])
    assert answer["mttr_seconds"] == pytest.approx((30 + 20 + 20) / 3 * MIN)
    assert answer["mttr_median_seconds"] == pytest.approx(20 * MIN)
    assert answer["mtta_seconds"] == pytest.approx(5 * MIN)
    assert answer["mtbf_seconds"] == pytest.approx(4 * DAY - 40 * MIN)
    assert sum(week["incidents"] for week in answer["weekly"]) == 3
    assert all(week["week"].count("-W") == 1 for week in answer["weekly"])
    assert datetime.fromisoformat(answer["weekly"][0]["week_start"]).weekday() == 0


def test_staging_has_its_own_numbers(cart: Seed) -> None:
    answer = cart.admin.get("/api/v1/metrics/availability", params={"service": "cart", "env": "staging"}).json()
    assert answer["incidents"] == 2  # the staging one and the one with no environment
    assert answer["downtime_seconds"] == pytest.approx(60 * MIN + 10 * MIN)


def test_a_team_pools_its_services_and_all_covers_every_team(cart: Seed, now: datetime) -> None:
    cart.service("pay", "checkout")
    cart.incident("pay", now - timedelta(days=3), now - timedelta(days=3, hours=-1))
    cart.service("search", "discovery")
    cart.incident("search", now - timedelta(days=3), None)  # still open
    team = cart.admin.get("/api/v1/metrics/availability", params={"team": "checkout", "since": "30d"}).json()
    assert team["team"] == "checkout"
    assert team["incidents"] == 4
    assert team["downtime_seconds"] == pytest.approx(50 * MIN + 60 * MIN)
    assert team["observed_seconds"] == pytest.approx(2 * MONTH - 20 * MIN)
    everything = cart.admin.get("/api/v1/metrics/availability", params={"all": "true"}).json()
    assert everything["incidents"] == 5
    assert everything["mttr_seconds"] == team["mttr_seconds"]  # the open incident has no repair time yet


def test_any_team_may_read_any_team_s_metrics(cart: Seed) -> None:
    other = cart.team("discovery")
    assert other.get("/api/v1/metrics/availability", params={"service": "cart"}).status_code == 200
    assert other.get("/api/v1/metrics/dora", params={"team": "checkout"}).status_code == 200


def test_an_empty_period_is_fully_available_with_nothing_else(seed: Seed) -> None:
    seed.service("quiet", "checkout")
    answer = seed.admin.get("/api/v1/metrics/availability", params={"service": "quiet", "since": "7d"}).json()
    assert answer["availability"] == 1.0
    assert answer["incidents"] == 0
    for key in ("mttr_seconds", "mttr_median_seconds", "mtta_seconds", "mtbf_seconds"):
        assert answer[key] is None


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({}, 422, "give one of service=NAME, team=NAME or all=true"),
        ({"service": "cart", "team": "checkout"}, 422, "give one of"),
        ({"service": "cart", "since": "soon"}, 422, "invalid since 'soon'"),
        ({"service": "cart", "since": "0d"}, 422, "empty period"),
        ({"service": "cart", "env": "prod"}, 422, "invalid environment 'prod'"),
        ({"service": "nope"}, 404, "service 'nope' not found"),
        ({"team": "nope"}, 404, "team 'nope' not found"),
    ],
)
def test_bad_availability_requests_say_why(cart: Seed, params: dict[str, str], status: int, reason: str) -> None:
    response = cart.admin.get("/api/v1/metrics/availability", params=params)
    assert response.status_code == status
    assert reason in response.json()["detail"]


def test_dora_of_a_team(seed: Seed, now: datetime) -> None:
    seed.service("cart", "checkout")
    old = seed.artifact("cart", now - timedelta(days=40))
    seed.release("cart", 1, old, now - timedelta(days=39))  # before the period
    a1 = seed.artifact("cart", now - timedelta(days=10))
    seed.release("cart", 2, a1, now - timedelta(days=9))  # lead time 1 day
    seed.release("cart", 3, a1, now - timedelta(days=8))  # a config change: same artifact, no lead time
    a2 = seed.artifact("cart", now - timedelta(days=7, hours=2))
    auto = "rolled back automatically: 3 failed health checks within 60s of going live (503)"
    seed.release("cart", 4, a2, now - timedelta(days=7), failure_reason=auto)  # lead time 2 h, failed
    seed.release("cart", 5, a1, now - timedelta(days=7, minutes=-2), rollback_of=3, cause=ReleaseCause.AUTO_ROLLBACK)
    a3 = seed.artifact("cart", now - timedelta(days=3, minutes=30))
    v6 = seed.release("cart", 6, a3, now - timedelta(days=3))  # lead time 30 min
    seed.release("cart", 7, a3, None)  # never went live
    seed.release("cart", 1, a3, now - timedelta(days=2), env="staging")  # not production
    seed.incident("cart", now - timedelta(days=3, minutes=-10), now - timedelta(days=3, minutes=-40), cause_release=v6)
    answer = seed.team("checkout").get("/api/v1/metrics/dora", params={"team": "checkout", "since": "30d"}).json()
    assert answer["deploys"] == 5
    assert answer["deployment_frequency_per_day"] == pytest.approx(5 / 30)
    assert answer["lead_time_seconds"] == pytest.approx(2 * 3600)  # median of 1 d, 2 h, 30 min
    assert answer["failed_changes"] == 2  # v4 rolled back automatically, v6 caused an incident
    assert answer["change_failure_rate"] == pytest.approx(2 / 5)
    assert answer["time_to_restore_seconds"] == pytest.approx(30 * MIN)
    assert sum(week["deploys"] for week in answer["weekly"]) == 5


def test_dora_with_no_deploys_is_null_but_frequency_zero(seed: Seed) -> None:
    seed.service("cart", "checkout")
    answer = seed.admin.get("/api/v1/metrics/dora", params={"team": "checkout"}).json()
    assert answer["deploys"] == 0
    assert answer["deployment_frequency_per_day"] == 0
    assert answer["lead_time_seconds"] is None
    assert answer["change_failure_rate"] is None
    assert answer["time_to_restore_seconds"] is None
    assert seed.admin.get("/api/v1/metrics/dora").status_code == 422


def test_slo_set_by_the_owner_read_by_anyone_audited(cart: Seed) -> None:
    owner, other = cart.team("checkout"), cart.team("discovery")
    missing = other.get("/api/v1/metrics/slo", params={"service": "cart"})
    assert missing.status_code == 404
    assert "no SLO set for service 'cart' in production" in missing.json()["detail"]
    assert other.put("/api/v1/services/cart/slo", json={"objective": 0.99}).status_code == 403
    put = owner.put("/api/v1/services/cart/slo", json={"objective": 0.99, "window_days": 30})
    assert put.status_code == 200, put.text
    assert put.json() == {"service": "cart", "environment": "production", "objective": 0.99, "window_days": 30}
    assert other.get("/api/v1/services/cart/slo").json()["objective"] == 0.99
    status = other.get("/api/v1/metrics/slo", params={"service": "cart"}).json()
    budget = 0.01 * (MONTH - 20 * MIN)
    assert status["error_budget_seconds"] == pytest.approx(budget)
    assert status["budget_consumed_seconds"] == pytest.approx(50 * MIN)
    assert status["budget_remaining_fraction"] == pytest.approx(1 - 50 * MIN / budget)
    assert status["burn_rate_1h"] == 0
    owner.put("/api/v1/services/cart/slo", json={"objective": 0.999, "window_days": 7})
    events = [e for e in owner.get("/api/v1/audit", params={"service": "cart"}).json() if e["action"] == "slo.set"]
    assert [e["after"]["objective"] for e in events] == [0.999, 0.99]
    assert events[0]["before"] == {"objective": 0.99, "window_days": 30}


@pytest.mark.parametrize(
    "body", [{"objective": 1.0}, {"objective": 0}, {"objective": 0.99, "window_days": 0},
             {"objective": 0.99, "environment": "prod"}],
)
def test_bad_slos_are_refused(cart: Seed, body: dict[str, object]) -> None:
    response = cart.team("checkout").put("/api/v1/services/cart/slo", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_weights_set_by_a_member_change_weighted_availability(cart: Seed) -> None:
    member, other = cart.team("checkout"), cart.team("discovery")
    assert member.get("/api/v1/teams/checkout/availability-weights").json()["source"] == "flat"
    table = [float(h % 24 >= 8) for h in range(168)]  # office hours only
    assert other.put("/api/v1/teams/checkout/availability-weights", json={"weights": table}).status_code == 403
    answer = member.put("/api/v1/teams/checkout/availability-weights", json={"weights": table})
    assert answer.status_code == 200
    assert answer.json()["source"] == "table"
    assert sum(answer.json()["weights"]) == pytest.approx(168)
    metrics = other.get("/api/v1/metrics/availability", params={"service": "cart"}).json()
    assert metrics["weighted_availability"] != pytest.approx(metrics["availability"], abs=1e-12)

    counts = [100.0] * 168
    assert member.put("/api/v1/teams/checkout/availability-weights", json={"counts": counts}).json()["source"] == (
        "traffic")
    member.put("/api/v1/teams/checkout/availability-weights", json={"source": "flat"}).raise_for_status()
    metrics = other.get("/api/v1/metrics/availability", params={"service": "cart"}).json()
    assert metrics["weighted_availability"] == pytest.approx(metrics["availability"])
    actions = [e["action"] for e in member.get("/api/v1/audit").json()]
    assert actions.count("availability_weights.set") == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "give one of"),
        ({"weights": [1.0] * 167}, "168 numbers"),
        ({"weights": [-1.0] * 168}, "negative"),
        ({"counts": [1.0] * 3}, "168"),
        ({"source": "traffic"}, "only \"flat\""),
        ({"weights": [1.0] * 168, "source": "flat"}, "give one of"),
    ],
)
def test_bad_weights_are_refused_with_the_reason(cart: Seed, body: dict[str, object], reason: str) -> None:
    response = cart.team("checkout").put("/api/v1/teams/checkout/availability-weights", json=body)
    assert response.status_code == 422
    assert reason in response.json()["detail"]


def rows(response_text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response_text)))


def test_incidents_csv(cart: Seed, now: datetime) -> None:
    cart.incident("cart", now - timedelta(hours=3), now - timedelta(hours=2), summary="=HYPERLINK(\"x\")")
    response = cart.admin.get("/api/v1/metrics/export/incidents.csv", params={"team": "checkout"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert len(rows(response.text)) == 5  # 90 days by default: the 45-day-old one is in
    found = rows(cart.admin.get("/api/v1/metrics/export/incidents.csv",
                                params={"team": "checkout", "since": "30d"}).text)
    assert [r["service"] for r in found] == ["cart"] * 4  # the staging one is left out
    assert found[0]["time_to_acknowledge_seconds"] == "300.0"
    assert found[0]["time_to_resolve_seconds"] == "1800.0"
    assert found[1]["acknowledged_at"] == ""
    assert found[-1]["summary"] == "'=HYPERLINK(\"x\")"  # a spreadsheet shows it, does not run it


def test_availability_csv_per_month_and_service(cart: Seed) -> None:
    cart.service("pay", "checkout")
    response = cart.admin.get("/api/v1/metrics/export/availability.csv", params={"team": "checkout"})
    found = rows(response.text)
    months = sorted({r["month"] for r in found})
    assert len(months) in (12, 13)  # 365 days touch 12 or 13 calendar months
    assert {r["service"] for r in found} == {"cart", "pay"}
    assert len(found) == 2 * len(months)
    assert sum(float(r["downtime_seconds"]) for r in found if r["service"] == "cart") == pytest.approx(
        50 * MIN + 24 * 3600)  # the month and the 45-day-old incident
    assert cart.admin.get("/api/v1/metrics/export/availability.csv").status_code == 422
