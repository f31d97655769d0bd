"""The billing API: who reads what, bad months, CSV, and invoices frozen once their month is closed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from tests.billing.support import FLAT, sheet, store_usage, usage

from podium.billing.models import Meter
from podium.core import Podium

JANUARY_USE = [
    usage("checkout", 3600, "2026-01-05 10:00:00", "2026-01-05 11:00:00"),  # 3.60
    usage("checkout", 100, "2026-01-06 10:00:00", "2026-01-06 11:00:00", meter=Meter.API_REQUESTS),  # 1.00
    usage("search", 7200, "2026-01-07 10:00:00", "2026-01-07 11:00:00", service="search-api"),  # 7.20
]


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def test_a_team_reads_only_its_own_billing_and_the_platform_team_reads_all(
    core: Podium, admin: TestClient, teams: dict[str, TestClient]
) -> None:
    store_usage(core, *JANUARY_USE)
    checkout, search = teams["checkout"], teams["search"]
    own = checkout.get("/api/v1/billing/usage", params={"team": "checkout", "month": "2026-01"})
    assert own.status_code == 200
    assert [(row["service"], row["meter"], row["quantity"]) for row in own.json()["usage"]] == [
        ("cart", "api_requests", 100), ("cart", "process_seconds", 3600)
    ]
    assert checkout.get("/api/v1/billing/usage", params={"month": "2026-01"}).json() == own.json()
    for path, params in (("/api/v1/billing/usage", {"team": "checkout", "month": "2026-01"}),
                         ("/api/v1/billing/invoices/checkout/2026-01", {}),
                         ("/api/v1/billing/invoices/checkout/2026-01", {"format": "csv"})):
        refused = search.get(path, params=params)
        assert refused.status_code == 403, refused.text
        assert "may not read the billing of team 'checkout'" in refused.json()["detail"]
        assert admin.get(path, params=params).status_code == 200
    assert admin.get("/api/v1/billing/invoices/nobody/2026-01").status_code == 404
    assert checkout.get("/api/v1/billing/invoices/nobody/2026-01").status_code == 403
    assert TestClient(checkout.app).get("/api/v1/billing/invoices/checkout/2026-01").status_code == 401


def test_a_month_to_come_or_not_a_month_is_refused(admin: TestClient, teams: dict[str, TestClient]) -> None:
    now = datetime.now(UTC)
    next_month = f"{now.year + (now.month == 12)}-{now.month % 12 + 1:02d}"
    for month, reason in ((next_month, "in the future"), ("2099-01", "in the future"), ("2026-1", "YYYY-MM"),
                          ("January", "YYYY-MM"), ("2026-01-01", "YYYY-MM")):
        answer = admin.get(f"/api/v1/billing/invoices/checkout/{month}")
        assert answer.status_code == 422, (month, answer.text)
        assert reason in answer.json()["detail"]
        assert admin.get("/api/v1/billing/usage", params={"team": "checkout", "month": month}).status_code == 422
    assert admin.get(f"/api/v1/billing/invoices/checkout/{this_month()}").json()["final"] is False


def test_an_invoice_adds_up_and_reads_the_same_as_csv(core: Podium, admin: TestClient,
                                                        teams: dict[str, TestClient]) -> None:
    store_usage(core, *JANUARY_USE)
    invoice = teams["checkout"].get("/api/v1/billing/invoices/checkout/2026-01").json()
    assert (invoice["team"], invoice["month"], invoice["currency"]) == ("checkout", "2026-01", "USD")
    assert [(line["meter"], line["service"], line["env"], line["quantity"], line["unit"], line["amount_cents"])
            for line in invoice["lines"]] == [
        ("api_requests", "cart", "production", 100, "request", 100),
        ("process_seconds", "cart", "production", 3600, "process-second", 360),
    ]
    # 100.00 of fixed cost shared 4.60 : 7.20 → 3898.3 and 6101.7 cents: the odd cent to the larger fraction.
    assert invoice["shared_cents"] == 3898
    assert invoice["total_cents"] == 460 + 3898 == sum(line["amount_cents"] for line in invoice["lines"]) + 3898
    search = admin.get("/api/v1/billing/invoices/search/2026-01").json()
    assert invoice["shared_cents"] + search["shared_cents"] == invoice["platform_cents"] == 10000
    answer = teams["checkout"].get("/api/v1/billing/invoices/checkout/2026-01", params={"format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [row["amount_cents"] for row in rows] == ["100", "360", "3898", str(invoice["total_cents"])]
    assert rows[-1]["meter"] == "total"


def test_an_open_month_is_computed_the_same_each_time(core: Podium, admin: TestClient,
                                                       teams: dict[str, TestClient]) -> None:
    month = this_month()
    store_usage(core, usage("checkout", "12345.678", f"{month}-01 00:00:00", f"{month}-01 01:00:00",
                            meter=Meter.STORAGE_BYTE_HOURS),
                usage("search", 999, f"{month}-01 00:00:00", f"{month}-01 01:00:00", service="search-api"))
    first, second = (admin.get(f"/api/v1/billing/invoices/checkout/{month}").json() for _ in range(2))
    assert first["final"] is False
    assert {**first, "computed_at": None} == {**second, "computed_at": None}


def test_a_closed_month_is_frozen_against_new_prices_and_late_usage(
    core: Podium, admin: TestClient, teams: dict[str, TestClient]
) -> None:
    store_usage(core, *JANUARY_USE)
    frozen = teams["checkout"].get("/api/v1/billing/invoices/checkout/2026-01").json()
    assert frozen["final"] is True
    doubled = sheet(FLAT.replace("standard = 0.001", "standard = 0.002").replace("2020-01-01", "2019-01-01"))
    assert admin.put("/api/v1/billing/prices", content=doubled).status_code == 200
    store_usage(core, usage("checkout", 3600, "2026-01-20 10:00:00", "2026-01-20 11:00:00"))
    again = teams["checkout"].get("/api/v1/billing/invoices/checkout/2026-01").json()
    assert again == frozen
    assert again["price_sheet_version"] != admin.get("/api/v1/billing/prices").json()["version"]
    # Every team's invoice of the month was frozen at once, a team made later has an empty one,
    # and February (closed later) is computed with the new prices.
    assert admin.get("/api/v1/billing/invoices/search/2026-01").json()["price_sheet_version"] == \
        frozen["price_sheet_version"]
    admin.post("/api/v1/teams", json={"name": "late"}).raise_for_status()
    late = admin.get("/api/v1/billing/invoices/late/2026-01").json()
    assert (late["lines"], late["total_cents"], late["final"]) == ([], 0, True)
    store_usage(core, usage("checkout", 3600, "2026-02-02 10:00:00", "2026-02-02 11:00:00"))
    february = admin.get("/api/v1/billing/invoices/checkout/2026-02").json()
    assert february["lines"][0]["amount_cents"] == 720
    events = admin.get("/api/v1/audit").json()
    assert [event["target"] for event in events if event["action"] == "billing.month.close"] == ["2026-02", "2026-01"]
