"""Billing fixtures: a core with a price sheet of round numbers, and Chromium for the page test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.billing.support import FLAT, make_service, sheet
from tests.web.conftest import browser, page

__all__ = ["browser", "page"]  # Chromium fixtures of the web tests, for the billing page's browser test


@pytest.fixture
def sheet_file(tmp_path: Path) -> Path:
    """A price sheet of round numbers, in force since 2020."""
    path = tmp_path / "prices.toml"
    path.write_text(sheet(FLAT))
    return path


@pytest.fixture
def settings_overrides(sheet_file: Path) -> dict[str, Any]:
    """The round price sheet, and invoices frozen as soon as their month is over."""
    return {"billing_price_sheet": sheet_file, "billing_close_after": 0.0}


@pytest.fixture
def teams(admin: TestClient, team_client: Callable[[str], TestClient]) -> dict[str, TestClient]:
    """Teams checkout (service cart) and search (service search-api), each with a client of its own."""
    clients = {"checkout": team_client("checkout"), "search": team_client("search")}
    make_service(admin, "cart", "checkout")
    make_service(admin, "search-api", "search")
    return clients
