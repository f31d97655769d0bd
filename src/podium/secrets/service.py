"""``rotate_key``: every sealed value in the store sealed again with a new key, in one transaction.

The steps, each safe to be cut short:

1. the new key is written (``secrets.key.next``, 0600) before any row uses it;
2. the store's keyring seals with the new key and opens with both, so writes made while
   the rotation runs are readable whichever way it ends;
3. the tables holding sealed values are locked against writes, every value is opened
   and sealed again with the new key, and the transaction commits;
4. the new key replaces the old one in ``secrets.key``: the old key is gone.

A failure before 4 leaves ``secrets.key.next`` in place: both keys open every row, and
the next rotation finishes with that same new key.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Connection, column, false, select, table, text, update

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.errors import Conflict, Forbidden, PodiumError
from podium.store.crypto import Keyring, SealedJSON
from podium.store.db import Store


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the values sealed again, per table, and where the key lives now."""

    resealed: dict[str, int]
    key_source: str


def sealed_columns() -> list[tuple[str, str, str]]:
    """``(table, primary key, column)`` of every ``SealedJSON`` column in the schema."""
    from podium.store.models import metadata  # every table; imported late, as it imports every capability

    found = []
    for name, each in sorted(metadata.tables.items()):
        keys = list(each.primary_key.columns)
        for col in each.columns:
            if isinstance(col.type, SealedJSON) and len(keys) == 1:
                found.append((name, keys[0].name, col.name))
    return found


def reseal(connection: Connection, keyring: Keyring, columns: list[tuple[str, str, str]]) -> dict[str, int]:
    """Open every value of ``columns`` and seal it with ``keyring``'s sealing key; plain ones are sealed."""
    counts: dict[str, int] = {}
    for name, key, col in columns:
        raw = table(name, column(key), column(col, JSON))  # the stored JSON, not opened by SealedJSON
        rows = connection.execute(select(raw.c[key], raw.c[col])).all()
        for ident, value in rows:
            plain = keyring.open(value) if isinstance(value, str) else json.dumps(value).encode()
            connection.execute(update(raw).where(raw.c[key] == ident).values({col: keyring.seal(plain)}))
        counts[f"{name}.{col}"] = len(rows)
    return counts


class SecretsService:
    """The key that seals config vars in the store, and its rotation."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rotating = threading.Lock()

    def rotate_key(self, actor: Actor) -> Rotation:
        """Seal every stored secret with a new key and drop the old one (platform team only)."""
        if not actor.is_admin:
            raise Forbidden("only the platform team may rotate the secrets key")
        keyring = self.store.keyring
        if keyring is None:
            raise PodiumError("this store has no secrets key")
        if not self._rotating.acquire(blocking=False):
            raise Conflict("a rotation of the secrets key is already running")
        try:
            return self._rotate(actor, keyring)
        finally:
            self._rotating.release()

    def _rotate(self, actor: Actor, keyring: Keyring) -> Rotation:
        columns = sealed_columns()
        key = keyring.next_key()
        keyring.begin_rotation(key)
        try:
            with self.store.session() as session:
                connection = session.connection()
                _lock_for_writes(connection, columns)
                counts = reseal(connection, keyring, columns)
                audit.record(session, actor, "secrets.rotate-key", after={"resealed": sum(counts.values())})
        except BaseException:
            keyring.rotation_failed()
            raise
        keyring.finish_rotation(key)
        source = f"{keyring.key_path}" if keyring.from_file else "PODIUM_SECRETS_KEY (its first key)"
        return Rotation(resealed=counts, key_source=source)


def _lock_for_writes(connection: Connection, columns: list[tuple[str, str, str]]) -> None:
    """Hold off writers until the commit, so none seals a row after it was read here."""
    if connection.dialect.name == "postgresql":
        for name in sorted({name for name, _, _ in columns}):  # names from the schema, not from input
            connection.execute(text(f'LOCK TABLE "{name}" IN EXCLUSIVE MODE'))
    elif columns:  # SQLite: a first write, even of no row, takes the database's one write lock
        name, key, _ = columns[0]
        raw = table(name, column(key))
        connection.execute(update(raw).where(false()).values({key: raw.c[key]}))


def describe(rotation: Rotation) -> dict[str, Any]:
    return {"resealed": rotation.resealed, "key": rotation.key_source}
