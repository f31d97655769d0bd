"""Domain tests run the real store and, where a request goes through it, the real nginx.

The router's TLS port is a free port of each test; ``ca`` is a certificate authority of
the test's own, which its clients trust."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.certs import CertificateAuthority

from podium.runtime.ports import free_port


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"router_tls_port": free_port(), "acme_directory_url": ""}  # the pebble tests set their own


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority()
