"""``podium billing``: usage, invoices as table, JSON and CSV, and prices, against a live server."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.billing.support import FLAT, make_service, sheet, store_usage, usage
from typer.testing import CliRunner

from podium.billing.models import Meter
from podium.cli.main import app
from podium.cli.output import exit_code
from podium.core import Podium
from podium.errors import PodiumError

if TYPE_CHECKING:
    from tests.conftest import LiveServer


@pytest.fixture
def cli(live_server: LiveServer, core: Podium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Teams checkout and search with January's usage; their tokens and the admin's, by team."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with live_server.client() as client:
        make_service(client, "cart", "checkout")  # type: ignore[arg-type]
        make_service(client, "search-api", "search")  # type: ignore[arg-type]
        tokens = {team: client.post(f"/api/v1/teams/{team}/tokens", json={}).json()["token"]
                  for team in ("checkout", "search")}
    store_usage(core, usage("checkout", 3600, "2026-01-05 10:00:00", "2026-01-05 11:00:00"),
                usage("checkout", 100, "2026-01-06 10:00:00", "2026-01-06 11:00:00", meter=Meter.API_REQUESTS,
                      env="staging"),
                usage("search", 7200, "2026-01-07 10:00:00", "2026-01-07 11:00:00", service="search-api"))
    return {**tokens, "platform": live_server.admin_token, "url": live_server.url}


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def run(cli: dict[str, str], *args: str, team: str = "checkout", expect: int = 0) -> Ran:
    """``podium billing ARGS`` in-process; a PodiumError gets the exit code and line ``run_cli`` gives it."""
    result = CliRunner().invoke(app, ["billing", *args], env={"PODIUM_URL": cli["url"], "PODIUM_TOKEN": cli[team]})
    ran = Ran(result.exit_code, result.stdout, result.stderr)
    if isinstance(result.exception, PodiumError):
        ran = Ran(exit_code(result.exception), result.stdout, f"error: {result.exception.detail}\n")
    assert ran.code == expect, (args, result.stdout, result.stderr, result.exception)
    return ran


def test_usage_and_an_invoice_as_json_table_and_csv(cli: dict[str, str]) -> None:
    used = json.loads(run(cli, "usage", "--team", "checkout", "--month", "2026-01", "--json").stdout)
    assert [(row["service"], row["env"], row["meter"], row["quantity"]) for row in used["usage"]] == [
        ("cart", "production", "process_seconds", 3600), ("cart", "staging", "api_requests", 100),
    ]
    table = run(cli, "usage", "--month", "2026-01").stdout
    assert "cart/production" in table
    assert "3,600 process-second" in table
    invoice = json.loads(run(cli, "invoice", "--team", "checkout", "--month", "2026-01", "--format", "json").stdout)
    assert [line["amount_cents"] for line in invoice["lines"]] == [360, 100]
    assert invoice["total_cents"] == 460 + invoice["shared_cents"]
    rows = list(csv.reader(io.StringIO(run(cli, "invoice", "--month", "2026-01", "--format", "csv").stdout)))
    assert rows[-1] == ["total", "", "", "", "", "", "", str(invoice["total_cents"])]
    shown = run(cli, "invoice", "--team", "checkout", "--month", "2026-01").stdout
    assert f"{invoice['total_cents'] // 100}.{invoice['total_cents'] % 100:02d} USD" in shown
    assert "process_seconds (web:standard)" in shown
    assert "how it was shared" in shown
    assert "shared in proportion to each team's usage cost this month" in " ".join(shown.split())


def test_a_team_is_refused_another_teams_bill_and_bad_months_are_errors(cli: dict[str, str]) -> None:
    refused = run(cli, "invoice", "--team", "checkout", "--month", "2026-01", team="search", expect=4)
    assert "may not read the billing of team 'checkout'" in refused.stderr
    run(cli, "usage", "--team", "checkout", "--month", "2026-01", team="search", expect=4)
    run(cli, "invoice", "--team", "checkout", "--month", "2026-01", team="platform")
    future = run(cli, "invoice", "--team", "checkout", "--month", "2099-01", expect=2)
    assert "in the future" in future.stderr
    run(cli, "invoice", "--month", "2026-1", expect=2)
    # The installed command, as a person runs it: one line on stderr, exit code 4.
    script = Path(sys.executable).parent / "podium"
    done = subprocess.run(
        [str(script), "billing", "usage", "--team", "checkout", "--month", "2026-01"], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PODIUM_URL": cli["url"],
             "PODIUM_TOKEN": cli["search"]},
        timeout=60, check=False,
    )
    assert (done.returncode, done.stderr) == (4, "error: team 'search' may not read the billing of team 'checkout'\n")


def test_prices_are_shown_and_replaced_by_the_platform_team_only(cli: dict[str, str], tmp_path: Path) -> None:
    assert "[[prices]]" in run(cli, "prices").stdout
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(sheet(FLAT.replace("api_requests = 0.01", "api_requests = 0.03")))
    bad.write_text("[[prices]\n")
    assert "only the 'platform' team" in run(cli, "prices", "--set", str(good), expect=4).stderr
    assert "not valid TOML" in run(cli, "prices", "--set", str(bad), team="platform", expect=2).stderr
    changed = json.loads(run(cli, "prices", "--set", str(good), "--json", team="platform").stdout)
    assert changed["prices"][0]["meters"]["api_requests"] == "0.03"
