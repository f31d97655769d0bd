"""The status page: every service environment, its state, open incidents and 30-day availability."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from tests.metrics.support import Seed
from tests.web.test_availability import add_check

from podium.catalog.models import Service
from podium.core import Podium
from podium.store.db import utcnow


def row(html: str, service: str, env: str) -> str:
    return html.split(f'<tr data-service="{service}" data-environment="{env}">', 1)[1].split("</tr>", 1)[0]


def state(html: str, service: str, env: str) -> str:
    match = re.search(r'data-testid="health-state">(\w+)</span>', row(html, service, env))
    assert match is not None
    return match.group(1)


@pytest.fixture
def board(catalog: None, core: Podium, admin: TestClient, team_client: Callable[[str], TestClient]) -> int:
    """cart down in production (an open incident), up in staging; ledger in maintenance; the open incident's id."""
    seed = Seed(core, admin, team_client)
    now = utcnow()
    with core.store.session() as session:  # the services have existed long before the 30 days shown
        session.execute(update(Service).values(created_at=now - timedelta(days=400)))
    seed.incident("cart", now - timedelta(days=2), now - timedelta(days=2) + timedelta(hours=2))
    seed.incident("cart", now - timedelta(days=40), now - timedelta(days=40) + timedelta(hours=5))  # too old
    seed.incident("cart", now - timedelta(hours=3), now - timedelta(hours=2), env="staging")
    open_one = seed.incident("cart", now - timedelta(hours=1), summary="checkout fails")
    add_check(core, "cart", "production", "down")
    add_check(core, "cart", "production", "up", name="api")
    add_check(core, "cart", "staging", "up")
    add_check(core, "ledger", "production", "down")
    seed.maintenance("ledger", now - timedelta(minutes=5), now + timedelta(hours=1))
    add_check(core, "search-api", "production", "unknown")
    return open_one


def test_every_service_environment_with_its_state(signed_in: TestClient, board: int) -> None:
    html = signed_in.get("/status").text
    rows = re.findall(r'<tr data-service="([\w-]+)" data-environment="(\w+)">', html)
    assert rows == [(service, env) for service in ("cart", "ledger", "search-api") for env in ("staging", "production")]
    assert state(html, "cart", "production") == "down", "one check down is enough"
    assert state(html, "cart", "staging") == "up"
    assert state(html, "ledger", "production") == "maintenance", "a window on outranks a check down"
    assert state(html, "ledger", "staging") == "maintenance", "a window with no environment covers both"
    assert state(html, "search-api", "production") == "unknown", "checks that have not agreed yet"
    assert state(html, "search-api", "staging") == "unknown", "no checks at all"

    summary = html.split('data-testid="status-summary"', 1)[1].split("</ul>", 1)[0]
    counts = dict(re.findall(r'<span class="badge (\w+)">\w+</span> (\d+)', summary))
    assert counts == {"down": "1", "maintenance": "2", "unknown": "2", "up": "1"}


def test_open_incidents_and_availability_over_30_days(signed_in: TestClient, board: int) -> None:
    html = signed_in.get("/status").text
    production = row(html, "cart", "production")
    assert f'<a href="/incidents/{board}">#{board} checkout fails</a>' in production
    assert ">triggered</span>" in production
    # Two hours resolved and one open over 30 days; the incident 40 days ago is outside.
    availability = re.search(r'data-testid="availability">([^<]+)<', production)
    assert availability is not None
    assert availability.group(1) == "99.583%"
    staging = row(html, "cart", "staging")
    assert "none" in staging, "the staging incident is resolved"
    assert 'data-testid="availability">99.861%<' in staging  # one hour in 30 days
    assert 'data-testid="availability">100%<' in row(html, "ledger", "production")


def test_the_status_page_is_in_the_navigation(signed_in: TestClient, board: int) -> None:
    html = signed_in.get("/status").text
    assert '<a href="/status" aria-current="page">Status</a>' in html
    assert '<a href="/status" >Status</a>' in signed_in.get("/").text


@pytest.mark.usefixtures("catalog")
def test_a_service_with_nothing_yet(signed_in: TestClient) -> None:
    html = signed_in.get("/status").text
    assert state(html, "cart", "production") == "unknown"
    assert 'data-testid="availability">100%<' in row(html, "cart", "production")
