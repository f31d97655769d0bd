"""Add-on fixtures: a password-checking PostgreSQL server shared by the run, and a service to give databases to.

Most tests point ``PODIUM_ADDONS_POSTGRES_URL`` at that server (an existing server, the
way a platform at scale runs it); ``test_embedded.py`` uses the cluster Podium runs itself.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.addons.support import password_cluster

from podium.catalog.auth import Actor
from podium.core import Podium

ADMIN = Actor(team="platform", team_id=0, token_id=None)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A superuser URL of a cluster that checks passwords; outside pytest's private temp dirs."""
    base = Path(tempfile.mkdtemp(prefix="podium-addons-pg-"))
    base.chmod(0o755)
    try:
        with password_cluster(base / "cluster") as url:
            yield url
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def addon_settings() -> dict[str, Any]:
    """Parametrize this to change add-on settings for one test."""
    return {}


@pytest.fixture
def settings_overrides(server_url: str, addon_settings: dict[str, Any]) -> dict[str, Any]:
    return {"addons_postgres_url": server_url, **addon_settings}


@pytest.fixture
def owner(core: Podium) -> Actor:
    """Team ``shop``, owner of services ``cart`` and ``search``."""
    core.catalog.create_team(ADMIN, "shop")
    for name in ("cart", "search"):
        core.catalog.create_service(ADMIN, name, "shop")
    team = core.catalog.get_team("shop")
    return Actor(team="shop", team_id=team.id, token_id=None)


@pytest.fixture
def outsider(core: Podium) -> Actor:
    team = core.catalog.create_team(ADMIN, "ads")
    return Actor(team="ads", team_id=team.id, token_id=None)
