"""Config vars are sealed in the store with a key kept outside it: a secret set and then
unset (or rotated) leaves no bytes in the SQLite files, the store files are private, every
release stays readable through ``podium secrets rotate-key``, and the old key opens nothing
afterwards. The migration seals rows written before sealing, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from cryptography.fernet import Fernet, InvalidToken
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.conftest import LiveServer
from tests.deploy.support import await_change, create_service, deploy, env_path, probe_app, slug_of, through_router
from typer.testing import CliRunner

from podium.cli.main import app as cli
from podium.config import Settings
from podium.core import Podium
from podium.store.db import Store, alembic_config

SERVICE = "safe"
STAGING = env_path(SERVICE, "staging")
FIRST, SECOND = "first-secret-8c1f2e", "second-secret-47d9a0"


def store_bytes(data_dir: Path) -> bytes:
    """Everything SQLite keeps on disk for the store."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("podium.db*")))


def raw_configs(data_dir: Path) -> list[Any]:
    """The config columns as stored, read past Podium."""
    with sqlite3.connect(data_dir / "podium.db") as db:
        rows = db.execute("SELECT config FROM releases UNION ALL SELECT config FROM deploy_states").fetchall()
    return [json.loads(value) for (value,) in rows]


def served_env(settings: Settings) -> dict[str, str]:
    answer: dict[str, str] = through_router(settings.router_port, f"{SERVICE}.staging.localhost").json()["env"]
    return answer


def test_a_secret_leaves_no_bytes_in_the_store_and_survives_a_key_rotation(
    admin: TestClient, live_server: LiveServer, settings: Settings, tmp_path: Path
) -> None:
    create_service(admin, SERVICE)
    admin.patch(f"{STAGING}/config", json={"set": {"CFG_TOKEN": FIRST, "CFG_KEEP": "kept"}}).raise_for_status()
    v1 = deploy(admin, SERVICE, "staging", slug_of(probe_app(tmp_path / "app")))
    assert v1.release["status"] == "live", v1.release
    assert served_env(settings)["CFG_TOKEN"] == FIRST  # opened on its way to the app
    await_change(admin.patch(f"{STAGING}/config", json={"set": {"CFG_TOKEN": SECOND}}), admin, SERVICE, "staging")
    await_change(admin.patch(f"{STAGING}/config", json={"unset": ["CFG_TOKEN"]}), admin, SERVICE, "staging")
    assert admin.get(f"{STAGING}/config").json() == {"CFG_KEEP": "kept"}

    data_dir = settings.data_dir
    on_disk = store_bytes(data_dir)
    for secret in (FIRST, SECOND):  # values; the audit log names the keys that changed, by design
        assert secret.encode() not in on_disk
    for name in ("podium.db", "podium.db-wal", "podium.db-shm"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((data_dir / "secrets.key").stat().st_mode) == 0o600

    old_key = (data_dir / "secrets.key").read_text().strip()
    rotated = CliRunner().invoke(
        cli, ["secrets", "rotate-key"], env={"PODIUM_URL": live_server.url, "PODIUM_TOKEN": live_server.admin_token}
    )
    assert rotated.exit_code == 0, (rotated.stdout, rotated.stderr)
    assert "releases.config" in rotated.stdout

    new_key = (data_dir / "secrets.key").read_text().strip()
    assert new_key != old_key
    assert not (data_dir / "secrets.key.next").exists()
    sealed = raw_configs(data_dir)
    assert len(sealed) == 4  # three releases and the current config
    for value in sealed:
        assert isinstance(value, str)
        with pytest.raises(InvalidToken):
            Fernet(old_key.encode()).decrypt(value.encode())
        assert "CFG_KEEP" in json.loads(Fernet(new_key.encode()).decrypt(value.encode()))

    versions = [r["version"] for r in admin.get(f"{STAGING}/releases").json()]
    assert versions == ["v3", "v2", "v1"]
    assert admin.get(f"{STAGING}/releases/v2").json()["config_keys"] == ["CFG_KEEP", "CFG_TOKEN"]
    back = await_change(admin.post(f"{STAGING}/rollback", json={"to": "v2"}), admin, SERVICE, "staging")
    assert back.release["status"] == "live", back.release
    assert served_env(settings)["CFG_TOKEN"] == SECOND


def test_only_the_platform_team_rotates_the_key(admin: TestClient, live_server: LiveServer, tmp_path: Path) -> None:
    admin.post("/api/v1/teams", json={"name": "shop"}).raise_for_status()
    token = admin.post("/api/v1/teams/shop/tokens", json={}).json()["token"]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PODIUM_URL": live_server.url, "PODIUM_TOKEN": token}
    refused = subprocess.run(
        [str(Path(sys.executable).parent / "podium"), "secrets", "rotate-key"], env=env, capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert refused.returncode != 0
    assert "only the platform team may rotate the secrets key" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Settings]:
    """Settings for a fresh store on either backend."""
    if request.param == "sqlite":
        yield Settings(data_dir=data_dir)
        return
    superuser_url: str = request.getfixturevalue("postgres_url")
    name = f"podium_{uuid.uuid4().hex[:12]}"
    server = create_engine(superuser_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(superuser_url).set(database=name).render_as_string(hide_password=False)
        yield Settings(data_dir=data_dir, database_url=url)
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        server.dispose()


def move(store: Store, to: str, *, up: bool) -> None:
    config = alembic_config(store.url)
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.upgrade if up else command.downgrade)(config, to)


def stored_config(store: Store) -> Any:
    with store.engine.connect() as connection:
        value = connection.execute(text("SELECT config FROM deploy_states")).scalar_one()
    return json.loads(value) if isinstance(value, str) and value.startswith("{") else value


def test_the_migration_seals_plain_rows_and_rotation_reseals_them(any_store: Settings) -> None:
    core = Podium(any_store)
    core.start()
    try:
        with TestClient(core_app(core), headers={"Authorization": f"Bearer {admin_token(any_store)}"}) as admin:
            create_service(admin, SERVICE)
            admin.patch(f"{STAGING}/config", json={"set": {"CFG_TOKEN": FIRST}}).raise_for_status()
            move(core.store, "0110-1", up=False)  # as a store written before sealing began
            assert stored_config(core.store) == {"CFG_TOKEN": FIRST}
            move(core.store, "head", up=True)
            sealed = stored_config(core.store)
            assert isinstance(sealed, str)
            assert FIRST not in sealed
            assert admin.get(f"{STAGING}/config").json() == {"CFG_TOKEN": FIRST}

            answer = admin.post("/api/v1/secrets/rotate-key")
            assert answer.status_code == 200, answer.text
            assert answer.json()["resealed"] == {"deploy_states.config": 1, "releases.config": 0}
            resealed = stored_config(core.store)
            assert resealed != sealed
            assert admin.get(f"{STAGING}/config").json() == {"CFG_TOKEN": FIRST}
            audit = admin.get("/api/v1/audit").json()
            assert any(event["action"] == "secrets.rotate-key" for event in audit)
    finally:
        core.close()


def core_app(core: Podium) -> Any:
    from podium.api.app import create_app

    return create_app(core)


def admin_token(settings: Settings) -> str:
    return settings.admin_token_path.read_text().strip()
