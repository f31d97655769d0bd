"""Secrets at rest: add-on URLs are sealed with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from the ``addons_key`` setting, or from ``<data dir>/addons.key`` (mode
0600), which is created on first use. Losing the key loses the stored URLs, not the
databases: a credential rotation issues new ones.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from podium.errors import Invalid, PodiumError
from podium.store.crypto import load_or_create_key


class Sealer:
    """Seals and opens short secrets with one Fernet key, read or created lazily."""

    def __init__(self, key_path: Path, key: str | None = None) -> None:
        self.key_path = key_path
        self._given = key
        self._fernet: Fernet | None = None

    def _key(self) -> Fernet:
        if self._fernet is None:
            text = self._given if self._given is not None else load_or_create_key(self.key_path)
            try:
                self._fernet = Fernet(text.strip().encode())
            except ValueError:
                raise Invalid("the add-ons key is not a Fernet key (32 url-safe base64-encoded bytes)") from None
        return self._fernet

    def seal(self, secret: str) -> str:
        return self._key().encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._key().decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise PodiumError("a stored add-on secret does not open with the current key: was the key changed?")\
                from None
