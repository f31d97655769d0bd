"""A router on pebble's validation port serving the challenge dir, and an issuer built from settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.pebble import Pebble

from podium.config import Settings
from podium.runtime.router import Router
from podium.tls.acme import AcmeIssuer


@pytest.fixture
def acme_settings(pebble: Pebble, data_dir: Path) -> Settings:
    """Settings of a node whose router listens where pebble validates, trusting pebble."""
    return Settings(
        data_dir=data_dir, router_port=pebble.http_port, acme_directory_url=pebble.directory_url,
        acme_ca_bundle=pebble.ca_bundle, acme_timeout=20.0,
    )


@pytest.fixture
def challenge_router(acme_settings: Settings) -> Iterator[Router]:
    """The node's router (nginx) on pebble's HTTP-01 port, serving the challenge dir."""
    router = Router(
        acme_settings.data_dir / "node" / "router", acme_settings.router_port,
        challenge_dir=acme_settings.acme_challenge_dir,
    )
    router.ensure_running()
    yield router
    router.stop()


@pytest.fixture
def issuer(acme_settings: Settings, challenge_router: Router) -> AcmeIssuer:
    made = AcmeIssuer.from_settings(acme_settings)
    assert made is not None
    return made
