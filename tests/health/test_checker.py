"""The checker against real local endpoints: down after N failures opens an incident,
up after M successes resolves it, a maintenance window holds it back."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from tests.health.support import Endpoint, actor_of, live_release, wait_for

from podium.core import Podium
from podium.health.checker import Checker, next_due
from podium.health.incidents import IncidentInfo
from podium.health.models import Check, CheckResult
from podium.store.db import utcnow

HEALTH_APP = {"healthchecks": {"web": [{"type": "startup", "path": "/health"}]}}


@pytest.fixture
def checker(core: Podium) -> Iterator[Checker]:
    running = Checker(core.settings, core.store, core.checks, core.incidents, flush_seconds=0.05)
    running.start()
    yield running
    running.close()


def open_incidents(core: Podium) -> list[IncidentInfo]:
    return [i for i in core.incidents.list(service="hello") if i.state != "resolved"]


def results(core: Podium) -> list[CheckResult]:
    with core.store.session() as session:
        return list(session.scalars(select(CheckResult).order_by(CheckResult.at, CheckResult.id)))


def test_next_due_keeps_a_fixed_rate_and_skips_overrun_slots() -> None:
    assert next_due(10.0, 1.0, now=10.3) == (11.0, 0)  # the probe took 0.3 s: still due at 11
    assert next_due(10.0, 1.0, now=11.0) == (11.0, 0)
    assert next_due(10.0, 1.0, now=12.5) == (13.0, 2)  # 11 and 12 were missed: skipped, not burst


def test_down_after_three_failures_opens_an_incident_and_two_passes_resolve_it(
    core: Podium, hello: str, endpoint: Endpoint, checker: Checker
) -> None:
    live_release(core, "hello", "production", app_json=HEALTH_APP)
    checker.sync_now()
    wait_for(lambda: any(r.ok for r in results(core)), 5, "a first passing probe")
    assert "hello.production.localhost" in endpoint.hosts  # through the router, as users reach it

    endpoint.status = 502
    incident = wait_for(lambda: open_incidents(core), 10, "an incident")[0]
    checker.flush_now()  # the batch that opened it is stored right after
    assert incident.summary == "hello/production is down: GET /health answered 502"
    assert (incident.source, incident.check, incident.env, incident.team) == ("check", "web", "production", "web")
    before = [r for r in results(core) if r.at <= incident.triggered_at]
    last_ok = max(i for i, r in enumerate(before) if r.ok)
    assert [r.ok for r in before[last_ok + 1:]] == [False, False, False]
    assert before[-1].status_code == 502

    endpoint.status = 200
    resolved = wait_for(
        lambda: next((i for i in core.incidents.list(service="hello") if i.state == "resolved"), None),
        10, "the incident to resolve",
    )
    checker.flush_now()
    assert resolved.id == incident.id
    assert resolved.resolved_by == "podium (check)"
    assert resolved.resolved_at is not None
    after = [r for r in results(core) if incident.triggered_at < r.at <= resolved.resolved_at]
    first_ok = min(i for i, r in enumerate(after) if r.ok)
    assert [r.ok for r in after[first_ok:]] == [True, True]
    assert len(core.incidents.list(service="hello")) == 1  # one outage, one incident


def test_a_maintenance_window_holds_the_incident_back_until_it_ends(
    core: Podium, hello: str, endpoint: Endpoint, checker: Checker
) -> None:
    live_release(core, "hello", "production")
    ends = utcnow() + timedelta(seconds=1.5)
    core.maintenance.add(actor_of(core, "web"), "hello", None, utcnow() - timedelta(minutes=1), ends, "upgrade")
    endpoint.status = 500
    checker.sync_now()

    def down() -> bool:
        with core.store.session() as session:
            return session.scalar(select(Check.state).where(Check.name == "web")) == "down"

    wait_for(down, 5, "the check to go down")
    assert open_incidents(core) == []
    incident = wait_for(lambda: open_incidents(core), 10, "an incident once the window is over")[0]
    assert incident.triggered_at >= ends
    assert incident.summary == "hello/production is down: GET / answered 500"


def test_a_check_down_when_the_checker_starts_gets_its_incident(
    core: Podium, hello: str, endpoint: Endpoint
) -> None:
    live_release(core, "hello", "production")
    endpoint.status = 503
    first = Checker(core.settings, core.store, core.checks, core.incidents, flush_seconds=0.05)
    first.start()
    incident = wait_for(lambda: open_incidents(core), 10, "an incident")[0]
    first.close()
    core.incidents.resolve(actor_of(core, "web"), incident.id)  # by hand, though it is still down

    second = Checker(core.settings, core.store, core.checks, core.incidents, flush_seconds=0.05)
    second.start()
    try:
        reopened = wait_for(lambda: open_incidents(core), 10, "a new incident")[0]
    finally:
        second.close()
    assert reopened.id != incident.id


def test_extra_http_and_tcp_checks(core: Podium, hello: str, endpoint: Endpoint, checker: Checker) -> None:
    live_release(core, "hello", "staging")
    web = actor_of(core, "web")
    core.checks.add(web, "hello", "staging", "status", {"path": "/status", "json_field": "status=ok"})
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    core.checks.add(web, "hello", "staging", "db", {"tcp": f"127.0.0.1:{port}", "down_after": 2})
    checker.sync_now()

    def states() -> dict[str, str]:
        return {c.name: c.state for c in core.checks.list("hello", "staging")}

    wait_for(lambda: states() == {"web": "up", "status": "up", "db": "up"}, 10, "every check up")
    listener.close()
    endpoint.body = '{"status": "degraded"}'
    wait_for(lambda: states() == {"web": "up", "status": "down", "db": "down"}, 10, "status and db down")
    summaries = sorted(i.summary for i in open_incidents(core))
    assert summaries == [
        f"hello/staging (check db) is down: TCP 127.0.0.1:{port} failed: Connection refused",
        "hello/staging (check status) is down: GET /status: status is 'degraded', not 'ok'",
    ]


def test_slow_answers_do_not_push_the_schedule_back(
    core: Podium, hello: str, endpoint: Endpoint, checker: Checker
) -> None:
    live_release(core, "hello", "production")
    endpoint.delay = 0.05  # half the 0.1 s interval: a now+interval schedule would run every 0.15 s
    checker.sync_now()
    wait_for(lambda: len(results(core)) >= 21, 10, "twenty-one probes")
    times = [r.at for r in results(core)][:21]
    period = (times[-1] - times[0]).total_seconds() / 20
    assert period < 0.13, f"one probe every {period:.3f}s"
