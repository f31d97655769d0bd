"""Certificates for the TLS tests, made with ``cryptography``: a CA, leaves it signs, and an
HTTPS request to the router by SNI that checks the chain against that CA."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from podium.tls import IssuedCertificate


@dataclass(frozen=True)
class Pair:
    """A certificate (chain, PEM) and its key (PEM)."""

    chain: bytes
    key: bytes

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
        cert.write_bytes(self.chain)
        key.write_bytes(self.key)
        return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CertificateAuthority:
    """A certificate authority of its own, trusted only by the tests' clients."""

    def __init__(self, name: str = "Podium Test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def leaf(self, *names: str, days: float = 90, starts: float = -1) -> Pair:
        """A certificate for ``names`` valid from ``starts`` days from now for ``days`` days."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=starts)).not_valid_after(now + timedelta(days=starts + days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def context(self) -> ssl.SSLContext:
        """A client context that trusts this CA only and checks hostnames."""
        context = ssl.create_default_context(cadata=self.pem.decode())
        return context


@dataclass(frozen=True)
class HttpsAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    peer_names: list[str]  # the DNS names of the certificate the router presented


def https_get(
    port: int, name: str, context: ssl.SSLContext, path: str = "/", address: str = "127.0.0.1"
) -> HttpsAnswer:
    """GET ``https://name:port/path`` from the router at ``address``, asking for ``name`` by SNI;
    ``ssl.SSLCertVerificationError`` when the certificate does not chain to the context's CA
    or is not for ``name``."""
    with (
        socket.create_connection((address, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        peer = tls.getpeercert() or {}
        request = f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
        tls.sendall(request.encode())
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    names = [value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS"]
    return HttpsAnswer(int(lines[0].split()[1]), headers, body, names)


class CaIssuer:
    """A ``CertificateIssuer`` that signs with a test's own certificate authority: what an
    ACME server gives, without the challenge (the pebble tests have that)."""

    def __init__(self, ca: CertificateAuthority, days: float = 90) -> None:
        self.ca, self.days = ca, days
        self.asked: list[list[str]] = []

    def issue(self, names: list[str]) -> IssuedCertificate:
        self.asked.append(list(names))
        pair = self.ca.leaf(*names, days=self.days)
        not_after = x509.load_pem_x509_certificate(pair.chain).not_valid_after_utc
        return IssuedCertificate(pair.chain, pair.key, not_after)
