"""The store on both backends: a fresh SQLite file or a fresh PostgreSQL database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from podium.catalog.service import CatalogService
from podium.config import Settings
from podium.store.db import Store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store: nothing migrated yet."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path).store_url
        return
    superuser_url: str = request.getfixturevalue("postgres_url")
    name = f"podium_{uuid.uuid4().hex[:12]}"
    admin = create_engine(superuser_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(superuser_url).set(database=name).render_as_string(hide_password=False)
        yield Settings(database_url=url, data_dir=tmp_path).store_url
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store."""
    opened = Store(store_url)
    opened.migrate()
    yield opened
    opened.dispose()


@pytest.fixture
def catalog(store: Store) -> CatalogService:
    return CatalogService(store)
