"""Podium's own node serves the challenges its issuer writes: the wiring of the core."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from tests.support.pebble import Pebble

from podium.core import Podium
from podium.tls.acme import AcmeIssuer


@pytest.fixture
def settings_overrides(pebble: Pebble) -> dict[str, Any]:
    return {
        "router_port": pebble.http_port, "acme_directory_url": pebble.directory_url,
        "acme_ca_bundle": pebble.ca_bundle, "acme_timeout": 20.0,
    }


def test_the_nodes_router_serves_the_tokens_of_the_issuer_built_from_the_same_settings(core: Podium) -> None:
    core.deploys.ensure_runtime()  # supervisord and the router, as a first deploy starts them
    issuer = AcmeIssuer.from_settings(core.settings)
    assert issuer is not None

    issued = issuer.issue(["node.example.test"])

    leaf = x509.load_pem_x509_certificates(issued.chain_pem)[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["node.example.test"]
    assert core.settings.data_dir.stat().st_mode & 0o006 == 0, "the data dir stays closed to others"
