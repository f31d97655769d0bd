"""A domain's certificate files: checking an uploaded pair, and where the router reads them.

Each domain's files are ``<data dir>/tls/certs/<name>/chain.pem`` (the leaf first, then the
intermediates; 0644) and ``key.pem`` (0600), each replaced atomically. An uploaded pair is
checked before anything is written: both parse, the key is the certificate's, the
certificate names the domain, and it is valid now.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from podium.errors import Invalid
from podium.osutil import atomic_write, write_private

CHAIN_FILE = "chain.pem"
KEY_FILE = "key.pem"


@dataclass(frozen=True)
class CertificatePaths:
    """Where one domain's certificate lives."""

    folder: Path

    @property
    def chain(self) -> Path:
        return self.folder / CHAIN_FILE

    @property
    def key(self) -> Path:
        return self.folder / KEY_FILE

    def write(self, chain_pem: bytes, key_pem: bytes) -> None:
        """Replace the pair: the key first, so a chain on disk never lacks its key for long."""
        self.folder.mkdir(parents=True, exist_ok=True)
        write_private(self.key, key_pem.decode())
        atomic_write(self.chain, chain_pem.decode(), mode=0o644)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def paths_of(tls_dir: Path, name: str) -> CertificatePaths:
    return CertificatePaths(tls_dir / name)


def check_pair(name: str, chain_pem: bytes, key_pem: bytes, now: datetime) -> datetime:
    """The certificate's expiry when ``chain_pem`` and ``key_pem`` can serve ``name`` now;
    ``Invalid`` saying what is wrong otherwise."""
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise Invalid("the certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise Invalid("the key is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)") from None
    leaf = chain[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != leaf.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise Invalid("the key does not belong to the certificate (the first one of the file)")
    names = names_of(leaf)
    if not any(covers(pattern, name) for pattern in names):
        listed = ", ".join(names) or "no DNS name"
        raise Invalid(f"the certificate is for {listed}, not {name}")
    if leaf.not_valid_after_utc <= now:
        raise Invalid(f"the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if leaf.not_valid_before_utc > now:
        raise Invalid(f"the certificate is valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    return leaf.not_valid_after_utc


def names_of(certificate: x509.Certificate) -> list[str]:
    """The DNS names a certificate is for (its subject alternative names)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in extension.value.get_values_for_type(x509.DNSName)]


def covers(pattern: str, name: str) -> bool:
    """Whether a certificate name (``shop.example.com``, ``*.example.com``) matches ``name``;
    a wildcard stands for exactly one label."""
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name
