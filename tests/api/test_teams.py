"""Teams and tokens: who may create them, what is shown, what is stored."""

from __future__ import annotations

import stat
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select

from podium.config import Settings
from podium.core import Podium


def test_the_admin_token_is_written_once_and_kept(settings: Settings) -> None:
    first = Podium(settings)
    first.start()
    path = settings.admin_token_path
    token = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token.startswith("pdm_")
    first.close()

    second = Podium(settings)
    second.start()
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second.close()


def test_admin_creates_lists_and_shows_teams(admin: TestClient) -> None:
    created = admin.post("/api/v1/teams", json={"name": "checkout", "description": "Pays"})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "checkout"
    assert [t["name"] for t in admin.get("/api/v1/teams").json()] == ["checkout", "platform"]
    shown = admin.get("/api/v1/teams/checkout").json()
    assert (shown["name"], shown["description"]) == ("checkout", "Pays")


def test_team_errors(admin: TestClient, team_client: Callable[[str], TestClient]) -> None:
    admin.post("/api/v1/teams", json={"name": "checkout"}).raise_for_status()
    assert admin.post("/api/v1/teams", json={"name": "checkout"}).status_code == 409
    assert admin.post("/api/v1/teams", json={"name": "platform"}).status_code == 409
    assert admin.get("/api/v1/teams/nobody").status_code == 404
    for bad in ["Checkout", "9lives", "with_underscore", "trailing-", "a" * 41, "", "new\nline", "ünïcode"]:
        refused = admin.post("/api/v1/teams", json={"name": bad})
        assert refused.status_code == 422, bad
        assert "lower-case letter" in refused.json()["detail"], bad
    assert admin.post("/api/v1/teams", json={"name": "a" * 40}).status_code == 201

    search = team_client("search")
    refused = search.post("/api/v1/teams", json={"name": "rogue"})
    assert refused.status_code == 403
    assert "platform" in refused.json()["detail"]
    assert admin.get("/api/v1/teams/rogue").status_code == 404


def test_requests_without_a_valid_token_get_401(api: TestClient, admin: TestClient) -> None:
    for headers in [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer pdm_000000000000_" + "x" * 43}]:
        refused = api.get("/api/v1/teams", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["detail"]
    # A right id with a wrong secret is as unknown as a wrong id.
    [token] = admin.get("/api/v1/teams/platform/tokens").json()
    forged = f"pdm_{token['id']}_{'x' * 43}"
    assert api.get("/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_tokens_are_shown_once_listed_without_secrets_and_revocable(
    core: Podium, admin: TestClient, api: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    checkout = team_client("checkout")
    created = checkout.post("/api/v1/teams/checkout/tokens", json={"description": "ci"})
    assert created.status_code == 201, created.text
    body = created.json()
    token, token_id = body["token"], body["id"]
    assert token.startswith(f"pdm_{token_id}_")
    as_new = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/whoami", headers=as_new).json() == {
        "team": "checkout", "token_id": token_id, "admin": False, "user": None, "session_id": None,
    }

    listed = checkout.get("/api/v1/teams/checkout/tokens")
    assert listed.status_code == 200
    assert token_id in [t["id"] for t in listed.json()]
    for row in listed.json():
        assert set(row) == {"id", "team", "name", "description", "created_by", "created_at", "revoked_at"}
    assert token.split("_", 2)[2] not in listed.text

    revoked = checkout.delete(f"/api/v1/teams/checkout/tokens/{token_id}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert api.get("/api/v1/whoami", headers=as_new).status_code == 401
    assert checkout.delete(f"/api/v1/teams/checkout/tokens/{token_id}").status_code == 200  # idempotent
    assert checkout.delete("/api/v1/teams/checkout/tokens/0123456789ab").status_code == 404
    assert checkout.delete("/api/v1/teams/checkout/tokens/not-a-token-id").status_code == 404
    assert admin.delete("/api/v1/teams/nobody/tokens/0123456789ab").status_code == 404

    actions = [(e["action"], e["target"]) for e in admin.get("/api/v1/audit").json()[:2]]
    assert actions == [("token.revoke", f"checkout/{token_id}"), ("token.create", f"checkout/{token_id}")]


def test_a_team_manages_only_its_own_tokens(admin: TestClient, team_client: Callable[[str], TestClient]) -> None:
    checkout, search = team_client("checkout"), team_client("search")
    [own] = checkout.get("/api/v1/teams/checkout/tokens").json()
    assert search.post("/api/v1/teams/checkout/tokens", json={}).status_code == 403
    assert search.get("/api/v1/teams/checkout/tokens").status_code == 403
    assert search.delete(f"/api/v1/teams/checkout/tokens/{own['id']}").status_code == 403
    # A team cannot revoke another team's token through its own team's path either.
    assert search.delete(f"/api/v1/teams/search/tokens/{own['id']}").status_code == 404
    assert checkout.get("/api/v1/whoami").status_code == 200
    # The platform team may do it for any team.
    assert admin.post("/api/v1/teams/checkout/tokens", json={}).status_code == 201


def test_the_store_keeps_only_a_hash_of_each_token(core: Podium, admin: TestClient, admin_token: str) -> None:
    admin.post("/api/v1/teams", json={"name": "checkout"}).raise_for_status()
    token = admin.post("/api/v1/teams/checkout/tokens", json={}).json()["token"]
    secrets = [t.split("_", 2)[2] for t in (token, admin_token)]

    tables = MetaData()
    tables.reflect(core.store.engine)
    with core.store.engine.connect() as conn:
        stored = " ".join(
            repr(row) for table in tables.sorted_tables for row in conn.execute(select(table))
        )
    assert "tokens" in tables.tables
    for secret in secrets:
        assert secret not in stored
    # Nor anywhere in the SQLite files, write-ahead log included.
    for path in core.settings.data_dir.glob("podium.db*"):
        raw = path.read_bytes()
        assert all(secret.encode() not in raw for secret in secrets), path
