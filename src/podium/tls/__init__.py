"""TLS certificates for the router: what a certificate issuer gives and how it fails.

A custom domain's certificate is either uploaded by its team or issued over ACME (HTTP-01)
by an ``CertificateIssuer``; ``acme.AcmeIssuer`` is the one that talks to an ACME server
(Let's Encrypt, or pebble in the tests). The domains code stores what an issuer returns
and the router serves it by SNI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from podium.errors import PodiumError


class IssuanceFailed(PodiumError):
    """The ACME server did not issue the certificate; ``detail`` says why, in one line
    (the challenge that failed, the server's problem document) (HTTP 502)."""

    status_code = 502


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate with its chain and private key, PEM-encoded, and when it expires."""

    chain_pem: bytes  # the leaf first, then the intermediates
    key_pem: bytes
    not_after: datetime  # timezone-aware (UTC)


class CertificateIssuer(Protocol):
    """Obtains a certificate for hostnames whose HTTP requests reach this node's router."""

    def issue(self, names: list[str]) -> IssuedCertificate:
        """A certificate valid for every name in ``names``; raises ``IssuanceFailed``."""
        ...
