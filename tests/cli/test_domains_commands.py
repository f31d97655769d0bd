"""``podium domains add|list|remove`` as a team types them, against a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.support.certs import CertificateAuthority

from podium.errors import Invalid
from podium.runtime.ports import free_port

from .conftest import Invoke


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"router_tls_port": free_port(), "acme_directory_url": ""}


def test_add_with_a_certificate_list_as_json_and_remove(podium_cli: Invoke, tmp_path: Path) -> None:
    podium_cli("teams", "create", "web")
    podium_cli("services", "create", "shop", "--owner", "web")
    cert, key = CertificateAuthority().leaf("shop.example.test").write(tmp_path, "shop")

    added = podium_cli("domains", "add", "shop.example.test", "--service", "shop", "--env", "production",
                       "--cert", str(cert), "--key", str(key))
    assert added.stdout.startswith("shop.example.test routes to shop/production over HTTPS")
    podium_cli("domains", "add", "www.example.test", "-s", "shop", "-e", "production")

    listed = json.loads(podium_cli("domains", "list", "--service", "shop", "--env", "production", "--json").stdout)
    assert [(d["name"], d["tls"], d["expires_at"] is not None) for d in listed] == [
        ("shop.example.test", "uploaded", True), ("www.example.test", "pending", False),
    ]
    table = podium_cli("domains", "list", "-s", "shop", "-e", "production").stdout
    assert "uploaded (expires" in table
    assert "pending" in table

    assert podium_cli("domains", "remove", "www.example.test", "-s", "shop", "-e", "production").stdout == (
        "www.example.test no longer routes to shop/production\n"
    )
    listed = json.loads(podium_cli("domains", "list", "-s", "shop", "-e", "production", "--json").stdout)
    assert [d["name"] for d in listed] == ["shop.example.test"]


def test_a_bad_certificate_is_one_readable_line_and_nothing_is_added(podium_cli: Invoke, tmp_path: Path) -> None:
    podium_cli("teams", "create", "web")
    podium_cli("services", "create", "shop", "--owner", "web")
    cert, key = CertificateAuthority().leaf("blog.example.test").write(tmp_path, "blog")

    refused = podium_cli("domains", "add", "shop.example.test", "-s", "shop", "-e", "production",
                         "--cert", str(cert), "--key", str(key), expect=None)
    assert isinstance(refused.exception, Invalid)  # run_cli prints its detail as one line, exit 1
    assert str(refused.exception) == "the certificate is for blog.example.test, not shop.example.test"

    missing = podium_cli("domains", "add", "shop.example.test", "-s", "shop", "-e", "production",
                         "--cert", str(tmp_path / "nope.crt"), "--key", str(key), expect=None)
    assert isinstance(missing.exception, Invalid)
    assert str(missing.exception).startswith(f"cannot read the certificate {tmp_path / 'nope.crt'}")
    assert json.loads(podium_cli("domains", "list", "-s", "shop", "-e", "production", "--json").stdout) == []
