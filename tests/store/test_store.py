"""The control-plane store behaves the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, update

from podium.catalog.auth import Actor, authenticate
from podium.catalog.models import Grant, Right, Team
from podium.catalog.service import CatalogService, authorize, get_service
from podium.errors import Conflict, Forbidden
from podium.store.db import Store, alembic_config
from podium.store.models import metadata


def login(catalog: CatalogService, token: str) -> Actor:
    with catalog.store.session() as session:
        return authenticate(session, token)


@pytest.fixture
def admin(catalog: CatalogService) -> Actor:
    token = catalog.bootstrap_admin()
    assert token is not None
    return login(catalog, token)


def test_migrations_build_every_table_from_scratch(store_url: str) -> None:
    store = Store(store_url)
    try:
        assert inspect(store.engine).get_table_names() == []
        store.migrate()
        tables = set(inspect(store.engine).get_table_names())
        assert set(metadata.tables) <= tables
        assert "alembic_version" in tables
        store.migrate()  # a second run finds nothing to do
    finally:
        store.dispose()


def test_migrations_head_matches_the_models(store: Store) -> None:
    """The equivalent of ``alembic check``: no model change lacks a migration."""
    head = ScriptDirectory.from_config(alembic_config(store.url)).get_current_head()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert context.get_current_revision() == head
        assert compare_metadata(context, metadata) == []


def test_catalog_verbs_round_trip(catalog: CatalogService, admin: Actor) -> None:
    catalog.create_team(admin, "checkout", "Pays")
    catalog.create_team(admin, "search")
    service = catalog.create_service(admin, "cart", "checkout", "The cart", "production")
    assert [env.name for env in service.environments] == ["staging", "production"]
    with pytest.raises(Conflict):
        catalog.create_service(admin, "cart", "search")

    expires = datetime.now(UTC) + timedelta(days=1)
    grant = catalog.add_grant(admin, "cart", "search", ["deploy"], expires, "launch week")
    [listed] = catalog.list_grants("cart")
    assert (listed.id, listed.team.name, listed.rights) == (grant.id, "search", ["deploy"])
    assert listed.expires_at == expires

    shown = catalog.get_service("cart")
    assert (shown.owner.name, shown.lifecycle, shown.description) == ("checkout", "production", "The cart")
    assert [s.name for s in catalog.list_services(owner="checkout", lifecycle="production")] == ["cart"]
    assert catalog.list_services(owner="search") == []

    actions = [e.action for e in catalog.audit_log(admin)]
    assert actions == ["grant.add", "service.create", "team.create", "team.create"]


def test_timestamps_come_back_timezone_aware(catalog: CatalogService, admin: Actor) -> None:
    catalog.create_team(admin, "checkout")
    catalog.create_service(admin, "cart", "checkout")
    catalog.create_team(admin, "search")
    grant = catalog.add_grant(admin, "cart", "search", ["config"], datetime.now(UTC) + timedelta(hours=1))
    with catalog.store.session() as session:
        team = session.scalar(select(Team).where(Team.name == "checkout"))
        assert team is not None
        service = get_service(session, "cart")
        times = [team.created_at, service.created_at, service.updated_at]
    [listed] = catalog.list_grants("cart")
    times += [grant.expires_at, listed.expires_at, listed.created_at]
    times += [e.at for e in catalog.audit_log(admin)]
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in times)


def test_an_expired_grant_gives_nothing(catalog: CatalogService, admin: Actor) -> None:
    catalog.create_team(admin, "checkout")
    catalog.create_team(admin, "search")
    catalog.create_service(admin, "cart", "checkout")
    grant = catalog.add_grant(admin, "cart", "search", ["deploy"], datetime.now(UTC) + timedelta(days=1))
    search_token = catalog.create_token(admin, "search")[1]
    search = login(catalog, search_token)
    with catalog.store.session() as session:
        authorize(session, search, get_service(session, "cart"), Right.DEPLOY)

    past = datetime.now(UTC) - timedelta(seconds=1)
    with catalog.store.session() as session:
        session.execute(update(Grant).where(Grant.id == grant.id).values(expires_at=past))
    with catalog.store.session() as session, pytest.raises(Forbidden):
        authorize(session, search, get_service(session, "cart"), Right.DEPLOY)
    assert catalog.list_grants("cart") == []
    assert [g.id for g in catalog.list_grants("cart", include_expired=True)] == [grant.id]
