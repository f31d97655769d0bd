"""Let's Encrypt's test ACME server, pebble (Debian's package), with its mock DNS server.

``pebble-challtestsrv`` answers every A query with 127.0.0.1 (and no AAAA), so pebble's
validation of ``http://<name>/.well-known/acme-challenge/<token>`` lands on this machine, on
the ONE port pebble's config names (``httpPort``): the router under test must listen there.
A test therefore takes ``Pebble.http_port`` first and builds its router on it. pebble's own
HTTPS API runs with a self-signed certificate made here: ``ca_bundle`` is its PEM file.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from podium.runtime.ports import free_port, wait_for_port

START_TIMEOUT = 15.0
# Deterministic tests: no random sleeps before validation, no nonce rejected on purpose, and
# every order validated afresh (pebble reuses a valid authorization half the time by default).
PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


@dataclass(frozen=True)
class Pebble:
    """A running pebble: where to reach it, what to trust, and which port it validates on."""

    directory_url: str  # https://127.0.0.1:<port>/dir
    ca_bundle: Path  # PEM of the certificate pebble's HTTPS API (and its management API) presents
    http_port: int  # the port of every name pebble fetches HTTP-01 tokens from: run the router here
    management_url: str  # pebble's management API (issuing roots)
    dns_management_url: str  # challtestsrv's management API (mock DNS answers)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting pebble's HTTPS API."""
        return ssl.create_default_context(cafile=self.ca_bundle)

    def root_pem(self) -> bytes:
        """The root pebble issues under (made anew at each start of pebble)."""
        return self._management_get("/roots/0")

    def intermediate_pem(self) -> bytes:
        return self._management_get("/intermediates/0")

    def resolve(self, name: str, address: str) -> None:
        """Make the mock DNS answer ``address`` for ``name`` (instead of 127.0.0.1)."""
        self._dns_post("/add-a", {"host": name, "addresses": [address]})

    def forget(self, name: str) -> None:
        """Undo ``resolve``: ``name`` resolves to 127.0.0.1 again."""
        self._dns_post("/clear-a", {"host": name})

    def _management_get(self, path: str) -> bytes:
        response = httpx.get(self.management_url + path, verify=self.ssl_context(), timeout=10)
        response.raise_for_status()
        return response.content

    def _dns_post(self, path: str, body: dict[str, object]) -> None:
        httpx.post(self.dns_management_url + path, json=body, timeout=10).raise_for_status()


@contextmanager
def pebble_server(base: Path, http_port: int | None = None) -> Iterator[Pebble]:
    """Start challtestsrv and pebble on free loopback ports, files under ``base``; pebble
    validates HTTP-01 on ``http_port`` (default: a free port). Both stop afterwards."""
    for binary in ("pebble", "pebble-challtestsrv"):
        assert shutil.which(binary), f"{binary} is missing: `make system-deps` installs Debian's pebble"
    base.mkdir(parents=True, exist_ok=True)
    http_port = http_port or free_port()
    api_port, management_port, tls_port = free_port(), free_port(), free_port()
    dns_port, dns_management_port = free_port(), free_port()
    cert, key = _self_signed(base)
    config = base / "pebble-config.json"
    config.write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{api_port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(cert), "privateKey": str(key),
        "httpPort": http_port, "tlsPort": tls_port,
        "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }}))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(_spawn([
            "pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
            "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
            "-management", f"127.0.0.1:{dns_management_port}",
        ], base / "challtestsrv.log"))
        _wait_listening(processes[-1], dns_management_port, base / "challtestsrv.log")
        processes.append(_spawn(
            ["pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{dns_port}"], base / "pebble.log",
        ))
        _wait_listening(processes[-1], api_port, base / "pebble.log")
        pebble = Pebble(
            directory_url=f"https://127.0.0.1:{api_port}/dir", ca_bundle=cert, http_port=http_port,
            management_url=f"https://127.0.0.1:{management_port}",
            dns_management_url=f"http://127.0.0.1:{dns_management_port}",
        )
        httpx.get(pebble.directory_url, verify=pebble.ssl_context(), timeout=10).raise_for_status()
        yield pebble
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def pebble_in_tmp() -> Iterator[Pebble]:
    """``pebble_server`` in a temporary directory of its own, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="podium-pebble-"))
    try:
        with pebble_server(base) as pebble:
            yield pebble
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, **PEBBLE_ENV}, start_new_session=True,
        )


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not wait_for_port(port, 0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{process.args[0]} did not start: {log.read_text(errors='replace')[-2000:]}")  # type: ignore[index]


def _self_signed(base: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, for pebble's HTTPS API; also its own CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble test API")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = base / "api-cert.pem", base / "api-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ))
    key_path.chmod(0o600)
    return cert_path, key_path
