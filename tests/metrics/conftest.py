"""Metrics fixtures: a ``seed`` that writes the rows the metrics read."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from tests.metrics.support import Seed

from podium.core import Podium


@pytest.fixture
def seed(core: Podium, admin: TestClient, team_client: Callable[[str], TestClient]) -> Seed:
    return Seed(core, admin, team_client)
