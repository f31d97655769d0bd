"""Engine, sessions and migrations of the control-plane store (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, Engine, create_engine, event, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from podium.store.crypto import Keyring, attach

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC: the only clock the store records."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite keeps no timezone; without this, times read back naive and compare wrongly
    with aware ones.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every Podium table."""

    type_annotation_map = {datetime: UTCDateTime}


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if url.startswith("sqlite"):
        _private_sqlite_files(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA secure_delete=ON")  # a deleted or replaced secret leaves no bytes behind
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _private_sqlite_files(url: str) -> None:
    """The store file and its -wal/-shm readable by Podium's user only (0600).

    SQLite creates -wal and -shm with the database file's mode, so the file is created
    0600 before SQLite opens it; files left by an older version are tightened here.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if each.exists():
            each.chmod(0o600)


def alembic_config(url: str) -> Config:
    """Alembic's configuration pointed at Podium's migrations and the given store."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class Store:
    """The store: one engine and its session factory, migrated on open."""

    def __init__(self, url: str, keyring: Keyring | None = None) -> None:
        """``keyring`` seals and opens secrets (``SealedJSON`` columns); without one, they cannot be read."""
        self.url = url
        self.engine = make_engine(url)
        self.keyring = keyring
        if keyring is not None:
            attach(self.engine, keyring)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Apply every Alembic migration not yet applied."""
        config = alembic_config(self.url)
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
