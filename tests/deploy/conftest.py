"""Deploy tests run the real node (supervisord + nginx); settings may be overridden per test.

Parametrize ``settings_overrides`` to change a setting for one test, e.g.
``@pytest.mark.parametrize("settings_overrides", [{"health_timeout": 3.0}])``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import create_service

from podium.config import Settings
from podium.runtime.ports import free_port


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings(data_dir: Path, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir, "port": free_port(), "router_port": free_port(),
        "health_timeout": 15.0, "watch_window": 0.0,
    }
    return Settings(**{**values, **settings_overrides})


@pytest.fixture
def service(admin: TestClient) -> str:
    """A service ``probe`` owned by team ``web``."""
    create_service(admin, "probe")
    return "probe"
