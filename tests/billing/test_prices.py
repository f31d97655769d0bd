"""The price sheet: exact decimals, dated periods, clear errors; read at start and replaced through the API."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.billing.support import FLAT, at, sheet

from podium.billing.models import Meter
from podium.billing.prices import default_sheet_text, parse_sheet
from podium.config import Settings
from podium.core import Podium
from podium.errors import Invalid

LATER = """
from = 2026-06-01
[prices.meters]
api_requests = 0.02
"""


def test_the_shipped_sheet_prices_every_meter() -> None:
    shipped = parse_sheet(default_sheet_text())
    period = shipped.period_at(at("2026-11-28 00:00:00"))
    assert period is not None
    assert {meter.value for meter in Meter} <= set(period.meters)
    assert period.unit_price("process_seconds", "standard") == Decimal("0.0000125")
    assert shipped.currency == "USD"
    assert len(shipped.version) == 12


def test_prices_are_read_as_exact_decimals_and_later_periods_inherit() -> None:
    prices = parse_sheet(sheet(FLAT.replace("api_requests = 0.01", "api_requests = 0.1"), LATER))
    first, second = prices.periods
    assert first.unit_price("api_requests") == Decimal("0.1")  # never 0.1000000000000000055...
    assert second.unit_price("api_requests") == Decimal("0.02")
    assert second.unit_price("log_bytes") == first.unit_price("log_bytes") == Decimal("0.000001")
    assert second.platform_monthly == Decimal("100.00")
    assert prices.period_at(at("2026-05-31 23:59:59")) is first
    assert prices.period_at(at("2026-06-01 00:00:00")) is second
    assert prices.period_at(at("2019-12-31 23:59:59")) is None
    # Sizes: a size the sheet does not name costs what "standard" does.
    assert first.unit_price("process_seconds", "performance") == Decimal("0.004")
    assert first.unit_price("process_seconds", "Performance") == Decimal("0.004")
    assert first.unit_price("process_seconds", "huge") == Decimal("0.001")
    assert prices.as_dict()["prices"][1]["meters"]["api_requests"] == "0.02"


BAD_SHEETS = {
    "not TOML": ("currency = \n", "not valid TOML"),
    "no periods": ('currency = "USD"\n', "at least one [[prices]]"),
    "a date and time": (sheet(FLAT.replace("2020-01-01", "2020-01-01T00:00:00Z")), "must be a date"),
    "periods out of order": (sheet(FLAT, LATER.replace("2026-06-01", "2019-06-01")), "must come after"),
    "an unknown meter": (sheet(FLAT + "gpu_seconds = 1\n"), "unknown meter 'gpu_seconds'"),
    "a negative price": (sheet(FLAT.replace("log_bytes = 0.000001", "log_bytes = -1")), "at least 0"),
    "a price as a word": (sheet(FLAT.replace("log_bytes = 0.000001", 'log_bytes = "cheap"')), "must be a number"),
    "a price as a boolean": (sheet(FLAT.replace("log_bytes = 0.000001", "log_bytes = true")), "must be a number"),
    "not a finite price": (sheet(FLAT.replace("log_bytes = 0.000001", "log_bytes = inf")), "at least 0"),
    "a meter missing": (sheet(FLAT.replace("build_seconds = 0.002\n", "")), "build_seconds is missing"),
    "no standard size": (sheet(FLAT.replace("standard = 0.001, ", "")), "must price the 'standard' size"),
    "no fixed cost": (sheet(FLAT.replace("platform_monthly = 100.00\n", "")), "must set platform_monthly"),
    "an unknown key": ("owner = 'me'\n" + sheet(FLAT), "unknown key 'owner'"),
    "a bad currency": (sheet(FLAT, currency="dollars"), "three-letter code"),
}


@pytest.mark.parametrize(("text", "reason"), BAD_SHEETS.values(), ids=BAD_SHEETS.keys())
def test_a_bad_sheet_is_refused_saying_why(text: str, reason: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_sheet(text)
    assert reason in refused.value.detail


def test_a_sheet_file_that_does_not_parse_stops_the_start_with_its_name(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "prices.toml"
    bad.write_text("[[prices]]\nfrom = yesterday\n")
    core = Podium(Settings(data_dir=data_dir, billing_price_sheet=bad))
    try:
        with pytest.raises(Invalid, match=r"prices\.toml: price sheet is not valid TOML.*line 2"):
            core.start()
        missing = Podium(Settings(data_dir=data_dir, billing_price_sheet=tmp_path / "nope.toml"))
        with pytest.raises(Invalid, match="cannot read the price sheet"):
            missing.start()
        missing.close()
    finally:
        core.close()


def test_the_file_read_at_start_is_recorded_once_and_a_changed_file_wins(core: Podium, sheet_file: Path) -> None:
    first = core.billing.price_sheet()
    assert first.text == sheet_file.read_text()
    core.billing.start()  # a restart with the same file: nothing new
    assert core.billing.price_sheet().version == first.version
    sheet_file.write_text(sheet(FLAT, LATER))
    core.billing.start()
    assert core.billing.price_sheet().version != first.version
    assert core.billing.price_sheet(first.version).text == first.text  # old versions stay readable


def test_only_the_platform_team_changes_prices_and_a_bad_sheet_changes_nothing(
    core: Podium, admin: TestClient, teams: dict[str, TestClient], sheet_file: Path
) -> None:
    before = admin.get("/api/v1/billing/prices").json()
    assert before["text"] == sheet_file.read_text()
    assert before["prices"][0]["meters"]["process_seconds"] == {"standard": "0.001", "performance": "0.004"}
    refused = teams["checkout"].put("/api/v1/billing/prices", content=sheet(FLAT, LATER))
    assert refused.status_code == 403
    bad = admin.put("/api/v1/billing/prices", content=b"[[prices]]\nfrom = 2026-13-01\n",
                    headers={"Content-Type": "application/toml"})
    assert bad.status_code == 422
    assert "not valid TOML" in bad.json()["detail"]
    assert admin.get("/api/v1/billing/prices").json() == before
    changed = admin.put("/api/v1/billing/prices", content=sheet(FLAT, LATER))
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] != before["version"]
    assert teams["checkout"].get("/api/v1/billing/prices").json()["version"] == changed.json()["version"]
    events = admin.get("/api/v1/audit", params={"team": "platform"}).json()
    assert any(event["action"] == "billing.prices.set" and event["after"]["source"] == "upload" for event in events)
    # Restarting with the unchanged file keeps the uploaded sheet in force.
    core.billing.start()
    assert admin.get("/api/v1/billing/prices").json()["version"] == changed.json()["version"]
