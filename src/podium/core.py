"""The Podium object: every service of the platform, built from one Settings."""

from __future__ import annotations

import os

from podium.catalog.service import CatalogService
from podium.config import Settings
from podium.store.db import Store


class Podium:
    """The core: the store and each capability's service, wired from settings.

    Transports (API, CLI, web) receive this object; nothing reaches for globals.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.store_url)
        self.catalog = CatalogService(self.store)

    def start(self) -> None:
        """Prepare the data dir and store, and make sure the admin token exists."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store.migrate()
        token = self.catalog.bootstrap_admin()
        if token is not None:
            write_secret(self.settings.admin_token_path, token)

    def close(self) -> None:
        self.store.dispose()


def write_secret(path: os.PathLike[str], text: str) -> None:
    """Write a secret to a file only its owner can read (mode 0600), replacing it atomically."""
    tmp = f"{os.fspath(path)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.replace(tmp, path)
