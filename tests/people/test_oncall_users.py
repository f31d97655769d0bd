"""Rotations that name Podium users: a page reaches every contact method of the person on call."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.support.receiver import Receiver

from podium.catalog.models import Service, Team
from podium.config import Settings
from podium.core import Podium
from podium.health.models import Incident
from podium.health.paging import Pager

API = "/api/v1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pager(settings: Settings, core: Podium) -> Iterator[Pager]:
    quick = settings.model_copy(update={"paging_poll_interval": 0.05, "paging_escalation_interval": 0.05})
    running = Pager(quick, core.store)
    running.run()
    yield running
    running.close()


def trigger(core: Podium, pager: Pager) -> None:
    """Open an incident on ``cart`` in production, as the incident service would."""
    with core.store.session() as session:
        service = session.scalars(select(Service).where(Service.name == "cart")).one()
        team_id = session.scalars(select(Team.id).where(Team.name == "checkout")).one()
        incident = Incident(service_id=service.id, environment="production", team_id=team_id, summary="cart is down")
        session.add(incident)
        pager.on_triggered(session, incident)


def test_a_page_for_a_user_on_call_goes_to_each_of_their_contact_methods(
    core: Podium, admin: TestClient, person: Callable[..., TestClient], receiver: Receiver, pager: Pager
) -> None:
    lead = person("lead", checkout="maintainer")
    person("ada", checkout="member")
    admin.post(f"{API}/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    contacts = [receiver.url("ada-phone"), receiver.url("ada-mail")]
    assert admin.patch(f"{API}/users/ada", json={"contacts": contacts}).status_code == 200

    rotation = {"members": [{"name": "ada"}, {"name": "ext", "url": receiver.url("ext")}],
                "period": "weekly", "handoff": "mon 09:00"}
    set_ = lead.put(f"{API}/teams/checkout/oncall", json=rotation)
    assert set_.status_code == 200, set_.text
    assert set_.json()["current"]["name"] == "ada"
    assert receiver.url("ada-phone") not in set_.text  # contact methods may hold secrets

    trigger(core, pager)
    pages = receiver.wait_for(2)
    assert sorted(page.path for page in pages) == ["/ada-mail", "/ada-phone"]

    # A changed contact method is where the next page goes.
    assert admin.patch(f"{API}/users/ada", json={"contacts": [receiver.url("ada-new")]}).status_code == 200
    trigger(core, pager)
    assert "/ada-new" in [page.path for page in receiver.wait_for(3)]


def test_a_rotation_names_only_members_with_a_way_to_reach_them(
    admin: TestClient, person: Callable[..., TestClient], receiver: Receiver
) -> None:
    lead = person("lead", checkout="maintainer")
    dev = person("dev", checkout="member")
    person("outsider", search="member")
    admin.patch(f"{API}/users/outsider", json={"contacts": [receiver.url("o")]}).raise_for_status()

    def set_rotation(client: TestClient, *names: str) -> tuple[int, str]:
        body = {"members": [{"name": n} for n in names], "period": "daily", "handoff": "09:00"}
        response = client.put(f"{API}/teams/checkout/oncall", json=body)
        return response.status_code, response.text

    assert set_rotation(lead, "dev")[0] == 422  # no contact methods yet
    assert "podium users update dev --contact" in set_rotation(lead, "dev")[1]
    assert set_rotation(lead, "outsider")[0] == 422  # not a member of the team
    assert set_rotation(lead, "nobody")[0] == 422
    dev.patch(f"{API}/users/dev", json={"contacts": [receiver.url("dev")]}).raise_for_status()
    assert set_rotation(dev, "dev")[0] == 403  # a member, not a maintainer
    assert set_rotation(lead, "dev")[0] == 200
