"""A custom domain whose certificate the certificate loop has a real ACME server (pebble)
issue: the app answers at ``https://<domain>:<TLS port>/`` with a chain to pebble's root,
presented by SNI, and plain HTTP redirects there; a domain whose challenge cannot succeed
ends ``failed`` with the ACME server's reason while every route keeps serving."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import create_service, deploy, poll, probe_app, slug_of, through_router
from tests.support.certs import https_get
from tests.support.pebble import Pebble

from podium.config import Settings
from podium.core import Podium
from podium.runtime.ports import free_port

DOMAINS = "/api/v1/services/probe/environments/production/domains"
ISSUANCE_WAIT = 60.0  # the loop is woken by the add; pebble validates within seconds


@pytest.fixture
def settings_overrides(pebble: Pebble) -> dict[str, Any]:
    """The router on pebble's validation port, the issuer trusting pebble's API."""
    return {
        "router_port": pebble.http_port, "router_tls_port": free_port(),
        "acme_directory_url": pebble.directory_url, "acme_ca_bundle": pebble.ca_bundle, "acme_timeout": 20.0,
    }


@pytest.fixture
def certificate_loop(core: Podium) -> Iterator[None]:
    """The leader's certificate loop, running as it does on the leader."""
    core.certificates.start()
    yield
    core.certificates.close()


@pytest.fixture
def deployed(admin: TestClient, tmp_path: Path) -> None:
    create_service(admin, "probe")
    rollout = deploy(admin, "probe", "production", slug_of(probe_app(tmp_path / "app", marker="live")))
    assert rollout.release["status"] == "live"


def settled(admin: TestClient, name: str) -> dict[str, Any] | None:
    """The domain once its issuance has ended (issued or failed); None while it is pending."""
    found = {d["name"]: d for d in admin.get(DOMAINS).json()}[name]
    return found if found["tls"] != "pending" else None


def test_the_loop_has_pebble_issue_a_domains_certificate_and_the_router_serves_it_by_sni(
    deployed: None, certificate_loop: None, admin: TestClient, pebble: Pebble, settings: Settings
) -> None:
    assert admin.post(DOMAINS, json={"name": "shop.example.test"}).status_code == 201
    domain = poll(lambda: settled(admin, "shop.example.test"), ISSUANCE_WAIT, "shop.example.test's certificate")
    assert (domain["tls"], domain["error"]) == ("issued", "")

    trusting_pebble = ssl.create_default_context(cadata=pebble.root_pem().decode())
    answer = https_get(settings.router_tls_port, "shop.example.test", trusting_pebble)
    assert answer.status == 200
    assert json.loads(answer.body)["marker"] == "live"
    assert answer.peer_names == ["shop.example.test"]

    redirect = through_router(settings.router_port, "shop.example.test", "/cart")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"https://shop.example.test:{settings.router_tls_port}/cart"


def test_a_domain_whose_challenge_cannot_succeed_ends_failed_and_every_route_keeps_serving(
    deployed: None, certificate_loop: None, admin: TestClient, pebble: Pebble, settings: Settings
) -> None:
    pebble.resolve("down.example.test", "127.0.0.2")  # nothing listens there: the token cannot be fetched
    try:
        assert admin.post(DOMAINS, json={"name": "down.example.test"}).status_code == 201
        domain = poll(lambda: settled(admin, "down.example.test"), ISSUANCE_WAIT, "down.example.test's issuance")
    finally:
        pebble.forget("down.example.test")
    assert domain["tls"] == "failed"
    assert "down.example.test" in domain["error"]
    assert "\n" not in domain["error"]
    assert domain["next_attempt_at"] is not None

    assert through_router(settings.router_port, "probe.production.localhost").json()["marker"] == "live"
    assert through_router(settings.router_port, "down.example.test").json()["marker"] == "live"  # plain HTTP
