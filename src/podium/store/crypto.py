"""Secrets at rest: config vars are sealed in the store with a key kept outside it.

A ``SealedJSON`` column holds its JSON value as a Fernet token (AES-128-CBC + HMAC-SHA256),
written as a JSON string, so the column's type in the schema stays JSON and code keeps
reading dicts. The key is not in the store: a copy of ``podium.db`` (or a dump of the
PostgreSQL database) holds ciphertext only.

Where the key comes from (``Keyring.from_settings``):

- the ``secrets_key`` setting (``PODIUM_SECRETS_KEY``), one or more Fernet keys separated
  by commas, the first sealing and every one opening; or else
- ``<data dir>/secrets.key`` (mode 0600), created on first use. During a rotation the
  new key waits in ``secrets.key.next`` until every row is sealed with it; a keyring
  opens with both, so a rotation cut short leaves everything readable.

The keyring reaches the column type through the engine's dialect (``attach``): a type
decorator sees only the dialect, and two stores in one process keep two keys.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, Engine
from sqlalchemy.types import TypeDecorator

from podium.errors import Invalid, PodiumError

KEY_FILE = "secrets.key"
NEXT_KEY_FILE = "secrets.key.next"
_DIALECT_ATTRIBUTE = "podium_keyring"


class Keyring:
    """The keys that seal and open stored secrets: the first seals, any opens."""

    def __init__(self, keys: list[str], key_path: Path | None = None) -> None:
        """``keys`` as given by the setting; with none, the key file at ``key_path`` (read lazily)."""
        self._given = [key.strip() for key in keys if key.strip()]
        self.key_path = key_path
        self._fernet: MultiFernet | None = None
        self._loading = threading.Lock()  # the first seal or open may come from several threads at once

    @classmethod
    def from_settings(cls, secrets_key: str | None, data_dir: Path) -> Keyring:
        keys = (secrets_key or "").split(",")
        return cls(keys, None if any(k.strip() for k in keys) else data_dir.absolute() / KEY_FILE)

    @property
    def from_file(self) -> bool:
        """The key lives in a file Podium manages (and so can rotate by itself)."""
        return not self._given

    def _keys(self) -> list[str]:
        if self._given:
            return self._given
        assert self.key_path is not None
        keys = [load_or_create_key(self.key_path)]
        pending = self.key_path.with_name(NEXT_KEY_FILE)
        if pending.exists():  # a rotation was cut short: rows may be sealed with either key
            keys.append(pending.read_text().strip())
        return keys

    def _multi(self) -> MultiFernet:
        with self._loading:
            if self._fernet is None:
                self._fernet = _multi(self._keys())
            return self._fernet

    def seal(self, plain: bytes) -> str:
        return self._multi().encrypt(plain).decode()

    def open(self, sealed: str) -> bytes:
        try:
            return self._multi().decrypt(sealed.encode())
        except InvalidToken:
            raise PodiumError(
                "a stored secret does not open with the secrets key: was PODIUM_SECRETS_KEY or "
                "<data dir>/secrets.key changed?"
            ) from None

    def next_key(self) -> str:
        """The key a rotation seals with: a rotation cut short is finished with its own new key;
        with keys from the setting, the first of them; otherwise a new one, kept in
        ``secrets.key.next`` (0600, on disk) before any row is sealed with it."""
        if self._given:
            return self._given[0]
        assert self.key_path is not None
        pending = self.key_path.with_name(NEXT_KEY_FILE)
        if pending.exists():
            return pending.read_text().strip()
        key = new_key()
        write_key(pending, key)
        return key

    def begin_rotation(self, key: str) -> None:
        """From now on seal with ``key``; every current key still opens."""
        with self._loading:
            self._fernet = _multi([key, *[k for k in self._keys() if k != key]])

    def finish_rotation(self, key: str) -> None:
        """Every row is sealed with ``key``: with a key file, it replaces the old key, which is gone."""
        if not self._given:
            assert self.key_path is not None
            os.replace(self.key_path.with_name(NEXT_KEY_FILE), self.key_path)
        with self._loading:
            self._fernet = _multi([key]) if not self._given else None

    def rotation_failed(self) -> None:
        """Read the keys again: ``secrets.key.next`` stays, so rows sealed with it still open."""
        with self._loading:
            self._fernet = None


def _multi(keys: list[str]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise Invalid("the secrets key is not a Fernet key (32 url-safe base64-encoded bytes)") from None


def new_key() -> str:
    return Fernet.generate_key().decode()


def attach(engine: Engine, keyring: Keyring) -> None:
    """Let ``SealedJSON`` columns on ``engine`` seal and open with ``keyring``."""
    setattr(engine.dialect, _DIALECT_ATTRIBUTE, keyring)


def keyring_of(dialect: Any) -> Keyring:
    keyring = getattr(dialect, _DIALECT_ATTRIBUTE, None)
    if not isinstance(keyring, Keyring):
        raise PodiumError("this store has no secrets key: open it with Store(url, keyring=...)")
    return keyring


class SealedJSON(TypeDecorator[Any]):
    """A JSON value stored sealed: the column holds a Fernet token as a JSON string.

    A value that is still a JSON object (written before sealing began) reads as it is;
    the migration that introduced sealing, and every rotation, seal such rows.
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        return keyring_of(dialect).seal(json.dumps(value, separators=(",", ":")).encode())

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if isinstance(value, str):
            return json.loads(keyring_of(dialect).open(value))
        return value


def load_or_create_key(path: Path) -> str:
    """The key in ``path``; a new one written there first (mode 0600) when there is none.

    Two processes creating it at once agree: the file is created exclusively, and the
    loser reads the winner's key.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    write_key(tmp, key)
    try:
        os.link(tmp, path)  # fails if another process got there first
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return key


def write_key(path: Path, key: str) -> None:
    """Write a key to a file only its owner reads, flushed to disk before it is relied on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
