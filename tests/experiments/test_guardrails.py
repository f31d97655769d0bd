"""Guardrails stop a harmful experiment by themselves and page the owning team, through a real receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from statsmodels.stats.proportion import proportions_ztest
from tests.support.receiver import Receiver

from podium.catalog.auth import Actor, authenticate
from podium.core import Podium
from podium.experiments.events import EventService
from podium.experiments.guardrails import GUARDRAIL, check_guardrails
from podium.experiments.service import ExperimentService
from podium.health.models import Notification
from podium.health.paging import NO_ROTATION

KEY = "big-button"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def admin(core: Podium) -> Actor:
    with core.store.session() as session:
        return authenticate(session, core.settings.admin_token_path.read_text().strip())


@pytest.fixture
def experiments(core: Podium, admin: Actor) -> ExperimentService:
    """Service ``shop`` of ``shop-team``, with experiment ``big-button`` running in production."""
    core.catalog.create_team(admin, "shop-team")
    core.catalog.create_service(admin, "shop", "shop-team", "", "production")
    service = ExperimentService(core.settings, core.store)
    service.create(admin, "shop", "production", KEY, metric="signup", guardrails=["error", "crash"])
    service.start(admin, "shop", "production", KEY)
    return service


@pytest.fixture
def on_call(core: Podium, admin: Actor, receiver: Receiver, experiments: ExperimentService) -> str:
    """shop-team's rotation: alice, paged at the receiver."""
    core.oncall.set_rotation(admin, "shop-team", [("alice", receiver.url("alice"))], "weekly", "mon 09:00")
    return "alice"


def send(core: Podium, admin: Actor, users: int, error_rates: dict[str, float], seed: int = 3) -> dict[str, list[int]]:
    """Exposures of ``users`` users per variant, and an ``error`` event for a share of each; [errors, users]."""
    rng = np.random.default_rng(seed)
    events: list[dict[str, Any]] = []
    counts = {variant: [0, 0] for variant in error_rates}
    for variant, rate in error_rates.items():
        for i in range(users):
            user = f"{variant}-{i}"
            events.append({"id": f"x-{user}", "type": "exposure", "user_id": user, "experiment": KEY,
                           "variant": variant})
            counts[variant][1] += 1
            if rng.random() < rate:
                counts[variant][0] += 1
                events.append({"id": f"e-{user}", "type": "metric", "user_id": user, "name": "error"})
    assert EventService(core.store).record(admin, "shop", "production", events).rejected == []
    return counts


def status(experiments: ExperimentService) -> tuple[str, str | None, str | None]:
    info = experiments.get("shop", "production", KEY)
    return info.status, info.stopped_by, info.stop_reason


def test_a_worse_guardrail_metric_stops_the_experiment_and_pages_the_team(
    core: Podium, admin: Actor, experiments: ExperimentService, on_call: str, receiver: Receiver
) -> None:
    counts = send(core, admin, 1000, {"control": 0.02, "treatment": 0.05})
    (stopped,) = check_guardrails(core.store, core.settings)
    assert (stopped.service, stopped.env, stopped.key, stopped.incident_id) == ("shop", "production", KEY, None)
    state, by, reason = status(experiments)
    assert (state, by) == ("stopped", GUARDRAIL)
    assert reason is not None
    (errors_t, users_t), (errors_c, users_c) = counts["treatment"], counts["control"]
    _, p = proportions_ztest([errors_t, errors_c], [users_t, users_c], alternative="larger")
    assert p < core.settings.experiments_guardrail_p  # what the test data was made for
    assert f"guardrail 'error' is worse in variant 'treatment': {errors_t / users_t:.2%} ({errors_t:,} of" in reason
    assert f"against {errors_c / users_c:.2%} ({errors_c:,} of {users_c:,}) in 'control'" in reason
    assert f"one-sided p = {p:.2g} < 0.01" in reason

    # Everyone gets the control now.
    document, _ = experiments.definitions("shop", "production")
    assert document["experiments"][0]["force"] == "control"
    assert check_guardrails(core.store, core.settings) == []  # stopped once, paged once

    core.pager.run()
    (page,) = receiver.wait_for(1, "alice")
    assert page.title == f"[Podium] Experiment {KEY} on shop/production stopped by a guardrail"
    assert reason in page.message
    assert "everyone gets the control ('control')" in page.message


@pytest.mark.parametrize(("users", "rates"), [
    (1000, {"control": 0.03, "treatment": 0.03}),  # no difference
    (1000, {"control": 0.05, "treatment": 0.02}),  # better, not worse
    (60, {"control": 0.0, "treatment": 0.5}),  # much worse, but too few users to tell
])
def test_no_stop_without_a_significant_harm(
    core: Podium, admin: Actor, experiments: ExperimentService, users: int, rates: dict[str, float]
) -> None:
    send(core, admin, users, rates)
    assert check_guardrails(core.store, core.settings) == []
    assert status(experiments) == ("running", None, None)


def test_an_incident_after_the_start_stops_the_experiment(
    core: Podium, admin: Actor, experiments: ExperimentService, on_call: str, receiver: Receiver
) -> None:
    started = experiments.get("shop", "production", KEY).started_at
    assert started is not None
    core.incidents.open(admin, "shop", "production", "an hour ago", at=started - timedelta(hours=1))
    core.incidents.open(admin, "shop", "staging", "staging is down")
    resolved = core.incidents.open(admin, "shop", "production", "over already")
    core.incidents.resolve(admin, resolved.id)
    assert check_guardrails(core.store, core.settings) == []

    incident = core.incidents.open(admin, "shop", "production", "checkout answers 500")
    (stopped,) = check_guardrails(core.store, core.settings)
    assert stopped.incident_id == incident.id
    state, by, reason = status(experiments)
    assert (state, by) == ("stopped", GUARDRAIL)
    assert reason == (f"incident #{incident.id} opened on shop/production while the experiment ran: "
                      "checkout answers 500")
    with core.store.session() as session:
        row = session.scalar(select(Notification).where(Notification.kind == GUARDRAIL))
        assert row is not None
        assert (row.incident_id, row.recipient) == (incident.id, "alice")
    core.pager.run()
    # Four incidents were triggered and one resolved, each paging alice; then the guardrail's page.
    pages = receiver.wait_for(6, "alice")
    (page,) = [page for page in pages if "stopped by a guardrail" in page.title]
    assert reason in page.message


def test_a_team_without_a_rotation_gets_a_page_that_says_so(
    core: Podium, admin: Actor, experiments: ExperimentService
) -> None:
    send(core, admin, 1000, {"control": 0.01, "treatment": 0.2})
    assert len(check_guardrails(core.store, core.settings)) == 1
    with core.store.session() as session:
        row = session.scalar(select(Notification).where(Notification.kind == GUARDRAIL))
        assert row is not None
        assert (row.recipient, row.url) == (NO_ROTATION, "")
        assert row.last_error is not None
        assert "team 'shop-team' has no on-call rotation" in row.last_error


@pytest.mark.parametrize("settings_overrides", [{"experiments_guardrail_interval": 0.05}])
def test_the_loop_stops_a_harmful_experiment_by_itself_and_closes_promptly(
    core: Podium, admin: Actor, experiments: ExperimentService, on_call: str, receiver: Receiver
) -> None:
    core.pager.run()
    core.guardrails.start()
    send(core, admin, 1000, {"control": 0.02, "treatment": 0.08})
    (page,) = receiver.wait_for(1, "alice")
    assert "guardrail 'error' is worse in variant 'treatment'" in page.message
    assert status(experiments)[:2] == ("stopped", GUARDRAIL)
    began = time.monotonic()
    core.guardrails.close()
    assert time.monotonic() - began < 1.0
    assert datetime.now(UTC) > experiments.get("shop", "production", KEY).stopped_at  # type: ignore[operator]
