"""IncidentService: the lifecycle, who may act, audit, paging hooks, the likely cause."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.health.support import actor_of, live_release, make_service

from podium.catalog.auth import Actor
from podium.catalog.models import AuditEvent
from podium.core import Podium
from podium.errors import Conflict, Forbidden, Invalid, NotFound
from podium.health.incidents import IncidentService
from podium.health.models import Check, Incident
from podium.store.db import utcnow


@dataclass
class RecordingPager:
    """Records each hook call with the incident's id and state, seen inside the change's transaction."""

    calls: list[tuple[str, int, str]] = field(default_factory=list)

    def _record(self, hook: str, session: Session, incident: Incident) -> None:
        assert session.in_transaction()
        assert incident.id is not None
        self.calls.append((hook, incident.id, incident.state))

    def on_triggered(self, session: Session, incident: Incident) -> None:
        self._record("triggered", session, incident)

    def on_acknowledged(self, session: Session, incident: Incident) -> None:
        self._record("acknowledged", session, incident)

    def on_resolved(self, session: Session, incident: Incident) -> None:
        self._record("resolved", session, incident)


@pytest.fixture
def pager() -> RecordingPager:
    return RecordingPager()


@pytest.fixture
def incidents(core: Podium, pager: RecordingPager) -> IncidentService:
    return IncidentService(core.settings, core.store, pager=pager)


@pytest.fixture
def web(core: Podium, hello: str) -> Actor:
    return actor_of(core, "web")


def audit_actions(core: Podium) -> list[str]:
    with core.store.session() as session:
        return [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
                if e.action.startswith("incident.")]


def test_open_acknowledge_resolve(core: Podium, incidents: IncidentService, web: Actor, pager: RecordingPager) -> None:
    opened = incidents.open(web, "hello", "production", "  checkout is slow  ")
    assert (opened.state, opened.summary, opened.team, opened.env) == ("triggered", "checkout is slow", "web",
                                                                       "production")
    assert (opened.source, opened.opened_by, opened.cause_deploy) == ("manual", "web", None)
    acked = incidents.acknowledge(web, opened.id)
    assert acked.state == "acknowledged"
    assert acked.acknowledged_by == "web"
    assert acked.acknowledged_at is not None
    assert acked.acknowledged_at >= opened.triggered_at
    resolved = incidents.resolve(web, opened.id)
    assert (resolved.state, resolved.resolved_by) == ("resolved", "web")
    assert pager.calls == [("triggered", opened.id, "triggered"), ("acknowledged", opened.id, "acknowledged"),
                           ("resolved", opened.id, "resolved")]
    assert audit_actions(core) == ["incident.open", "incident.acknowledge", "incident.resolve"]


def test_the_lifecycle_refuses_illegal_moves(incidents: IncidentService, web: Actor, pager: RecordingPager) -> None:
    incident = incidents.open(web, "hello", "production", "down")
    incidents.resolve(web, incident.id)  # resolving straight from triggered is allowed
    with pytest.raises(Conflict, match="is resolved already"):
        incidents.resolve(web, incident.id)
    with pytest.raises(Conflict, match="is resolved: it cannot become acknowledged"):
        incidents.acknowledge(web, incident.id)
    other = incidents.open(web, "hello", "production", "down again")
    incidents.acknowledge(web, other.id)
    with pytest.raises(Conflict, match="acknowledged already"):
        incidents.acknowledge(web, other.id)
    assert [c[0] for c in pager.calls] == ["triggered", "resolved", "triggered", "acknowledged"]


def test_who_may_act(core: Podium, admin: TestClient, incidents: IncidentService, web: Actor) -> None:
    make_service(admin, "search", "search")
    admin.post("/api/v1/services/hello/grants", json={"team": "search", "rights": ["deploy"], "duration": "1d"})
    make_service(admin, "other", "outsider")
    incident = incidents.open(web, "hello", "production", "down")
    with pytest.raises(Forbidden, match="team 'outsider' may not act on incidents of service 'hello'"):
        incidents.acknowledge(actor_of(core, "outsider"), incident.id)
    with pytest.raises(Forbidden):
        incidents.add_note(actor_of(core, "outsider"), incident.id, "me too")
    with pytest.raises(Forbidden):
        incidents.open(actor_of(core, "outsider"), "hello", "production", "down")
    assert incidents.acknowledge(actor_of(core, "search"), incident.id).acknowledged_by == "search"
    assert incidents.resolve(actor_of(core, "platform"), incident.id).resolved_by == "platform"
    assert incidents.get(incident.id).state == "resolved"  # anyone may read


def test_a_platform_run_component_pages_the_platform_team(
    core: Podium, incidents: IncidentService, web: Actor
) -> None:
    platform = actor_of(core, "platform")
    incident = incidents.open(platform, "hello", "production", "database is down", team="platform")
    assert incident.team == "platform"
    assert [i.id for i in incidents.list(team="platform")] == [incident.id]
    assert incidents.list(team="web") == []
    with pytest.raises(Forbidden, match="only the 'platform' team may page another team"):
        incidents.open(web, "hello", "production", "down", team="platform")
    # The owner still acts on its service's incident, paged to the platform team or not.
    assert incidents.acknowledge(web, incident.id).state == "acknowledged"


def test_a_deploy_just_before_the_incident_is_its_likely_cause(
    core: Podium, incidents: IncidentService, web: Actor
) -> None:
    now = utcnow()
    live_release(core, "hello", "production", live_at=now - timedelta(hours=2))
    live_release(core, "hello", "production", live_at=now - timedelta(minutes=10))
    live_release(core, "hello", "staging", live_at=now - timedelta(minutes=1))
    assert incidents.open(web, "hello", "production", "down", at=now).cause_deploy == "v2"
    later = now + timedelta(minutes=25)  # 35 minutes after v2: outside the 30-minute window
    assert incidents.open(web, "hello", "production", "down", at=later).cause_deploy is None
    assert incidents.open(web, "hello", None, "all of it is down", at=now).cause_deploy is None


def test_notes_and_get(core: Podium, incidents: IncidentService, web: Actor) -> None:
    incident = incidents.open(web, "hello", "production", "down")
    incidents.add_note(web, incident.id, "rolled back to v3")
    incidents.resolve(web, incident.id)
    incidents.add_note(actor_of(core, "platform"), incident.id, "post-mortem on Monday")
    shown = incidents.get(incident.id)
    assert [(n.team, n.text) for n in shown.notes] == [("web", "rolled back to v3"),
                                                      ("platform", "post-mortem on Monday")]
    assert audit_actions(core).count("incident.note") == 2


def test_bad_input_is_refused(incidents: IncidentService, web: Actor) -> None:
    cases: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: incidents.open(web, "hello", "production", "   "), Invalid),
        (lambda: incidents.open(web, "hello", "production", "x" * 501), Invalid),
        (lambda: incidents.open(web, "hello", "production", "nul \x00"), Invalid),
        (lambda: incidents.open(web, "hello", "qa", "down"), Invalid),
        (lambda: incidents.open(web, "nope", "production", "down"), NotFound),
        (lambda: incidents.acknowledge(web, 999), NotFound),
        (lambda: incidents.resolve(web, 2**63), NotFound),
        (lambda: incidents.add_note(web, 0, "x"), NotFound),
        (lambda: incidents.list(state="open"), Invalid),
        (lambda: incidents.list(limit=0), Invalid),
        (lambda: incidents.list(service="nope"), NotFound),
    ]
    for call, error in cases:
        with pytest.raises(error):
            call()


def test_list_filters(core: Podium, admin: TestClient, incidents: IncidentService, web: Actor) -> None:
    make_service(admin, "cart", "checkout")
    now = utcnow()
    first = incidents.open(web, "hello", "production", "one", at=now - timedelta(days=3))
    second = incidents.open(web, "hello", "staging", "two", at=now - timedelta(hours=1))
    third = incidents.open(actor_of(core, "checkout"), "cart", "production", "three", at=now)
    incidents.acknowledge(web, second.id)
    assert [i.id for i in incidents.list()] == [third.id, second.id, first.id]
    assert [i.id for i in incidents.list(service="hello")] == [second.id, first.id]
    assert [i.id for i in incidents.list(team="checkout")] == [third.id]
    assert [i.id for i in incidents.list(state="acknowledged")] == [second.id]
    assert [i.id for i in incidents.list(env="production")] == [third.id, first.id]
    assert [i.id for i in incidents.list(since=now - timedelta(days=1))] == [third.id, second.id]
    assert [i.id for i in incidents.list(limit=1)] == [third.id]


def test_a_check_opens_one_incident_and_resolves_it(
    core: Podium, incidents: IncidentService, web: Actor, pager: RecordingPager
) -> None:
    live_release(core, "hello", "production")
    core.checks.ensure_web_checks()
    with core.store.session() as session:
        check_id = session.scalars(select(Check.id)).one()
    opened = incidents.trigger_from_check(check_id, "hello/production is down: GET / answered 502")
    assert opened is not None
    assert (opened.source, opened.check, opened.opened_by, opened.cause_deploy) == ("check", "web", "podium", "v1")
    again = incidents.trigger_from_check(check_id, "hello/production is down: GET / answered 503")
    assert again is not None
    assert again.id == opened.id  # still the same outage
    [resolved] = incidents.resolve_from_check(check_id)
    assert (resolved.state, resolved.resolved_by) == ("resolved", "podium (check)")
    assert incidents.resolve_from_check(check_id) == []
    assert [c[0] for c in pager.calls] == ["triggered", "resolved"]
    assert incidents.trigger_from_check(10_000, "gone") is None


def test_no_incident_opens_from_a_check_during_maintenance(
    core: Podium, incidents: IncidentService, web: Actor
) -> None:
    live_release(core, "hello", "staging")
    core.checks.ensure_web_checks()
    with core.store.session() as session:
        check_id = session.scalars(select(Check.id)).one()
    now = utcnow()
    core.maintenance.add(web, "hello", "production", now - timedelta(minutes=5), now + timedelta(hours=1))
    assert incidents.trigger_from_check(check_id, "down", at=now) is not None  # a window on production only
    incidents.resolve_from_check(check_id)
    core.maintenance.add(web, "hello", None, now - timedelta(minutes=5), now + timedelta(hours=1))
    assert incidents.trigger_from_check(check_id, "down", at=now) is None
    assert incidents.trigger_from_check(check_id, "down", at=now + timedelta(hours=2)) is not None
