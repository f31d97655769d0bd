"""The swarm runtime's pure parts: names it gives and reads back, and the router's sites."""

from __future__ import annotations

from podium.runtime.interface import ReleaseRef
from podium.runtime.swarm.images import dockerfile, image_ref
from podium.runtime.swarm.router import edge_site, gateway_site, web_service_of
from podium.runtime.swarm.services import parse_service_name, service_name


def test_a_release_service_name_reads_back_as_its_release_and_type() -> None:
    name = service_name(ReleaseRef("shop-api", "production", 12), "web")
    assert name == "shop-api_production_v12_web"
    assert parse_service_name(name) == ("shop-api_production_v", 12, "web")
    assert parse_service_name("podium-router") is None


def test_the_gateway_routes_to_the_given_tasks_and_says_which_service() -> None:
    site = gateway_site("shop_production_v3_web", ("10.0.4.2", "10.0.4.3"))
    assert "server 10.0.4.2:5000" in site
    assert "server 10.0.4.3:5000" in site
    assert web_service_of(site) == "shop_production_v3_web"
    closed = gateway_site(None)
    assert "return 503" in closed
    assert web_service_of(closed) is None


def test_the_edge_sends_the_environment_hostnames_to_its_gateway() -> None:
    site = edge_site("shop_production", ["shop.production.localhost", "shop.localhost"], "10.0.9.7")
    assert "server_name shop.production.localhost shop.localhost;" in site
    assert "server 10.0.9.7:80" in site


def test_release_images_are_named_by_slug_digest_and_build_the_venv_before_the_app() -> None:
    assert image_ref("10.77.0.1:5000", "shop", "sha256:" + "ab" * 32) == "10.77.0.1:5000/podium-shop:abababababababab"
    text = dockerfile("podium-stack:bookworm-1", with_requirements=True, with_sdk=False)
    assert text.index("pip install") < text.index("COPY app /app")  # the venv layer is cached by requirements
    assert "RUN" not in dockerfile("podium-stack:bookworm-1", with_requirements=False, with_sdk=False)
