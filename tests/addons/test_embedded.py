"""The cluster Podium runs by default: a product team's whole story with it, and the platform's care of it.

No ``PODIUM_ADDONS_POSTGRES_URL`` here: the first add-on initialises a cluster in the
data dir, supervised by the node's supervisord as group ``podium-postgres``.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.addons.conftest import ADMIN
from tests.addons.support import connect, refusal, rows
from tests.conftest import LiveServer
from tests.deploy.support import poll, through_router
from typer.testing import CliRunner

from podium.addons.postgres import GROUP, Endpoint
from podium.cli.main import app
from podium.config import Settings
from podium.core import Podium

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

APP = """
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = os.environ.get("DATABASE_URL")
        if url is None:
            answer = {"database": None, "rows": None}
        else:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS items (name text)")
                [(count,)] = conn.execute("SELECT count(*) FROM items").fetchall()
                [(name,)] = conn.execute("SELECT current_database()").fetchall()
            answer = {"database": name, "rows": count}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.fixture
def settings_overrides(data_dir: Path) -> dict[str, Any]:
    """The embedded cluster (no server URL); the data dir private to root, as mkdtemp makes it."""
    data_dir.chmod(0o700)
    return {"addons_probe_down_after": 2, "addons_probe_up_after": 1}


@pytest.fixture
def counter_app(tmp_path: Path) -> Path:
    """A web app that answers with the row count of its database's ``items`` table."""
    where = tmp_path / "counter"
    where.mkdir()
    (where / "app.py").write_text(APP)
    (where / "Procfile").write_text(f"web: {sys.executable} app.py\n")  # the venv's python has psycopg
    return where


def cli(server: LiveServer, *args: str, token: str | None = None, expect: int = 0) -> Any:
    env = {"PODIUM_URL": server.url, "PODIUM_TOKEN": token or server.admin_token, "XDG_CONFIG_HOME": "/nonexistent"}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == expect, (args, result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout) if "--json" in args and expect == 0 else result


def answer(settings: Settings) -> dict[str, Any]:
    response = through_router(settings.router_port, "shop.staging.localhost")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def add_items(url: str, *names: str) -> None:
    with connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS items (name text)")
        for name in names:
            conn.execute("INSERT INTO items VALUES (%s)", [name])


def test_a_team_adds_a_database_to_its_staging_app_backs_it_up_and_restores_it(
    live_server: LiveServer, counter_app: Path, settings: Settings
) -> None:
    cli(live_server, "teams", "create", "web")
    token = cli(live_server, "tokens", "create", "--team", "web").stdout.strip()
    cli(live_server, "services", "create", "shop", "--owner", "web", token=token)
    v1 = cli(live_server, "deploy", str(counter_app), "--service", "shop", "--env", "staging", "--json", token=token)
    assert v1["status"] == "live"
    assert answer(settings) == {"database": None, "rows": None}

    made = cli(live_server, "addons", "create", "postgres", "--service", "shop", "--env", "staging", "--json",
               token=token)
    assert (made["release"]["version"], made["release"]["status"]) == ("v2", "live")
    assert made["addon"]["server_kind"] == "embedded"
    assert made["addon"]["url"] is None
    assert answer(settings) == {"database": made["addon"]["database"], "rows": 0}

    info = cli(live_server, "addons", "info", "--service", "shop", "--env", "staging", "--show-url", "--json",
               token=token)
    url = info["url"]
    add_items(url, "apple", "pear", "plum")
    assert answer(settings)["rows"] == 3
    backup_id = int(cli(live_server, "addons", "backup", "--service", "shop", "--env", "staging",
                        token=token).stdout.strip())
    add_items(url, "fig", "kiwi")
    assert answer(settings)["rows"] == 5
    cli(live_server, "addons", "restore", "--service", "shop", "--env", "staging", "--backup", str(backup_id),
        token=token)
    assert answer(settings)["rows"] == 3
    assert sorted(str(r[0]) for r in rows(url, "SELECT name FROM items")) == ["apple", "pear", "plum"]

    rotated = cli(live_server, "addons", "credentials", "rotate", "--service", "shop", "--env", "staging", "--json",
                  token=token)
    assert (rotated["release"]["version"], rotated["release"]["status"]) == ("v3", "live")
    assert rotated["addon"]["rotation_pending"] is False
    assert "password authentication failed" in refusal(url)  # the old password stops working after the rollout
    assert answer(settings)["rows"] == 3  # the app, on the new login, never stopped reading its data

    listed = cli(live_server, "addons", "backups", "list", "--service", "shop", "--env", "staging", "--json")
    assert [b["kind"] for b in listed] == ["safety", "manual"]


def test_the_cluster_runs_as_postgres_behind_passwords_and_comes_back_when_it_dies(
    core: Podium, settings: Settings
) -> None:
    core.catalog.create_team(ADMIN, "shop")
    core.catalog.create_service(ADMIN, "cart", "shop")
    addon = core.addons.create(ADMIN, "cart", "staging").addon
    url = core.deploys.get_config("cart", "staging")["DATABASE_URL"]
    add_items(url, "kept")
    root = settings.data_dir / "postgres"
    info = core.runtime.platform_status(GROUP)
    assert info is not None
    assert info.pid is not None
    assert info.state in ("STARTING", "RUNNING")  # RUNNING once it has run for a second
    server_user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    assert info.user == server_user  # setpriv execs: supervisord's pid is postgres
    assert info.node == "local"
    assert (root / "data").stat().st_mode & 0o777 == 0o700
    assert os.stat(root / "superuser.password").st_mode & 0o777 == 0o600
    assert settings.data_dir.stat().st_mode & 0o007 == 0  # let through by an ACL, not opened to others
    host, port = addon.server.split(":")
    assert host == "127.0.0.1"
    nobody = Endpoint(host, int(port), "postgres", "not the password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(nobody.conninfo("postgres"))
    assert "permission denied for database" in refusal(url, dbname="postgres")

    os.kill(info.pid, signal.SIGQUIT)  # an immediate shutdown: to supervisord, the server died
    poll(lambda: _answers(url), 30, "the database server to be restarted")
    assert rows(url, "SELECT name FROM items") == [("kept",)]


def _answers(url: str) -> bool:
    try:
        with connect(url):
            return True
    except psycopg.OperationalError:
        return False


def test_a_down_server_pages_the_platform_team_and_podium_restarts_keep_it(core: Podium, settings: Settings) -> None:
    core.catalog.create_team(ADMIN, "shop")
    core.catalog.create_service(ADMIN, "cart", "shop")
    core.addons.create(ADMIN, "cart", "production")
    url = core.deploys.get_config("cart", "production")["DATABASE_URL"]
    add_items(url, "survives")
    assert core.addon_care.probe() is True

    core.runtime.stop_platform(GROUP)
    assert core.addon_care.probe() is False
    assert core.incidents.list(service="cart") == []  # one failed probe is not an outage yet
    assert core.addon_care.probe() is False
    [incident] = core.incidents.list(service="cart")
    assert (incident.team, incident.env, incident.state) == ("platform", "production", "triggered")
    assert "database server of cart/production is down" in incident.summary
    core.addon_care.probe()
    assert len(core.incidents.list(service="cart")) == 1  # one incident per outage

    again = Podium(settings)  # Podium restarts: the server comes back with it, data intact
    again.start()
    try:
        again.start_runtime()
        assert rows(url, "SELECT name FROM items") == [("survives",)]
        assert again.addon_care.probe() is True
        [resolved] = again.incidents.list(service="cart")
        assert resolved.state == "resolved"
    finally:
        again.close()
