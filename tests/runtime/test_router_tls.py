"""The router serves custom domains: HTTPS by SNI where a domain has a certificate, a 301
from its plain HTTP, plain HTTP where it has none; a missing certificate never breaks nginx."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.certs import CertificateAuthority, https_get

from podium.errors import Conflict
from podium.runtime.interface import CustomDomain
from podium.runtime.ports import free_port
from podium.runtime.router import Router

from .conftest import get, stop_router

HOST = "svc.staging.localhost"


@pytest.fixture
def tls_router(tmp_path: Path) -> Iterator[Router]:
    """A running nginx on free HTTP and TLS ports."""
    router = Router(tmp_path / "router", free_port(), tls_port=free_port())
    router.ensure_running()
    yield router
    stop_router(router)


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority()


def with_cert(ca: CertificateAuthority, folder: Path, name: str) -> CustomDomain:
    cert, key = ca.leaf(name).write(folder, name)
    return CustomDomain(name, cert, key)


def test_two_domains_on_one_port_each_get_their_own_certificate(
    tls_router: Router, thread_app: Callable[[str], int], ca: CertificateAuthority, tmp_path: Path
) -> None:
    app = thread_app("A")
    tls_router.set_route("svc_staging", [HOST], [app])
    shop, blog = with_cert(ca, tmp_path, "shop.example.test"), with_cert(ca, tmp_path, "blog.example.test")
    tls_router.set_domains("svc_staging", [shop, blog])

    for name in ("shop.example.test", "blog.example.test"):
        answer = https_get(tls_router.tls_port, name, ca.context())
        assert (answer.status, answer.body, answer.peer_names) == (200, b"A", [name])

    # The generated hostname has no certificate: it stays on plain HTTP.
    assert get(tls_router.port, HOST).text == "A"


@pytest.mark.parametrize("name", ["unknown.example.test", None])
def test_a_client_asking_for_no_domain_the_router_has_gets_no_certificate(
    tls_router: Router, thread_app: Callable[[str], int], ca: CertificateAuthority, tmp_path: Path,
    name: str | None,
) -> None:
    """Neither an unknown name nor no name at all (no SNI) is handed some domain's certificate:
    the handshake is refused, and the domains of two routes are served as before."""
    tls_router.set_route("svc_staging", [HOST], [thread_app("A")])
    tls_router.set_route("web_production", ["web.localhost"], [thread_app("B")])
    tls_router.set_domains("svc_staging", [with_cert(ca, tmp_path, "shop.example.test")])
    tls_router.set_domains("web_production", [with_cert(ca, tmp_path, "blog.example.test")])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # would take any certificate
    with (
        socket.create_connection(("127.0.0.1", tls_router.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError, match=r"UNRECOGNIZED_NAME|HANDSHAKE_FAILURE"),
    ):
        context.wrap_socket(raw, server_hostname=name)
    for domain, body in (("shop.example.test", b"A"), ("blog.example.test", b"B")):
        assert https_get(tls_router.tls_port, domain, ca.context()).body == body


def test_plain_http_of_a_domain_with_a_certificate_redirects_to_https(
    tls_router: Router, thread_app: Callable[[str], int], ca: CertificateAuthority, tmp_path: Path
) -> None:
    tls_router.set_route("svc_staging", [HOST], [thread_app("A")])
    tls_router.set_domains("svc_staging", [with_cert(ca, tmp_path, "shop.example.test")])

    response = get(tls_router.port, "shop.example.test", "/cart?item=3")
    assert response.status_code == 301
    assert response.headers["location"] == f"https://shop.example.test:{tls_router.tls_port}/cart?item=3"


def test_a_certificate_for_another_name_fails_the_clients_check(
    tls_router: Router, thread_app: Callable[[str], int], ca: CertificateAuthority, tmp_path: Path
) -> None:
    tls_router.set_route("svc_staging", [HOST], [thread_app("A")])
    cert, key = ca.leaf("other.example.test").write(tmp_path, "other")
    tls_router.set_domains("svc_staging", [CustomDomain("shop.example.test", cert, key)])
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(tls_router.tls_port, "shop.example.test", ca.context())


def test_a_domain_without_a_certificate_is_served_on_plain_http(
    tls_router: Router, thread_app: Callable[[str], int], tmp_path: Path
) -> None:
    tls_router.set_route("svc_staging", [HOST], [thread_app("A")])
    missing = tmp_path / "nowhere"
    tls_router.set_domains("svc_staging", [
        CustomDomain("pending.example.test"),
        CustomDomain("gone.example.test", missing / "chain.pem", missing / "key.pem"),  # files not there
    ])
    assert get(tls_router.port, "pending.example.test").text == "A"
    assert get(tls_router.port, "gone.example.test").text == "A"
    with pytest.raises(ConnectionRefusedError):  # no domain has a certificate: nothing on the TLS port
        https_get(tls_router.tls_port, "gone.example.test", ssl.create_default_context())


def test_domains_set_before_a_route_exists_are_served_once_it_does_and_kept_across_switches(
    tls_router: Router, thread_app: Callable[[str], int], ca: CertificateAuthority, tmp_path: Path
) -> None:
    a, b = thread_app("A"), thread_app("B")
    tls_router.set_domains("svc_staging", [with_cert(ca, tmp_path, "shop.example.test")])
    assert get(tls_router.port, "shop.example.test").status_code == 404  # nothing routed yet

    tls_router.set_route("svc_staging", [HOST], [a])
    assert https_get(tls_router.tls_port, "shop.example.test", ca.context()).body == b"A"
    tls_router.set_route("svc_staging", [HOST], [b])
    assert https_get(tls_router.tls_port, "shop.example.test", ca.context()).body == b"B"
    tls_router.remove_route("svc_staging")
    tls_router.set_route("svc_staging", [HOST], [a])
    assert https_get(tls_router.tls_port, "shop.example.test", ca.context()).body == b"A"

    tls_router.set_domains("svc_staging", [])
    assert get(tls_router.port, "shop.example.test").status_code == 404
    assert get(tls_router.port, HOST).text == "A"


def test_a_domain_routed_by_another_route_is_refused(
    tls_router: Router, thread_app: Callable[[str], int]
) -> None:
    tls_router.set_route("one_staging", ["one.staging.localhost"], [thread_app("A")])
    tls_router.set_route("two_staging", ["two.staging.localhost"], [thread_app("B")])
    tls_router.set_domains("one_staging", [CustomDomain("shop.example.test")])
    with pytest.raises(Conflict, match=r"shop\.example\.test already routed by 'one_staging'"):
        tls_router.set_domains("two_staging", [CustomDomain("shop.example.test")])
    assert get(tls_router.port, "shop.example.test").text == "A"


def test_the_router_started_again_serves_the_domains_it_had(
    tmp_path: Path, thread_app: Callable[[str], int], ca: CertificateAuthority
) -> None:
    router = Router(tmp_path / "router", free_port(), tls_port=free_port())
    router.ensure_running()
    try:
        router.set_route("svc_staging", [HOST], [thread_app("A")])
        router.set_domains("svc_staging", [with_cert(ca, tmp_path, "shop.example.test")])
        router.stop()
        router.ensure_running()
        assert https_get(router.tls_port, "shop.example.test", ca.context()).body == b"A"
    finally:
        stop_router(router)
