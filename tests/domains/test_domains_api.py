"""Custom domains over the API, as a team meets them: added, listed and removed by the
service's owner, refused to others, audited, and an uploaded certificate checked first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from tests.deploy.support import create_service
from tests.support.certs import CertificateAuthority

from podium.config import Settings

DOMAINS = "/api/v1/services/shop/environments/production/domains"


@pytest.fixture
def owner(admin: TestClient, team_client: Callable[[str], TestClient]) -> TestClient:
    """Team ``web``, owner of service ``shop``."""
    client = team_client("web")
    create_service(admin, "shop", owner="web")
    return client


def test_the_owner_adds_lists_and_removes_a_domain_and_each_change_is_audited(
    owner: TestClient, admin: TestClient
) -> None:
    added = owner.post(DOMAINS, json={"name": "Shop.Example.TEST."})
    assert added.status_code == 201, added.text
    assert added.json()["name"] == "shop.example.test"
    assert (added.json()["tls"], added.json()["expires_at"]) == ("pending", None)

    [listed] = owner.get(DOMAINS).json()
    assert {k: listed[k] for k in ("name", "service", "env", "tls")} == {
        "name": "shop.example.test", "service": "shop", "env": "production", "tls": "pending",
    }
    assert owner.get("/api/v1/services/shop/environments/staging/domains").json() == []

    assert owner.delete(f"{DOMAINS}/shop.example.test").status_code == 204
    assert owner.get(DOMAINS).json() == []
    assert owner.delete(f"{DOMAINS}/shop.example.test").status_code == 404

    events = admin.get("/api/v1/audit", params={"service": "shop"}).json()
    actions = [(e["action"], e["team"], e["target"]) for e in events]
    assert ("domain.add", "web", "production") in actions
    assert ("domain.remove", "web", "production") in actions


def test_another_team_may_not_add_or_remove_the_services_domains(
    owner: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    owner.post(DOMAINS, json={"name": "shop.example.test"}).raise_for_status()
    intruder = team_client("ads")
    refused = intruder.post(DOMAINS, json={"name": "ads.example.test"})
    assert refused.status_code == 403
    assert "may not change service 'shop'" in refused.json()["detail"]
    assert intruder.delete(f"{DOMAINS}/shop.example.test").status_code == 403
    assert [d["name"] for d in owner.get(DOMAINS).json()] == ["shop.example.test"]


def test_a_domain_another_team_has_is_taken_and_its_service_not_named(
    owner: TestClient, admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    owner.post(DOMAINS, json={"name": "shop.example.test"}).raise_for_status()
    rival = team_client("ads")
    create_service(admin, "secret-project", owner="ads")
    taken = rival.post("/api/v1/services/secret-project/environments/production/domains",
                       json={"name": "shop.example.test"})
    assert taken.status_code == 409
    assert taken.json()["detail"] == "shop.example.test is taken: another team's service has it"

    # The owner's own other environment: told where the name is.
    again = owner.post("/api/v1/services/shop/environments/staging/domains", json={"name": "shop.example.test"})
    assert again.status_code == 409
    assert again.json()["detail"] == "shop.example.test is already a domain of shop/production"


@pytest.mark.parametrize(("name", "reason"), [
    ("shop.production.localhost", "under the base domain 'localhost'"),
    ("localhost", "under the base domain 'localhost'"),
    ("*.example.test", "wildcard domains are not served"),
    ("shop", "is not a domain name"),
    ("bad_name.example.test", "is not a domain name"),
    ("10.0.0.1", "is an IP address"),
])
def test_a_name_that_cannot_be_a_teams_domain_is_refused(owner: TestClient, name: str, reason: str) -> None:
    refused = owner.post(DOMAINS, json={"name": name})
    assert refused.status_code == 422
    assert reason in refused.json()["detail"]
    assert owner.get(DOMAINS).json() == []


def test_an_uploaded_certificate_makes_the_domain_uploaded_with_its_expiry_and_files(
    owner: TestClient, ca: CertificateAuthority, settings: Settings
) -> None:
    pair = ca.leaf("shop.example.test", days=30)
    added = owner.post(DOMAINS, json={"name": "shop.example.test", "certificate": pair.chain.decode(),
                                      "key": pair.key.decode()})
    assert added.status_code == 201, added.text
    assert added.json()["tls"] == "uploaded"
    not_after = x509.load_pem_x509_certificate(pair.chain).not_valid_after_utc
    assert datetime.fromisoformat(added.json()["expires_at"]) == not_after

    folder = settings.data_dir / "tls" / "certs" / "shop.example.test"
    assert (folder / "chain.pem").read_bytes() == pair.chain
    assert (folder / "chain.pem").stat().st_mode & 0o777 == 0o644
    assert (folder / "key.pem").stat().st_mode & 0o777 == 0o600

    owner.delete(f"{DOMAINS}/shop.example.test").raise_for_status()
    assert not folder.exists()


def test_a_wildcard_certificate_covers_one_label(owner: TestClient, ca: CertificateAuthority) -> None:
    pair = ca.leaf("*.example.test")
    body = {"certificate": pair.chain.decode(), "key": pair.key.decode()}
    assert owner.post(DOMAINS, json={"name": "shop.example.test", **body}).status_code == 201
    refused = owner.post(DOMAINS, json={"name": "a.shop.example.test", **body})
    assert refused.status_code == 422
    assert refused.json()["detail"] == "the certificate is for *.example.test, not a.shop.example.test"


def bad_pairs(ca: CertificateAuthority) -> dict[str, tuple[dict[str, str], str]]:
    """What a team may get wrong, each with the reason it is told."""
    good, other = ca.leaf("shop.example.test"), ca.leaf("shop.example.test")
    expired = ca.leaf("shop.example.test", days=10, starts=-20)
    return {
        "key of another certificate": (
            {"certificate": good.chain.decode(), "key": other.key.decode()},
            "the key does not belong to the certificate"),
        "expired": (
            {"certificate": expired.chain.decode(), "key": expired.key.decode()}, "the certificate expired on"),
        "not a certificate": ({"certificate": "hello", "key": good.key.decode()}, "is not a PEM certificate"),
        "not a key": ({"certificate": good.chain.decode(), "key": "hello"}, "is not an unencrypted PEM private key"),
        "certificate without key": ({"certificate": good.chain.decode()}, "needs its key"),
    }


def test_a_bad_certificate_or_key_is_refused_with_its_reason_and_nothing_is_written(
    owner: TestClient, ca: CertificateAuthority, settings: Settings
) -> None:
    for case, (body, reason) in bad_pairs(ca).items():
        refused = owner.post(DOMAINS, json={"name": "shop.example.test", **body})
        assert refused.status_code == 422, case
        assert reason in refused.json()["detail"], (case, refused.json())
    assert owner.get(DOMAINS).json() == []
    assert not (settings.data_dir / "tls" / "certs").exists()


def test_a_certificate_for_another_name_is_refused_naming_what_it_is_for(
    owner: TestClient, ca: CertificateAuthority
) -> None:
    pair = ca.leaf("blog.example.test", "www.blog.example.test")
    refused = owner.post(DOMAINS, json={"name": "shop.example.test", "certificate": pair.chain.decode(),
                                        "key": pair.key.decode()})
    assert refused.status_code == 422
    assert refused.json()["detail"] == "the certificate is for blog.example.test, www.blog.example.test, " \
                                       "not shop.example.test"


def test_a_team_with_a_config_grant_may_add_a_domain_and_one_with_a_deploy_grant_may_not(
    owner: TestClient, admin: TestClient, team_client: Callable[[str], TestClient]
) -> None:
    helper, deployer = team_client("helpers"), team_client("deployers")
    for team, right in (("helpers", "config"), ("deployers", "deploy")):
        admin.post("/api/v1/services/shop/grants",
                   json={"team": team, "rights": [right], "duration": "7d"}).raise_for_status()
    assert helper.post(DOMAINS, json={"name": "help.example.test"}).status_code == 201
    refused = deployer.post(DOMAINS, json={"name": "deploy.example.test"})
    assert refused.status_code == 403
    assert "no live config grant" in refused.json()["detail"]
    assert [d["name"] for d in owner.get(DOMAINS).json()] == ["help.example.test"]
