"""``authorize``: the owner, the platform team, and a live grant for just its rights."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from podium.catalog.auth import Actor, authenticate
from podium.catalog.models import Grant, Right
from podium.catalog.service import CatalogService, authorize, get_service
from podium.core import Podium
from podium.errors import Forbidden

SOON = timedelta(days=1)


class Teams:
    """The platform team, ``checkout`` owning ``cart`` and ``pay``, and ``search`` owning nothing."""

    def __init__(self, catalog: CatalogService, admin_token: str) -> None:
        self.catalog = catalog
        self.admin = self.login(admin_token)
        for team in ("checkout", "search"):
            catalog.create_team(self.admin, team)
        self.checkout = self.login(catalog.create_token(self.admin, "checkout")[1])
        self.search = self.login(catalog.create_token(self.admin, "search")[1])
        catalog.create_service(self.checkout, "cart", "checkout")
        catalog.create_service(self.checkout, "pay", "checkout")

    def login(self, token: str) -> Actor:
        with self.catalog.store.session() as session:
            return authenticate(session, token)

    def allowed(self, actor: Actor, right: Right | None, service: str = "cart") -> bool:
        with self.catalog.store.session() as session:
            try:
                authorize(session, actor, get_service(session, service), right)
            except Forbidden:
                return False
            return True

    def grant(self, rights: list[str], service: str = "cart") -> Grant:
        return self.catalog.add_grant(self.checkout, service, "search", rights, datetime.now(UTC) + SOON)


@pytest.fixture
def teams(core: Podium, admin_token: str) -> Teams:
    return Teams(core.catalog, admin_token)


RIGHTS: list[Right | None] = [None, Right.DEPLOY, Right.CONFIG]


def test_owner_and_platform_may_do_everything(teams: Teams) -> None:
    assert all(teams.allowed(teams.checkout, right) for right in RIGHTS)
    assert all(teams.allowed(teams.admin, right) for right in RIGHTS)


def test_a_foreign_team_without_a_grant_may_do_nothing(teams: Teams) -> None:
    assert not any(teams.allowed(teams.search, right) for right in RIGHTS)


def test_a_grant_gives_only_its_rights(teams: Teams) -> None:
    teams.grant(["deploy"])
    assert teams.allowed(teams.search, Right.DEPLOY)
    assert not teams.allowed(teams.search, Right.CONFIG)
    assert not teams.allowed(teams.search, None)
    assert not teams.allowed(teams.search, Right.DEPLOY, service="pay")  # only on its own service

    catalog, search = teams.catalog, teams.search
    owner_only = [
        lambda: catalog.update_service(search, "cart", description="taken"),
        lambda: catalog.transfer_service(search, "cart", "search"),
        lambda: catalog.delete_service(search, "cart"),
        lambda: catalog.add_grant(search, "cart", "search", ["config"], datetime.now(UTC) + SOON),
        lambda: catalog.revoke_grant(search, "cart", catalog.list_grants("cart")[0].id),
    ]
    for attempt in owner_only:
        with pytest.raises(Forbidden):
            attempt()
    service = catalog.get_service("cart")
    assert (service.owner.name, service.description) == ("checkout", "")
    assert len(catalog.list_grants("cart")) == 1


def test_a_config_grant_does_not_allow_deploys(teams: Teams) -> None:
    teams.grant(["config"])
    assert teams.allowed(teams.search, Right.CONFIG)
    assert not teams.allowed(teams.search, Right.DEPLOY)


def test_a_revoked_grant_gives_nothing(teams: Teams) -> None:
    grant = teams.grant(["deploy", "config"])
    teams.catalog.revoke_grant(teams.checkout, "cart", grant.id)
    assert not any(teams.allowed(teams.search, right) for right in RIGHTS)


def test_a_grant_expires_by_itself(teams: Teams) -> None:
    grant = teams.grant(["deploy", "config"])
    assert teams.allowed(teams.search, Right.DEPLOY)
    with teams.catalog.store.session() as session:
        past = datetime.now(UTC) - timedelta(microseconds=1)
        session.execute(update(Grant).where(Grant.id == grant.id).values(expires_at=past))
    assert not any(teams.allowed(teams.search, right) for right in RIGHTS)
    assert teams.catalog.list_grants("cart") == []


def test_a_transfer_ends_the_former_owners_rights(teams: Teams) -> None:
    teams.catalog.transfer_service(teams.checkout, "cart", "search")
    assert not any(teams.allowed(teams.checkout, right) for right in RIGHTS)
    assert all(teams.allowed(teams.search, right) for right in RIGHTS)


def test_allows_answers_as_authorize_does(teams: Teams) -> None:
    teams.grant(["deploy"])
    for actor in (teams.admin, teams.checkout, teams.search):
        for right in (Right.DEPLOY, Right.CONFIG):
            for service in ("cart", "pay"):
                assert teams.catalog.allows(actor, service, right) == teams.allowed(actor, right, service)
    assert teams.catalog.allows(teams.search, "cart", Right.DEPLOY)
    assert not teams.catalog.allows(teams.search, "cart", Right.CONFIG)
