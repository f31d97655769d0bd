"""App tokens: one per service environment, checked, scoped, refused everywhere else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from podium.api.app import create_app
from podium.catalog.auth import Actor
from podium.catalog.service import get_environment, get_service
from podium.core import Podium
from podium.errors import Forbidden, Unauthorized
from podium.experiments.models import AppToken
from podium.experiments.tokens import AppCaller, is_app_token


def environment_id(core: Podium, service: str, env: str) -> int:
    with core.store.session() as session:
        return get_environment(session, get_service(session, service), env).id


@pytest.fixture
def shop(admin: TestClient, team_client: Callable[[str], TestClient]) -> TestClient:
    owner = team_client("shop")
    owner.post("/api/v1/services", json={"name": "shop", "owner": "shop"}).raise_for_status()
    owner.post("/api/v1/services", json={"name": "blog", "owner": "shop"}).raise_for_status()
    return owner


def test_one_live_token_per_environment_stored_hashed_and_sealed(core: Podium, shop: TestClient) -> None:
    production = environment_id(core, "shop", "production")
    token = core.app_tokens.token_for(production)
    assert is_app_token(token)
    assert core.app_tokens.token_for(production) == token  # the same one for every release
    assert core.app_tokens.token_for(environment_id(core, "shop", "staging")) != token
    with core.store.session() as session:
        [row] = session.query(AppToken).filter_by(environment_id=production).all()
        assert token.split("_", 2)[2] not in (row.secret_hash + row.sealed)  # neither holds the secret in clear
    assert core.app_tokens.authenticate(token) == AppCaller(row.id, production, "shop", "production", "shop")


def test_unknown_or_forged_tokens_are_refused(core: Podium, shop: TestClient) -> None:
    token = core.app_tokens.token_for(environment_id(core, "shop", "production"))
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), "pda_0123456789abcdef_" + "x" * 43, "pda_nope"):
        with pytest.raises(Unauthorized):
            core.app_tokens.authenticate(bad)


def test_rotation_revokes_the_old_token_at_once(core: Podium, shop: TestClient) -> None:
    production = environment_id(core, "shop", "production")
    old = core.app_tokens.token_for(production)
    owner = Actor(team="shop", team_id=get_owner_id(core, "shop"), token_id=None)
    info = core.app_tokens.rotate(owner, "shop", "production")
    new = core.app_tokens.token_for(production)
    assert new != old
    assert new.split("_")[1] == info.id
    with pytest.raises(Unauthorized):
        core.app_tokens.authenticate(old)
    assert core.app_tokens.authenticate(new).env == "production"
    stranger = Actor(team="other", team_id=10_000, token_id=None)
    with pytest.raises(Forbidden):
        core.app_tokens.rotate(stranger, "shop", "production")


def get_owner_id(core: Podium, service: str) -> int:
    with core.store.session() as session:
        return get_service(session, service).owner_id


def test_an_app_token_is_refused_on_every_team_route(core: Podium, shop: TestClient) -> None:
    token = core.app_tokens.token_for(environment_id(core, "shop", "production"))
    with TestClient(create_app(core), headers={"Authorization": f"Bearer {token}"}) as app:
        for path in (
            "/api/v1/services",
            "/api/v1/services/shop",
            "/api/v1/teams/shop",
            "/api/v1/services/shop/environments/production/config",
        ):
            response = app.get(path)
            assert response.status_code == 401, (path, response.text)
        assert app.post("/api/v1/teams", json={"name": "evil"}).status_code == 401
