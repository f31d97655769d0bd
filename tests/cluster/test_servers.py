"""Two servers on one PostgreSQL store answer alike; one leads; a form travels between them.
SQLite stays a one-server store."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest
from tests.cluster.support import FAST, PODIUM, Pair, Server
from tests.web.support import csrf_of, sign_in

from podium.api.deps import SESSION_COOKIE
from podium.runtime.node import LocalNode
from podium.runtime.ports import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def test_both_servers_answer_and_exactly_one_leads(pair: Pair) -> None:
    pair.up()
    leader = pair.leader()
    follower = pair.other(leader)
    shown = {server.name: server.health() for server in pair.servers}
    assert shown[leader.name] is not None
    assert shown[follower.name] is not None
    assert (shown[leader.name]["leader"], shown[follower.name]["leader"]) == (True, False)
    assert shown[leader.name]["server"] == leader.name
    assert shown[leader.name]["server_id"] != shown[follower.name]["server_id"]
    for server in pair.servers:  # the API serves the same store on either
        with server.client() as client:
            teams = client.get("/api/v1/teams")
            assert teams.status_code == 200, teams.text
    with pair.servers[0].client() as first, pair.servers[1].client() as second:
        assert first.post("/api/v1/teams", json={"name": "made-on-a"}).status_code == 201
        assert second.get("/api/v1/teams/made-on-a").status_code == 200


def test_a_web_form_opened_on_one_server_posts_to_the_other(pair: Pair) -> None:
    pair.up()
    first, second = pair.servers
    token = (first.data_dir / "admin-token").read_text().strip()
    with (
        httpx.Client(base_url=first.url, timeout=30) as browser_a,
        httpx.Client(base_url=second.url, timeout=30) as browser_b,
    ):
        assert sign_in(browser_a, token).status_code == 303, "signing in on a"
        csrf = csrf_of(browser_a.get("/").text)
        browser_b.cookies.set(SESSION_COOKIE, browser_a.cookies[SESSION_COOKIE])
        assert browser_b.get("/", follow_redirects=False).status_code == 200, "the session is the store's"
        logout = browser_b.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert logout.status_code == 303, f"a's form refused by b: {logout.status_code} {logout.text[:200]}"
        forged = browser_b.post("/logout", data={"csrf": "0" * 64}, follow_redirects=False)
        assert forged.status_code == 403


def test_a_second_server_on_a_sqlite_store_is_refused() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pd-"))
    router_port = free_port()
    first = Server("solo", data_dir, router_port, {})
    try:
        first.start()
        assert first.health() is not None
        assert (first.health() or {}).get("leader") is True, "the one server of a SQLite store leads"
        second = subprocess.run(
            [str(PODIUM), "server", "--data-dir", str(data_dir), "--port", str(free_port()),
             "--router-port", str(free_port())],
            env={**first.env, **FAST, "PODIUM_SERVER_NAME": "second"}, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode != 0
        assert "another Podium server" in second.stderr, second.stderr
        assert "PODIUM_DATABASE_URL" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert first.health() is not None, "the first server runs on"
    finally:
        first.kill()
        LocalNode(data_dir / "node", router_port).shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
