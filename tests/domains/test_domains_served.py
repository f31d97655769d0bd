"""Custom domains as the users of a deployed app meet them: the app answers at its domain
over HTTPS (the certificate presented by SNI), plain HTTP redirects there, a domain issued
by the certificate loop is served once issued, a failed issuance is a status on the domain
while every route keeps serving, and a deleted service's domains are gone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import create_service, deploy, probe_app, slug_of, through_router
from tests.support.certs import CaIssuer, CertificateAuthority, https_get

from podium.config import Settings
from podium.core import Podium
from podium.tls import IssuanceFailed, IssuedCertificate

DOMAINS = "/api/v1/services/probe/environments/production/domains"


@pytest.fixture
def deployed(admin: TestClient, tmp_path: Path) -> str:
    """Service ``probe`` live in production, answering with marker ``live``."""
    create_service(admin, "probe")
    rollout = deploy(admin, "probe", "production", slug_of(probe_app(tmp_path / "app", marker="live")))
    assert rollout.release["status"] == "live"
    return "probe"


def marker(body: bytes) -> str:
    return str(json.loads(body)["marker"])


def test_an_uploaded_certificate_is_served_by_sni_and_plain_http_redirects(
    deployed: str, admin: TestClient, ca: CertificateAuthority, settings: Settings
) -> None:
    for name in ("shop.example.test", "www.shop.example.test"):
        pair = ca.leaf(name)
        added = admin.post(DOMAINS, json={"name": name, "certificate": pair.chain.decode(), "key": pair.key.decode()})
        assert added.status_code == 201, added.text

    for name in ("shop.example.test", "www.shop.example.test"):
        answer = https_get(settings.router_tls_port, name, ca.context())
        assert (answer.status, marker(answer.body), answer.peer_names) == (200, "live", [name])

    redirect = through_router(settings.router_port, "shop.example.test", "/health?x=1")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == f"https://shop.example.test:{settings.router_tls_port}/health?x=1"
    assert through_router(settings.router_port, "probe.production.localhost").json()["marker"] == "live"

    admin.delete(f"{DOMAINS}/shop.example.test").raise_for_status()
    assert through_router(settings.router_port, "shop.example.test").status_code == 404
    assert marker(https_get(settings.router_tls_port, "www.shop.example.test", ca.context()).body) == "live"


def test_a_domain_pending_its_certificate_is_served_on_plain_http(
    deployed: str, admin: TestClient, core: Podium, settings: Settings
) -> None:
    admin.post(DOMAINS, json={"name": "shop.example.test"}).raise_for_status()
    assert through_router(settings.router_port, "shop.example.test").json()["marker"] == "live"

    assert core.certificates.run_round() == []  # no issuer: the domain says why it stays pending
    [domain] = admin.get(DOMAINS).json()
    assert domain["tls"] == "pending"
    assert "automatic certificates are off" in domain["error"]


def test_the_loop_issues_a_pending_domains_certificate_and_the_router_serves_it(
    deployed: str, admin: TestClient, core: Podium, ca: CertificateAuthority, settings: Settings
) -> None:
    admin.post(DOMAINS, json={"name": "shop.example.test"}).raise_for_status()
    issuer = CaIssuer(ca)
    core.certificates.issuer = issuer
    [done] = core.certificates.run_round()
    assert done.startswith("shop.example.test: issued")
    assert issuer.asked == [["shop.example.test"]]

    [domain] = admin.get(DOMAINS).json()
    assert (domain["tls"], domain["error"]) == ("issued", "")
    assert domain["expires_at"] is not None
    assert marker(https_get(settings.router_tls_port, "shop.example.test", ca.context()).body) == "live"
    assert through_router(settings.router_port, "shop.example.test").status_code == 301
    assert core.certificates.run_round() == []  # far from its expiry: nothing to renew


class Refusing:
    """An issuer whose every order fails the way an ACME server says it failed."""

    def issue(self, names: list[str]) -> IssuedCertificate:
        raise IssuanceFailed(f"the HTTP-01 challenge for {names[0]} failed:\nconnection refused")


def test_a_failed_issuance_is_a_status_on_the_domain_tried_again_later_and_nothing_stops_serving(
    deployed: str, admin: TestClient, core: Podium, ca: CertificateAuthority, settings: Settings
) -> None:
    pair = ca.leaf("www.example.test")
    admin.post(DOMAINS, json={"name": "www.example.test", "certificate": pair.chain.decode(),
                              "key": pair.key.decode()}).raise_for_status()
    admin.post(DOMAINS, json={"name": "shop.example.test"}).raise_for_status()
    core.certificates.issuer = Refusing()
    [done] = core.certificates.run_round()
    assert done.startswith("shop.example.test: failed")

    shop = {d["name"]: d for d in admin.get(DOMAINS).json()}["shop.example.test"]
    assert shop["tls"] == "failed"
    assert shop["error"] == "the HTTP-01 challenge for shop.example.test failed: connection refused"
    assert shop["next_attempt_at"] is not None
    assert core.certificates.run_round() == []  # not before its backoff has passed

    assert through_router(settings.router_port, "shop.example.test").json()["marker"] == "live"
    assert marker(https_get(settings.router_tls_port, "www.example.test", ca.context()).body) == "live"
    assert through_router(settings.router_port, "probe.production.localhost").json()["marker"] == "live"


def test_a_deleted_services_domains_and_certificates_are_gone_and_its_names_free(
    deployed: str, admin: TestClient, ca: CertificateAuthority, settings: Settings
) -> None:
    pair = ca.leaf("shop.example.test")
    admin.post(DOMAINS, json={"name": "shop.example.test", "certificate": pair.chain.decode(),
                              "key": pair.key.decode()}).raise_for_status()
    assert marker(https_get(settings.router_tls_port, "shop.example.test", ca.context()).body) == "live"

    assert admin.delete("/api/v1/services/probe").status_code == 204
    assert through_router(settings.router_port, "probe.production.localhost").status_code == 404
    assert through_router(settings.router_port, "shop.example.test").status_code == 404
    with pytest.raises(ConnectionRefusedError):  # no domain has a certificate any more
        https_get(settings.router_tls_port, "shop.example.test", ca.context())
    assert not (settings.data_dir / "tls" / "certs" / "shop.example.test").exists()

    create_service(admin, "other")
    reused = admin.post("/api/v1/services/other/environments/staging/domains", json={"name": "shop.example.test"})
    assert reused.status_code == 201, reused.text


@pytest.fixture
def restarted(core: Podium, settings: Settings) -> Iterator[Any]:
    """``restarted()``: the core closed and a new one started on the same data dir."""
    made: list[Podium] = []

    def restart() -> Podium:
        core.close()
        again = Podium(settings)
        again.start()
        made.append(again)
        return again

    yield restart
    for podium in made:
        podium.close()


def test_the_state_of_a_certificate_survives_a_restart(
    deployed: str, admin: TestClient, core: Podium, ca: CertificateAuthority, restarted: Any
) -> None:
    admin.post(DOMAINS, json={"name": "shop.example.test"}).raise_for_status()
    core.certificates.issuer = Refusing()
    core.certificates.run_round()
    again: Podium = restarted()
    again.certificates.issuer = CaIssuer(ca)
    assert again.certificates.run_round() == []  # the backoff of the failure is in the store
    [domain] = again.domains.list_domains("probe", "production")
    assert (domain.tls, domain.next_attempt_at is not None) == ("failed", True)


def test_a_certificate_near_its_expiry_is_renewed_and_a_failed_renewal_keeps_the_old_one_served(
    deployed: str, admin: TestClient, core: Podium, ca: CertificateAuthority, settings: Settings
) -> None:
    admin.post(DOMAINS, json={"name": "shop.example.test"}).raise_for_status()
    short = CaIssuer(ca, days=10)  # within the 30 days before expiry in which a certificate is renewed
    core.certificates.issuer = short
    core.certificates.run_round()
    [first] = admin.get(DOMAINS).json()
    [renewed] = core.certificates.run_round()
    assert renewed.startswith("shop.example.test: issued")
    assert short.asked == [["shop.example.test"], ["shop.example.test"]]
    [second] = admin.get(DOMAINS).json()
    assert second["expires_at"] >= first["expires_at"]

    core.certificates.issuer = Refusing()
    [failed] = core.certificates.run_round()
    assert failed.startswith("shop.example.test: failed")
    [domain] = admin.get(DOMAINS).json()
    assert (domain["tls"], domain["expires_at"]) == ("issued", second["expires_at"])  # still valid: still served
    assert "HTTP-01 challenge" in domain["error"]
    assert marker(https_get(settings.router_tls_port, "shop.example.test", ca.context()).body) == "live"


class WrongName(CaIssuer):
    """An issuer that answers with a certificate for another name than asked."""

    def issue(self, names: list[str]) -> IssuedCertificate:
        return super().issue(["other.example.test"])


def test_an_issued_certificate_the_router_could_not_serve_is_a_failure_not_a_broken_site(
    deployed: str, admin: TestClient, core: Podium, ca: CertificateAuthority, settings: Settings
) -> None:
    admin.post(DOMAINS, json={"name": "shop.example.test"}).raise_for_status()
    core.certificates.issuer = WrongName(ca)
    core.certificates.run_round()
    [domain] = admin.get(DOMAINS).json()
    assert domain["tls"] == "failed"
    assert domain["error"] == (
        "the issued certificate cannot be served: the certificate is for other.example.test, not shop.example.test"
    )
    assert not (settings.data_dir / "tls" / "certs" / "shop.example.test").exists()
    assert through_router(settings.router_port, "shop.example.test").json()["marker"] == "live"
