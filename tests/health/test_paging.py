"""Paging through the outbox, delivered by Apprise to a real HTTP receiver on 127.0.0.1.

Incidents are written straight into the store and the pager's hooks called inside that
transaction, as the incident service does. The escalation tests move the pager's clock
instead of waiting minutes; the worker itself runs for real in its thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from tests.support.receiver import Receiver

from podium.catalog.auth import Actor
from podium.catalog.models import PLATFORM_TEAM, Service, Team
from podium.config import Settings
from podium.core import Podium
from podium.health.models import Incident, IncidentState, Notification
from podium.health.paging import NO_ROTATION, Pager, page_state

WAIT = 15.0  # seconds to wait for a page that should arrive; a pass takes a fraction of that


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


class Clock:
    """The pager's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def quick(settings: Settings) -> Settings:
    """Settings with the paging intervals of a test: retries after 10 ms, at most 5 attempts."""
    return settings.model_copy(update={
        "paging_poll_interval": 0.05, "paging_escalation_interval": 0.05, "paging_retry_initial": 0.01,
        "paging_retry_max": 0.04, "paging_max_attempts": 5,
    })


@pytest.fixture
def pagers(quick: Settings, core: Podium, clock: Clock) -> Iterator[Callable[..., Pager]]:
    """Factory of pagers on the core's store, closed at the end.

    ``run=False`` leaves the worker off; ``real_clock=True`` gives the pager the real time
    instead of the test's clock.
    """
    made: list[Pager] = []

    def make(run: bool = True, real_clock: bool = False, **settings: Any) -> Pager:
        kw = {} if real_clock else {"clock": clock}
        pager = Pager(quick.model_copy(update=settings), core.store, **kw)
        made.append(pager)
        if run:
            pager.run()
        return pager

    yield make
    for pager in made:
        pager.close()


ADMIN = Actor(team=PLATFORM_TEAM, team_id=0, token_id=None)


@pytest.fixture
def team(core: Podium, receiver: Receiver, clock: Clock) -> str:
    """Team ``checkout`` owning ``cart``: alice, bob, carol on a weekly rotation, alice on call now."""
    core.catalog.create_team(ADMIN, "checkout")
    core.catalog.create_service(ADMIN, "cart", "checkout")
    people = [(name, receiver.url(name)) for name in ("alice", "bob", "carol")]
    core.oncall.set_rotation(ADMIN, "checkout", people, "weekly", "mon 09:00", 15, starts_at=clock.now)
    return "checkout"


def trigger(core: Podium, pager: Pager, summary: str = "cart is down", team: str = "checkout") -> int:
    """Open an incident on ``cart`` in production, as the incident service would; its id."""
    with core.store.session() as session:
        service = session.scalars(select(Service).where(Service.name == "cart")).one()
        team_id = session.scalars(select(Team.id).where(Team.name == team)).one()
        incident = Incident(service_id=service.id, environment="production", team_id=team_id, summary=summary)
        session.add(incident)
        pager.on_triggered(session, incident)
        return incident.id


def move(core: Podium, pager: Pager, incident_id: int, to: IncidentState) -> None:
    """Acknowledge or resolve an incident, with the pager's hook in the same transaction."""
    with core.store.session() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        incident.state = to
        if to == IncidentState.ACKNOWLEDGED:
            incident.acknowledged_at, incident.acknowledged_by = pager.clock(), "checkout"
            pager.on_acknowledged(session, incident)
        else:
            incident.resolved_at, incident.resolved_by = pager.clock(), "checkout"
            pager.on_resolved(session, incident)


def outbox(core: Podium, incident_id: int | None = None) -> list[Notification]:
    with core.store.session() as session:
        stmt = select(Notification).order_by(Notification.id)
        if incident_id is not None:
            stmt = stmt.where(Notification.incident_id == incident_id)
        return list(session.scalars(stmt))


def incident(core: Podium, incident_id: int) -> Incident:
    with core.store.session() as session:
        row = session.get(Incident, incident_id)
        assert row is not None
        return row


# A page arrives --------------------------------------------------------------------------


def test_a_triggered_incident_pages_the_person_on_call(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager]
) -> None:
    pager = pagers()
    incident_id = trigger(core, pager, "cart answers 502")
    [page] = receiver.wait_for(1)
    assert page.path == "/alice"
    assert page.title == "[Podium] cart answers 502"
    for text in ("cart", "production", f"#{incident_id}", f"{core.settings.base_url}/incidents/{incident_id}",
                 f"podium incidents ack {incident_id}"):
        assert text in page.message, text
    pager.close()  # lets the worker record the send it just made
    [row] = outbox(core, incident_id)
    assert (row.kind, row.recipient, row.attempts, row.last_error) == ("trigger", "alice", 1, None)
    assert row.sent_at is not None
    assert incident(core, incident_id).next_escalation_at == pager.clock() + timedelta(minutes=15)


def test_a_new_page_wakes_the_worker(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager]
) -> None:
    pager = pagers(paging_poll_interval=3600, paging_escalation_interval=3600)
    pager.wake()  # the worker's first look
    trigger(core, pager)
    assert receiver.wait_for(1)[0].path == "/alice"  # long before the hour-long poll


def test_a_team_without_a_rotation_gets_a_visible_row_that_is_never_retried(
    core: Podium, receiver: Receiver, pagers: Callable[..., Pager]
) -> None:
    core.catalog.create_team(ADMIN, "search")
    core.catalog.create_service(ADMIN, "cart", "search")
    pager = pagers(run=False)
    incident_id = trigger(core, pager, team="search")
    [row] = outbox(core, incident_id)
    assert (row.recipient, row.url, row.sent_at, row.attempts) == (NO_ROTATION, "", None, 0)
    assert row.last_error is not None
    assert "no on-call rotation" in row.last_error
    assert page_state(row, 5) == "no-target"
    assert pager.deliver_due() == 0
    assert outbox(core, incident_id)[0].attempts == 0
    assert incident(core, incident_id).next_escalation_at is None


# Nothing is lost -------------------------------------------------------------------------


def test_a_page_waits_while_the_receiver_is_down_and_arrives_when_it_is_back(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    receiver.stop()
    pager = pagers(run=False, paging_retry_initial=5.0, paging_retry_max=600.0, paging_max_attempts=15)
    incident_id = trigger(core, pager)
    assert pager.deliver_due() == 0
    [row] = outbox(core, incident_id)
    assert (row.sent_at, row.attempts) == (None, 1)
    assert row.last_error is not None
    assert "connection" in row.last_error.lower()
    assert row.next_attempt_at == clock.now + timedelta(seconds=5)
    assert page_state(row, 15) == "pending"

    assert pager.deliver_due() == 0  # not due again yet
    clock.advance(seconds=5)
    assert pager.deliver_due() == 0  # due, tried, failed again: the wait doubles
    [row] = outbox(core, incident_id)
    assert (row.attempts, row.next_attempt_at) == (2, clock.now + timedelta(seconds=10))

    receiver.start()
    clock.advance(seconds=10)
    pager.run()
    [page] = receiver.wait_for(1)
    assert page.path == "/alice"
    pager.close()
    [row] = outbox(core, incident_id)
    assert row.sent_at is not None
    assert row.attempts == 3


def test_the_worker_retries_by_itself_until_the_receiver_answers(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager]
) -> None:
    receiver.stop()
    pager = pagers(run=False, real_clock=True, paging_max_attempts=1000)  # retries 10 ms to 40 ms apart
    incident_id = trigger(core, pager)
    assert pager.deliver_due() == 0  # a failure recorded while the receiver is down
    assert outbox(core, incident_id)[0].attempts == 1
    pager.run()
    receiver.start()
    assert receiver.wait_for(1)[0].path == "/alice"


def test_a_new_worker_delivers_what_the_old_one_left(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    receiver.stop()
    old = pagers()
    trigger(core, old, "first")
    old.close()  # the first page may or may not have been tried: it is not sent
    left = pagers(run=False)
    trigger(core, left, "second")  # written while no worker runs, as if Podium died right after
    assert [row.sent_at for row in outbox(core)] == [None, None]

    receiver.start()
    clock.advance(seconds=1)  # past any backoff the old worker set
    new = pagers()
    pages = receiver.wait_for(2)
    assert sorted(p.title for p in pages) == ["[Podium] first", "[Podium] second"]
    new.close()
    assert all(row.sent_at is not None for row in outbox(core))


def test_a_page_is_given_up_after_the_most_attempts_and_stays_visible(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    receiver.stop()
    pager = pagers(run=False, paging_max_attempts=3)
    incident_id = trigger(core, pager)
    for _ in range(3):
        pager.deliver_due()
        clock.advance(seconds=1)
    [row] = outbox(core, incident_id)
    assert (row.sent_at, row.attempts) == (None, 3)
    assert row.last_error is not None
    assert row.last_error.startswith("gave up after 3 attempts: ")
    assert page_state(row, 3) == "failed"
    receiver.start()
    clock.advance(hours=1)
    assert pager.deliver_due() == 0
    assert outbox(core, incident_id)[0].attempts == 3


# Escalation ----------------------------------------------------------------------------


def test_unacknowledged_it_escalates_to_the_next_person_then_the_whole_team(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    pager = pagers()
    incident_id = trigger(core, pager)
    receiver.wait_for(1, "alice")

    clock.advance(minutes=14, seconds=59)
    assert pager.escalate_due() == 0  # not yet
    clock.advance(seconds=1)
    pager.wake()
    [escalated] = receiver.wait_for(1, "bob")
    assert "not acknowledged after 15 min" in escalated.message
    assert incident(core, incident_id).escalation_level == 1

    clock.advance(minutes=15)
    pager.wake()
    receiver.wait_for(2, "alice")
    receiver.wait_for(2, "bob")
    [to_carol] = receiver.wait_for(1, "carol")
    assert "whole team" in to_carol.message
    row = incident(core, incident_id)
    assert (row.escalation_level, row.next_escalation_at) == (2, None)
    kinds = [(r.kind, r.recipient) for r in outbox(core, incident_id)]
    assert kinds == [("trigger", "alice"), ("escalate", "bob"),
                     ("escalate", "alice"), ("escalate", "bob"), ("escalate", "carol")]


def test_acknowledging_stops_the_escalation(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    pager = pagers(run=False)
    incident_id = trigger(core, pager)
    move(core, pager, incident_id, IncidentState.ACKNOWLEDGED)
    clock.advance(hours=2)
    assert pager.escalate_due() == 0
    assert [r.recipient for r in outbox(core, incident_id)] == ["alice"]
    assert incident(core, incident_id).next_escalation_at is None


def test_an_acknowledgement_after_the_first_escalation_stops_the_next(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    pager = pagers(run=False)
    incident_id = trigger(core, pager)
    clock.advance(minutes=15)
    assert pager.escalate_due() == 1
    move(core, pager, incident_id, IncidentState.ACKNOWLEDGED)
    clock.advance(minutes=15)
    assert pager.escalate_due() == 0
    assert [r.recipient for r in outbox(core, incident_id)] == ["alice", "bob"]


def test_a_rotation_of_one_escalates_straight_to_the_whole_team(
    core: Podium, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    core.catalog.create_team(ADMIN, "checkout")
    core.catalog.create_service(ADMIN, "cart", "checkout")
    core.oncall.set_rotation(ADMIN, "checkout", [("alice", receiver.url("alice"))], "daily", "09:00", 5,
                             starts_at=clock.now)
    pager = pagers(run=False)
    incident_id = trigger(core, pager)
    clock.advance(minutes=5)
    assert pager.escalate_due() == 1
    row = incident(core, incident_id)
    assert (row.escalation_level, row.next_escalation_at) == (2, None)
    assert [(r.kind, r.recipient) for r in outbox(core, incident_id)] == [("trigger", "alice"), ("escalate", "alice")]


def test_an_override_is_paged_and_the_rotation_escalates_past_it(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    core.oncall.add_override(ADMIN, "checkout", "dave", receiver.url("dave"), clock.now, clock.now + timedelta(hours=8))
    pager = pagers(run=False)
    incident_id = trigger(core, pager)
    clock.advance(minutes=15)
    pager.escalate_due()
    clock.advance(minutes=15)
    pager.escalate_due()
    recipients = [r.recipient for r in outbox(core, incident_id)]
    assert recipients == ["dave", "bob", "alice", "bob", "carol", "dave"]


# Resolution -----------------------------------------------------------------------------


def test_resolving_tells_everyone_paged_for_it(
    core: Podium, team: str, receiver: Receiver, pagers: Callable[..., Pager], clock: Clock
) -> None:
    pager = pagers()
    incident_id = trigger(core, pager, "cart is slow")
    receiver.wait_for(1, "alice")
    clock.advance(minutes=15)
    pager.wake()
    receiver.wait_for(1, "bob")
    move(core, pager, incident_id, IncidentState.RESOLVED)
    for name in ("alice", "bob"):
        notice = receiver.wait_for(2, name)[-1]
        assert notice.title == "[Podium] Resolved: cart is slow"
        assert "Resolved by checkout" in notice.message
    assert not [p for p in receiver.pages if p.path == "/carol"]
    assert incident(core, incident_id).next_escalation_at is None
    clock.advance(hours=1)
    assert pager.escalate_due() == 0


def test_resolving_an_incident_nobody_was_paged_for_sends_nothing(
    core: Podium, receiver: Receiver, pagers: Callable[..., Pager]
) -> None:
    core.catalog.create_team(ADMIN, "search")
    core.catalog.create_service(ADMIN, "cart", "search")
    pager = pagers(run=False)
    incident_id = trigger(core, pager, team="search")
    move(core, pager, incident_id, IncidentState.RESOLVED)
    assert [r.kind for r in outbox(core, incident_id)] == ["trigger"]


def test_a_rolled_back_incident_change_leaves_no_page(
    core: Podium, team: str, pagers: Callable[..., Pager]
) -> None:
    pager = pagers(run=False)

    class Boom(Exception):
        """Whatever makes the incident's transaction fail after the hook ran."""

    def open_and_fail() -> None:
        with core.store.session() as session:
            service = session.scalars(select(Service).where(Service.name == "cart")).one()
            row = Incident(service_id=service.id, environment="production", team_id=service.owner_id, summary="x")
            session.add(row)
            pager.on_triggered(session, row)
            raise Boom

    with pytest.raises(Boom):
        open_and_fail()
    assert outbox(core) == []


# With the incident service ----------------------------------------------------------------


def test_the_incident_service_pages_through_the_cores_pager(core: Podium, team: str, receiver: Receiver) -> None:
    assert core.incidents.pager is core.pager
    checkout = Actor("checkout", core.catalog.get_team("checkout").id, "t0")
    core.pager.run()
    opened = core.incidents.open(checkout, "cart", "production", "checkout fails at payment")
    [page] = receiver.wait_for(1, "alice")
    assert page.title == "[Podium] checkout fails at payment"
    assert f"podium incidents ack {opened.id}" in page.message
    core.incidents.acknowledge(checkout, opened.id)
    assert incident(core, opened.id).next_escalation_at is None
    core.incidents.resolve(checkout, opened.id)
    assert receiver.wait_for(2, "alice")[-1].title == "[Podium] Resolved: checkout fails at payment"
