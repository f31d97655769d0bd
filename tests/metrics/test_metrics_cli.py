"""The metrics commands in-process against a live server, on incidents written into the store."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.metrics.support import Seed
from typer.testing import CliRunner, Result

from podium.cli.main import app
from podium.cli.metrics import duration, percent
from podium.errors import Forbidden, Invalid

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No login of the developer's leaks in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PODIUM_URL", raising=False)
    monkeypatch.delenv("PODIUM_TOKEN", raising=False)


@pytest.fixture
def podium_cli(live_server: Any) -> Invoke:
    """``podium_cli(*args, token=..., expect=0)``: the CLI in-process, talking to the live server."""
    runner = CliRunner()

    def invoke(*args: str, token: str | None = None, expect: int | None = 0) -> Result:
        env = {"PODIUM_URL": live_server.url, "PODIUM_TOKEN": token or live_server.admin_token}
        result = runner.invoke(app, list(args), env=env)
        if expect is not None:
            assert result.exit_code == expect, (args, result.exception, result.stdout, result.stderr)
        return result

    return invoke


@pytest.fixture
def cart(seed: Seed) -> Seed:
    """Service cart of team checkout: 50 minutes down five days ago, acknowledged after 5."""
    now = datetime.now(UTC)
    seed.service("cart", "checkout")
    start = now - timedelta(days=5)
    seed.incident("cart", start, start + timedelta(minutes=50), acknowledged=start + timedelta(minutes=5),
                  summary="checkout returns 502")
    return seed


def token(seed: Seed, team: str) -> str:
    seed.team(team)
    return str(seed.admin.post(f"/api/v1/teams/{team}/tokens", json={}).json()["token"])


def test_availability_as_a_table_and_as_json(cart: Seed, podium_cli: Invoke) -> None:
    shown = podium_cli("metrics", "availability", "--service", "cart", "--since", "30d").stdout
    assert re.search(r"scope\s+service cart \(production\)", shown)
    assert re.search(r"availability\s+99\.884%", shown)  # 1 - 50 min / 30 days
    assert re.search(r"downtime\s+50m 0s", shown)
    assert re.search(r"MTTR\s+50m 0s \(median 50m 0s\)", shown)
    assert re.search(r"MTTA\s+5m 0s", shown)
    assert re.search(r"MTBF\s+no data", shown)
    assert re.search(r"\d{4}-W\d\d\s+1\s+99\.\d{3}%", shown)  # the week of the incident
    answer = json.loads(podium_cli("metrics", "availability", "--team", "checkout", "--json").stdout)
    for key in ("incidents", "mttr_seconds", "mtta_seconds", "mtbf_seconds", "availability", "weighted_availability"):
        assert key in answer
    assert answer["incidents"] == 1
    assert answer["mtbf_seconds"] is None


def test_dora_as_json(cart: Seed, podium_cli: Invoke) -> None:
    answer = json.loads(podium_cli("metrics", "dora", "--team", "checkout", "--since", "30d", "--json").stdout)
    assert answer["deploys"] == 0
    assert answer["change_failure_rate"] is None
    assert answer["time_to_restore_seconds"] == 50 * 60
    table = podium_cli("metrics", "dora", "--team", "checkout").stdout
    assert re.search(r"change failure rate\s+no data", table)
    assert re.search(r"lead time\s+no data: no deploy went live in production in this period", table)
    assert re.search(r"time to restore\s+50m 0s", table)


def test_slo_set_by_the_owner_and_shown_to_anyone(cart: Seed, podium_cli: Invoke) -> None:
    owner, other = token(cart, "checkout"), token(cart, "discovery")
    refused = podium_cli("slo", "set", "--service", "cart", "--objective", "0.99", token=other, expect=1)
    assert isinstance(refused.exception, Forbidden)
    done = podium_cli("slo", "set", "--service", "cart", "--objective", "0.99", "--window", "30", token=owner)
    assert done.stdout == "SLO of cart (production): 99.000% over 30d\n"
    shown = podium_cli("metrics", "slo", "--service", "cart", token=other).stdout
    assert re.search(r"objective\s+99\.000% over 30d", shown)
    assert re.search(r"error budget\s+7h 12m", shown)  # 1% of 30 days
    assert re.search(r"consumed\s+50m 0s", shown)
    assert re.search(r"remaining\s+88\.425%", shown)  # 1 - 50 min / 432 min = 88.4259%, rounded down
    assert json.loads(podium_cli("slo", "show", "--service", "cart", "--json").stdout)["objective"] == 0.99


def test_export_incidents_writes_csv_to_stdout(cart: Seed, podium_cli: Invoke) -> None:
    out = podium_cli("metrics", "export", "incidents", "--team", "checkout", "--since", "90d").stdout
    found = list(csv.DictReader(io.StringIO(out)))
    assert [(r["service"], r["summary"], r["time_to_resolve_seconds"]) for r in found] == [
        ("cart", "checkout returns 502", "3000.0")
    ]
    monthly = podium_cli("metrics", "export", "availability", "--service", "cart").stdout
    assert monthly.startswith("month,service,environment,incidents,")


def test_weights_shown_and_set(cart: Seed, podium_cli: Invoke, tmp_path: Path) -> None:
    shown = podium_cli("metrics", "weights", "--team", "checkout")
    assert "flat weights" in shown.stderr
    assert re.search(r"Mon\s+1\.00\s+1\.00", shown.stdout)
    counts = tmp_path / "counts.json"
    counts.write_text(json.dumps([0] * 12 + [100] * 156))
    answer = json.loads(podium_cli("metrics", "weights", "--team", "checkout", "--counts", str(counts),
                                   "--json").stdout)
    assert answer["source"] == "traffic"
    assert answer["weights"][0] < answer["weights"][12]
    podium_cli("metrics", "weights", "--team", "checkout", "--flat")
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    failed = podium_cli("metrics", "weights", "--team", "checkout", "--table", str(bad), expect=1)
    assert "must hold a JSON list of numbers" in str(failed.exception)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("metrics", "availability", "--since", "30d"), "give one of --service, --team or --all"),
        (("metrics", "availability", "--service", "cart", "--since", "soon"), "invalid since 'soon'"),
        (("metrics", "dora"), "give one of --team or --all"),
        (("metrics", "export", "outages", "--team", "checkout"), "unknown export 'outages'"),
        (("slo", "set", "--service", "cart", "--objective", "1"), "between 0 and 1"),
    ],
)
def test_bad_input_is_refused_with_the_reason(
    cart: Seed, podium_cli: Invoke, args: tuple[str, ...], reason: str
) -> None:
    result = podium_cli(*args, expect=1)  # in-process the error stays raised; run_cli prints and exits
    assert isinstance(result.exception, Invalid)
    assert reason in str(result.exception)


def test_the_console_script_prints_one_line_and_exits_2_on_bad_input(live_server: Any, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "PODIUM_URL": live_server.url, "PODIUM_TOKEN": live_server.admin_token}
    script = Path(sys.executable).parent / "podium"
    done = subprocess.run([str(script), "metrics", "availability", "--all", "--since", "yesterday"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: invalid since 'yesterday': use a length such as 24h")
    assert done.stderr.count("\n") == 1


def test_durations_and_percentages_read_the_way_people_say_them() -> None:
    assert [duration(s) for s in (None, 0, 45.4, 60, 2292, 7500, 86400 * 3 + 3600 * 4 + 5)] == [
        "no data", "0s", "45s", "1m 0s", "38m 12s", "2h 5m", "3d 4h",
    ]
    assert [percent(p) for p in (None, 1.0, 0.99957, 0.0)] == ["no data", "100%", "99.957%", "0.000%"]
    assert percent(0.9999996) == "99.999%"  # never rounded up to 100%
