"""Deploy tests run the real node (supervisord + nginx); settings may be overridden per test.

Parametrize ``settings_overrides`` (a fixture of tests/conftest.py) to change a setting for
one test, e.g. ``@pytest.mark.parametrize("settings_overrides", [{"health_timeout": 3.0}])``.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import create_service


@pytest.fixture
def service(admin: TestClient) -> str:
    """A service ``probe`` owned by team ``web``."""
    create_service(admin, "probe")
    return "probe"
