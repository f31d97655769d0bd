"""The deploy sections of the service page over plain HTTP, against real deploys of examples/hello."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.web.support import HELLO, csrf_of, deploy, failing_slug, follow, pack, sign_in

from podium.core import Podium
from podium.runtime.ports import free_port

SERVICE = "/services/hello"
STAGING = f"{SERVICE}/environments/staging"


def section(page: str, env: str) -> str:
    """The HTML of one environment's section of the service page."""
    match = re.search(rf'<section class="environment" id="environment-{env}".*?</section>', page, re.S)
    assert match is not None, f"no {env} section"
    return match.group(0)


def release_row(html: str, version: str) -> str:
    match = re.search(rf'<tr data-release="{version}">.*?</tr>', html, re.S)
    assert match is not None, f"no row for {version}"
    return match.group(0)


@pytest.fixture
def owned(admin: TestClient) -> None:
    """The service hello, owned by checkout, nothing deployed yet."""
    admin.post("/api/v1/teams", json={"name": "checkout"}).raise_for_status()
    admin.post("/api/v1/services", json={"name": "hello", "owner": "checkout"}).raise_for_status()


@pytest.fixture
def hello(owned: None, admin: TestClient, tmp_path: Path) -> list[dict[str, Any]]:
    """Staging has v1 (superseded), v2 (live) and v3 (failed); production has v1 (failed)."""
    good, bad = pack(HELLO, tmp_path / "hello.tgz"), failing_slug(tmp_path)
    releases = [deploy(admin, "hello", "staging", slug) for slug in (good, good, bad)]
    releases.append(deploy(admin, "hello", "production", bad))
    assert [r["status"] for r in releases] == ["live", "live", "failed", "failed"], releases
    return releases


def test_the_service_page_shows_the_live_release_its_processes_deploys_url_and_logs(
    signed_in: TestClient, hello: list[dict[str, Any]], core: Podium
) -> None:
    page = signed_in.get(SERVICE)
    assert page.status_code == 200
    staging = section(page.text, "staging")

    v2 = hello[1]
    assert "live v2" in staging
    assert v2["digest"].removeprefix("sha256:")[:12] in staging
    assert v2["description"] in staging
    assert "platform" in staging
    assert f'href="http://hello.staging.localhost:{core.settings.router_port}/"' in staging
    assert "<code>web-1</code>" in staging
    # RUNNING, or STARTING in supervisord's first second of the process (it passed its health check).
    assert re.search(r'class="badge (live|deploying)">(RUNNING|STARTING)<', staging)
    assert f">{v2['ports']['web-1']}<" in staging
    assert "listening" in staging, "the last log lines"
    assert "hx-trigger" not in staging or "STARTING" in staging, "nothing in flight: no refreshing"

    assert 'class="badge superseded">superseded' in release_row(staging, "v1")
    assert 'class="badge live">live' in release_row(staging, "v2")
    assert "Rollback" in release_row(staging, "v1")
    assert "Rollback" not in release_row(staging, "v2"), "v2 is live: nothing to go back to"
    assert "Rollback" not in release_row(staging, "v3"), "v3 never went live"

    assert 'class="badge failed">failed' in release_row(staging, "v3")
    production = section(page.text, "production")
    assert "Nothing is live in production yet." in production
    assert "Rollback" not in production

    statuses = re.search(r'<a href="/services/hello">.*?</tr>', signed_in.get("/").text, re.S)
    assert statuses is not None
    assert 'staging</span> <span class="badge live">live v2<' in statuses.group(0), "live wins over v3 failing"
    assert 'production</span> <span class="badge failed">failed<' in statuses.group(0)


@pytest.mark.usefixtures("owned")
def test_a_failed_release_shows_its_reason_and_log_tail(
    signed_in: TestClient, admin: TestClient, tmp_path: Path
) -> None:
    assert deploy(admin, "hello", "staging", failing_slug(tmp_path))["status"] == "failed"

    staging = section(signed_in.get(SERVICE).text, "staging")
    assert "Nothing is live in staging yet." in staging
    row = release_row(staging, "v1")
    assert 'class="badge failed">failed' in row
    details = re.search(r'<details class="failure">.*?</details>', row, re.S)
    assert details is not None
    assert "<summary>releasing: release command exited with status 3</summary>" in details.group(0)
    assert "no database at db:5432" in details.group(0)
    assert "Rollback" not in staging

    home = signed_in.get("/").text
    assert 'staging</span> <span class="badge failed">failed<' in home
    assert 'production</span> <span class="badge none">—<' in home


def test_a_team_without_the_deploy_right_gets_403_and_the_owner_rolls_back(
    signed_in: TestClient, admin: TestClient, hello: list[dict[str, Any]]
) -> None:
    admin.post("/api/v1/teams", json={"name": "search"}).raise_for_status()
    token = admin.post("/api/v1/teams/search/tokens", json={}).json()["token"]
    before = admin.get(f"/api/v1{STAGING}/releases").json()
    with TestClient(signed_in.app) as stranger:
        assert sign_in(stranger, token).status_code == 303
        page = stranger.get(SERVICE).text
        assert "live v2" in page, "the page is readable to every signed-in team"
        assert "Rollback" not in page, "no button the team may not use"
        refused = stranger.post(f"{STAGING}/rollback", data={"csrf": csrf_of(page), "to": "v1"})
    assert refused.status_code == 403
    assert "Not allowed" in refused.text
    assert "may not change service &#39;hello&#39;" in refused.text
    assert admin.get(f"/api/v1{STAGING}/releases").json() == before
    audit = admin.get("/api/v1/audit", params={"service": "hello"}).json()
    assert not [event for event in audit if event["action"] == "release.rollback"]

    csrf = csrf_of(signed_in.get(SERVICE).text)
    response = signed_in.post(f"{STAGING}/rollback", data={"csrf": csrf, "to": "v1"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"{SERVICE}#environment-staging"
    page = signed_in.get(SERVICE).text
    assert "Rolling back to v1: v4 started in staging." in page
    assert release_row(section(page, "staging"), "v4")
    assert "Rolling back to v1" not in signed_in.get(SERVICE).text, "the note is shown once"

    v4 = follow(signed_in, "hello", "staging", "v4")
    assert (v4["status"], v4["rollback_of"]) == ("live", "v1")
    staging = section(signed_in.get(SERVICE).text, "staging")
    assert "live v4" in staging
    assert "Rollback" in release_row(staging, "v2")


GATE = """import os, socket, time
while True:
    try:
        socket.create_connection(("127.0.0.1", int(os.environ["GATE_PORT"])), timeout=1).close()
        break
    except OSError:
        time.sleep(0.05)
"""


@pytest.mark.usefixtures("owned")
def test_the_section_refreshes_itself_only_while_a_release_is_in_flight(
    signed_in: TestClient, admin: TestClient, tmp_path: Path
) -> None:
    """A release command that waits for a port to open holds the release in flight for as long as the
    test wants (a port, not a file: the release command's sandbox sees none of the test's files)."""
    port = free_port()
    admin.patch(f"/api/v1{STAGING}/config", json={"set": {"GATE_PORT": str(port)}}).raise_for_status()
    src = shutil.copytree(HELLO, tmp_path / "held")
    (src / "gate.py").write_text(GATE)
    (src / "Procfile").write_text("web: python3 app.py\nrelease: python3 gate.py\n")
    response = admin.post(f"/api/v1{STAGING}/deploys", content=pack(src, tmp_path / "held.tgz"))
    assert response.status_code == 202, response.text
    try:
        fragment = signed_in.get(STAGING, headers={"HX-Request": "true"})
        assert fragment.status_code == 200
        assert "<html" not in fragment.text
        assert f'hx-get="{STAGING}" hx-trigger="every 2s" hx-swap="outerHTML"' in fragment.text
        assert 'class="badge deploying">deploying' in fragment.text
        assert 'id="service-status" hx-swap-oob="true"' in fragment.text
    finally:
        gate = socket.create_server(("127.0.0.1", port))  # the release command goes on
    with gate:
        landed = follow(admin, "hello", "staging", "v1")
    assert landed["status"] == "live", landed["failure_reason"]

    fragment = signed_in.get(STAGING, headers={"HX-Request": "true"})
    assert "live v1" in fragment.text
    assert 'badge deploying">deploying' not in fragment.text
    assert "<code>web-1</code>" in fragment.text
    if "STARTING" not in fragment.text:  # supervisord's first second: the section still refreshes then
        assert "hx-trigger" not in fragment.text, "landed and settled: the section stops asking"

    plain = signed_in.get(STAGING, follow_redirects=False)
    assert plain.status_code == 303
    assert plain.headers["location"] == f"{SERVICE}#environment-staging"
    assert signed_in.get(f"{SERVICE}/environments/qa", headers={"HX-Request": "true"}).status_code == 404
