"""Every server setting is documented in docs/settings.md, with its variable and default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from podium.config import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"
ROW = re.compile(r"^\| `(PODIUM_[A-Z0-9_]+)` \| (.+?) \| (.+?) \|$", re.MULTILINE)


def documented() -> dict[str, tuple[str, str]]:
    """Variable name → (default cell, description cell), from the table in the doc."""
    return {m.group(1): (m.group(2), m.group(3)) for m in ROW.finditer(DOC.read_text())}


def shown(default: Any) -> str:
    """A default as the doc writes it."""
    if default is None:
        return "(none)"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_is_documented_with_its_default(name: str) -> None:
    field = Settings.model_fields[name]
    assert field.description, f"Settings.{name} has no description"
    rows = documented()
    variable = f"PODIUM_{name.upper()}"
    assert variable in rows, f"{variable} is missing from {DOC.name}"
    default, description = rows[variable]
    assert default.startswith(shown(field.default)), f"{variable}: the doc says {default}, the code {field.default!r}"
    assert description.strip()


def test_the_doc_names_no_setting_that_does_not_exist() -> None:
    known = {f"PODIUM_{name.upper()}" for name in Settings.model_fields}
    assert set(documented()) - known == set()


def test_settings_come_from_podium_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PODIUM_PORT", "9123")
    monkeypatch.setenv("PODIUM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PODIUM_COOKIE_SECURE", "true")
    settings = Settings()
    assert (settings.port, settings.data_dir, settings.cookie_secure) == (9123, tmp_path, True)
    assert settings.store_url == f"sqlite:///{tmp_path.resolve() / 'podium.db'}"
    assert settings.admin_token_path == tmp_path / "admin-token"


@pytest.mark.parametrize(
    ("router_host", "url"),
    [("127.0.0.2", "http://127.0.0.2:9000"), ("0.0.0.0", "http://127.0.0.1:9000"),  # noqa: S104
     ("::", "http://[::1]:9000"), ("::1", "http://[::1]:9000"), ("fd00::7", "http://[fd00::7]:9000")],
)
def test_the_router_is_reached_at_its_bind_address_an_ipv6_one_in_brackets(router_host: str, url: str) -> None:
    """Health checks go through the router at this URL: an IPv6 bind (``--router-bind ::1``) needs brackets."""
    assert Settings(router_host=router_host, router_port=9000).router_url == url
    assert Settings(host="::1", port=8000).base_url == "http://[::1]:8000"
