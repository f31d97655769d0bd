"""Certificates issued over ACME HTTP-01 by a real ACME server (pebble) through the router."""

from __future__ import annotations

import datetime
import socket
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store
from tests.support.pebble import Pebble

from podium.config import Settings
from podium.runtime.router import Router
from podium.tls import IssuanceFailed, IssuedCertificate
from podium.tls.acme import AcmeIssuer


def verified_names(issued: IssuedCertificate, pebble: Pebble, names: list[str]) -> list[str]:
    """Verify the chain against pebble's root for each name; return the leaf's DNS names."""
    leaf, *intermediates = x509.load_pem_x509_certificates(issued.chain_pem)
    assert intermediates, "the chain carries the intermediate after the leaf"
    store = Store(x509.load_pem_x509_certificates(pebble.root_pem()))
    for name in names:
        verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
        verifier.verify(leaf, intermediates)  # raises VerificationError when it does not chain
    key = serialization.load_pem_private_key(issued.key_pem, password=None)
    assert key.public_key() == leaf.public_key(), "the key is the leaf's"
    assert issued.not_after == leaf.not_valid_after_utc
    return leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )


def test_a_certificate_is_issued_through_the_router_and_chains_to_the_ca(
    issuer: AcmeIssuer, pebble: Pebble, acme_settings: Settings
) -> None:
    issued = issuer.issue(["shop.example.test"])

    assert verified_names(issued, pebble, ["shop.example.test"]) == ["shop.example.test"]
    assert issued.not_after > datetime.datetime.now(datetime.UTC)
    assert list(acme_settings.acme_challenge_dir.iterdir()) == [], "token files are removed"


def test_one_certificate_covers_two_names(issuer: AcmeIssuer, pebble: Pebble) -> None:
    issued = issuer.issue(["shop.example.test", "www.shop.example.test"])

    names = verified_names(issued, pebble, ["shop.example.test", "www.shop.example.test"])
    assert sorted(names) == ["shop.example.test", "www.shop.example.test"]


def test_the_account_key_is_made_once_and_the_account_reused(
    issuer: AcmeIssuer, acme_settings: Settings, pebble: Pebble
) -> None:
    issuer.issue(["one.example.test"])
    key_path = acme_settings.tls_dir / "account.key"
    assert key_path.stat().st_mode & 0o777 == 0o600
    key, account = key_path.read_bytes(), issuer.account_url
    assert account is not None

    restarted = AcmeIssuer.from_settings(acme_settings)  # as after a restart of Podium
    assert restarted is not None
    issued = restarted.issue(["two.example.test"])

    assert restarted.account_url == account, "the account is looked up by its key, not registered again"
    assert key_path.read_bytes() == key
    verified_names(issued, pebble, ["two.example.test"])


def test_a_failed_challenge_is_a_readable_failure_and_the_router_keeps_serving(
    issuer: AcmeIssuer, pebble: Pebble, challenge_router: Router, acme_settings: Settings
) -> None:
    # The name resolves to an address where nothing listens: pebble cannot fetch the token.
    pebble.resolve("down.example.test", "127.0.0.2")
    try:
        started = time.monotonic()
        with pytest.raises(IssuanceFailed) as failure:
            issuer.issue(["down.example.test"])
        assert time.monotonic() - started < acme_settings.acme_timeout
    finally:
        pebble.forget("down.example.test")

    detail = failure.value.detail
    assert "\n" not in detail
    assert detail.startswith("validation failed: down.example.test: ")
    assert "127.0.0.2" in detail
    assert "connection refused" in detail
    assert list(acme_settings.acme_challenge_dir.iterdir()) == []
    answer = httpx.get(f"http://127.0.0.1:{challenge_router.port}/", headers={"Host": "down.example.test"})
    assert answer.status_code == 404
    assert answer.text == "no app is routed at this host\n"
    verified_names(issuer.issue(["up.example.test"]), pebble, ["up.example.test"])


def test_a_validation_that_hangs_fails_at_the_timeout(
    acme_settings: Settings, challenge_router: Router, pebble: Pebble
) -> None:
    # The name resolves to a listener that accepts connections and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.3", pebble.http_port))
        silent.listen(8)
        pebble.resolve("slow.example.test", "127.0.0.3")
        try:
            issuer = AcmeIssuer(
                pebble.directory_url, acme_settings.tls_dir, acme_settings.acme_challenge_dir,
                ca_bundle=pebble.ca_bundle, timeout=2,
            )
            started = time.monotonic()
            with pytest.raises(IssuanceFailed, match=r"^not issued within 2s"):
                issuer.issue(["slow.example.test"])
            assert time.monotonic() - started < 2 + 2, "bounded by the timeout (and one poll interval)"
        finally:
            pebble.forget("slow.example.test")
    assert list(acme_settings.acme_challenge_dir.iterdir()) == []


def test_a_token_the_router_does_not_serve_fails_validation(
    acme_settings: Settings, challenge_router: Router, pebble: Pebble, tmp_path: Path
) -> None:
    elsewhere = AcmeIssuer(
        pebble.directory_url, acme_settings.tls_dir, tmp_path / "not-served",
        ca_bundle=pebble.ca_bundle, timeout=20,
    )
    with pytest.raises(IssuanceFailed) as failure:
        elsewhere.issue(["lost.example.test"])

    assert failure.value.detail.startswith("validation failed: lost.example.test: ")
    assert "404" in failure.value.detail
    assert list((tmp_path / "not-served").iterdir()) == []


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("closed port", "cannot connect to the ACME server 127.0.0.1:1: Connection refused"),
        ("not ACME", "does not answer as an ACME directory"),
        ("untrusted", "cannot be verified (PODIUM_ACME_CA_BUNDLE names the CA of a private one)"),
    ],
)
def test_a_bad_directory_is_a_readable_failure(
    where: str, reason: str, pebble: Pebble, data_dir: Path
) -> None:
    url, ca_bundle = {
        "closed port": ("https://127.0.0.1:1/dir", pebble.ca_bundle),
        "not ACME": (f"{pebble.management_url}/roots/0", pebble.ca_bundle),
        "untrusted": (pebble.directory_url, None),
    }[where]
    issuer = AcmeIssuer(url, data_dir / "tls", data_dir / "tls" / "challenges", ca_bundle=ca_bundle, timeout=10)

    with pytest.raises(IssuanceFailed) as failure:
        issuer.issue(["shop.example.test"])

    assert reason in failure.value.detail
    assert "\n" not in failure.value.detail
    assert "Traceback" not in failure.value.detail


def test_a_name_the_server_refuses_is_a_readable_failure(issuer: AcmeIssuer) -> None:
    with pytest.raises(IssuanceFailed, match=r"^the ACME server refused: .*illegal character"):
        issuer.issue(["under_score.example.test"])


def test_an_empty_directory_url_turns_issuance_off(data_dir: Path) -> None:
    assert AcmeIssuer.from_settings(Settings(data_dir=data_dir, acme_directory_url="")) is None
    default = AcmeIssuer.from_settings(Settings(data_dir=data_dir))
    assert default is not None
    assert default.directory_url == "https://acme-v02.api.letsencrypt.org/directory"
    assert default.challenge_dir == data_dir / "tls" / "challenges"
