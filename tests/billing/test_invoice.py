"""Invoices as a pure function of usage records and a price sheet: proration, rounding, sharing."""

from __future__ import annotations

import csv
import io
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.billing.support import FLAT, sheet, usage

from podium.billing.invoice import Month, bill_month, invoice_csv, largest_remainder, platform_cost, to_cents
from podium.billing.models import Meter
from podium.billing.prices import parse_sheet
from podium.errors import Invalid

JANUARY, FEBRUARY, MARCH = Month(2026, 1), Month(2026, 2), Month(2026, 3)
ROUND = parse_sheet(sheet(FLAT))


def test_a_month_reads_as_yyyy_mm_and_knows_its_bounds() -> None:
    assert Month.parse("2026-02") == FEBRUARY
    assert (FEBRUARY.days, str(FEBRUARY.end)) == (28, "2026-03-01 00:00:00+00:00")
    assert Month(2026, 12).next() == Month(2027, 1)
    for text in ("2026-13", "2026-00", "2026-1", "26-01", "march", "2026-01-01", ""):
        with pytest.raises(Invalid, match="YYYY-MM"):
            Month.parse(text)


def test_a_record_across_a_month_boundary_is_prorated_to_the_second() -> None:
    # Two processes for the minute around midnight: 120 process-seconds, half in each month.
    record = usage("checkout", 120, "2026-01-31 23:59:30", "2026-02-01 00:00:30")
    january = bill_month([record], ROUND, JANUARY).invoices["checkout"]
    february = bill_month([record], ROUND, FEBRUARY).invoices["checkout"]
    assert [line.as_dict()["quantity"] for line in january.lines] == [60]
    assert [line.as_dict()["quantity"] for line in february.lines] == [60]
    assert january.lines[0].amount_cents == february.lines[0].amount_cents == 6  # 60 s at 0.001
    one_second_more = usage("checkout", 121, "2026-01-31 23:59:30", "2026-02-01 00:00:30.5")
    assert bill_month([one_second_more], ROUND, JANUARY).invoices["checkout"].lines[0].quantity == Decimal(60)


def test_amounts_are_exact_decimals_where_floats_round_wrong() -> None:
    prices = parse_sheet(sheet(FLAT.replace("standard = 0.001", "standard = 1.005")))
    record = usage("checkout", 1, "2026-01-10 00:00:00", "2026-01-10 00:00:01")
    line = bill_month([record], prices, JANUARY).invoices["checkout"].lines[0]
    assert line.cost == Decimal("1.005")
    assert line.amount_cents == 101  # half up, from the exact amount
    assert round(1 * 1.005 * 100) == int(1.005 * 100 + 0.5) == 100  # what floats would have charged
    # Ten lines of ten cents are a dollar, not 0.9999999999999999.
    tenths = [usage("checkout", 10, f"2026-01-{day:02d} 00:00:00", f"2026-01-{day:02d} 00:00:10",
                    meter=Meter.API_REQUESTS, service=f"svc-{day}") for day in range(1, 11)]
    bill = bill_month(tenths, ROUND, JANUARY).invoices["checkout"]
    assert [line.cost for line in bill.lines] == [Decimal("0.10")] * 10
    assert bill.usage_cents == 100
    assert sum(0.1 for _ in range(10)) != 1.0
    assert to_cents(Decimal("0.005")) == 1
    assert to_cents(Decimal("0.0049999")) == 0


def test_the_platform_cost_is_shared_in_proportion_and_adds_up_to_the_cent() -> None:
    records = [usage(team, 1000, "2026-01-05 00:00:00", "2026-01-05 00:16:40") for team in ("a", "b", "c")]
    bill = bill_month(records, ROUND, JANUARY, teams=["a", "b", "c", "idle"])
    shares = {team: invoice.shared_cents for team, invoice in bill.invoices.items()}
    assert shares == {"a": 3334, "b": 3333, "c": 3333, "idle": 0}  # 100.00 in thirds; the odd cent to "a"
    assert sum(shares.values()) == bill.platform_cents == 10000
    assert bill.unallocated_cents == 0
    for invoice in bill.invoices.values():
        assert invoice.total_cents == sum(line.amount_cents for line in invoice.lines) + invoice.shared_cents


def with_rule(table: str) -> str:
    """The round sheet's first period with a ``shared_cost`` line."""
    return FLAT.replace("platform_monthly = 100.00", "platform_monthly = 100.00\n" + table)


def test_the_shared_cost_rule_is_the_price_sheets_choice_and_each_team_sees_its_computation() -> None:
    # One team used 4 cents of the platform; two others used nothing.
    records = [usage("tiny", 40, "2026-01-05 00:00:00", "2026-01-05 00:00:40")]
    teams = ["idle", "other", "tiny"]
    by_usage = bill_month(records, ROUND, JANUARY, teams=teams).invoices
    assert by_usage["tiny"].total_cents == 4 + 10000  # alone in using it, it pays all of it: the rule says so
    assert by_usage["tiny"].shared_basis[0].share == 1

    even = parse_sheet(sheet(with_rule('shared_cost = { rule = "even" }')))
    invoices = bill_month(records, even, JANUARY, teams=teams).invoices
    shares = {team: invoice.shared_cents for team, invoice in invoices.items()}
    assert shares == {"idle": 3334, "other": 3333, "tiny": 3333}  # thirds; the odd cent by name
    tiny = bill_month(records, even, JANUARY, teams=teams).invoices["tiny"].as_dict()
    assert tiny["total_cents"] == 4 + 3333
    (basis,) = tiny["shared_basis"]
    weights = (basis["rule"], basis["team_weight"], basis["total_weight"], basis["platform_cents"])
    assert weights == ("even", 1, 3, 10000)
    assert basis["share"] == pytest.approx(1 / 3)
    explained = tiny["shared_explanation"]
    assert "10000 cents shared evenly across every team; this team: 1 of 3 teams = 33.3333%" in explained
    assert tiny["shared_explanation"].endswith("rounded to 3333 cents (largest remainder)")

    weighted = parse_sheet(sheet(with_rule('shared_cost = { rule = "weights", weights = { other = 3, tiny = 1 } }')))
    bill = bill_month(records, weighted, JANUARY, teams=teams).invoices
    assert {team: invoice.shared_cents for team, invoice in bill.items()} == {"idle": 0, "other": 7500, "tiny": 2500}


def test_a_rule_that_changes_mid_month_shares_each_part_by_its_own_rule() -> None:
    changed = parse_sheet(sheet(FLAT, 'from = 2026-01-17\nshared_cost = { rule = "even" }'))
    records = [usage("a", 100, "2026-01-05 00:00:00", "2026-01-05 00:01:40")]  # only "a" used anything
    bill = bill_month(records, changed, JANUARY, teams=["a", "b"])
    # 16 of 31 days by usage (all to "a"), then 15 days evenly.
    first, second = Decimal(10000) * 16 / 31, Decimal(10000) * 15 / 31
    assert bill.invoices["b"].shared_cents == round(second / 2)
    assert bill.invoices["a"].shared_cents + bill.invoices["b"].shared_cents == bill.platform_cents == 10000
    assert [part.rule for part in bill.invoices["a"].shared_basis] == ["usage", "even"]
    assert first + second == 10000


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('shared_cost = { rule = "by-vibes" }', "rule must be one of usage, even, weights"),
        ('shared_cost = { rule = "weights" }', "must name at least one team"),
        ('shared_cost = { rule = "even", weights = { a = 1 } }', 'only for rule = "weights"'),
        ('shared_cost = { rule = "weights", weights = { Bad_Team = 1 } }', "is not a team name"),
        ('shared_cost = { rule = "weights", weights = { a = 0 } }', "must not all be 0"),
        ('shared_cost = "even"', "must be a table"),
    ],
)
def test_a_bad_shared_cost_rule_is_refused_with_the_reason(table: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        parse_sheet(sheet(with_rule(table)))


def test_without_usage_nobody_pays_the_platform_cost() -> None:
    bill = bill_month([], ROUND, JANUARY, teams=["a", "b"])
    assert [invoice.total_cents for invoice in bill.invoices.values()] == [0, 0]
    assert bill.unallocated_cents == bill.platform_cents == 10000


@settings(max_examples=100, deadline=None)  # a loaded machine must not fail it on time
@given(total=st.integers(0, 10**9), weights=st.dictionaries(st.text("abcdef", min_size=1, max_size=4),
                                                            st.integers(0, 10**7), min_size=1, max_size=12))
def test_largest_remainder_always_adds_up_and_stays_within_a_cent(total: int, weights: dict[str, int]) -> None:
    shares = largest_remainder(total, weights)
    weight = sum(weights.values())
    if weight == 0:
        assert set(shares.values()) == {0}
        return
    assert sum(shares.values()) == total
    for name, share in shares.items():
        exact = Decimal(total) * weights[name] / weight
        assert abs(share - exact) < 1


def test_a_price_change_mid_month_applies_from_its_date() -> None:
    prices = parse_sheet(sheet(FLAT, """
from = 2026-03-16
platform_monthly = 200.00
[prices.meters]
process_seconds = { standard = 0.002 }
"""))
    days = [usage("checkout", 1000, f"2026-03-{day:02d} 08:00:00", f"2026-03-{day:02d} 08:16:40")
            for day in range(1, 32)]
    # A record of a whole day across the change: half at each price.
    across = usage("checkout", 86400, "2026-03-15 12:00:00", "2026-03-16 12:00:00", service="ledger")
    bill = bill_month([*days, across], prices, MARCH)
    cart, ledger = bill.invoices["checkout"].lines
    assert cart.cost == 15 * Decimal("1.000") + 16 * Decimal("2.000")
    assert ledger.cost == Decimal("43.2") + Decimal("86.4")
    # The fixed cost too: 15 of 31 days at 100, 16 at 200.
    assert platform_cost(prices, MARCH) == (Decimal(100) * 15 + Decimal(200) * 16) / 31
    assert bill.platform_cents == 15161
    # The day before the change, and February, know nothing of it.
    assert bill_month(days[:15], prices, MARCH).invoices["checkout"].lines[0].cost == 15
    assert bill_month([], prices, FEBRUARY).platform_cents == 10000


def test_usage_before_the_first_price_is_free() -> None:
    prices = parse_sheet(sheet(FLAT.replace("2020-01-01", "2026-01-15")))
    record = usage("checkout", 1000, "2026-01-10 00:00:00", "2026-01-10 00:16:40")
    invoice = bill_month([record], prices, JANUARY).invoices["checkout"]
    assert invoice.lines[0].amount_cents == 0
    assert invoice.platform_cents == to_cents(Decimal(100) * 17 / 31)


def test_the_same_records_give_the_same_cents_in_any_order() -> None:
    records = [
        usage(team, quantity, f"2026-01-{day:02d} 00:00:00", f"2026-01-{day:02d} 03:00:00", meter=meter,
              service=service)
        for day, (team, service) in enumerate([("a", "x"), ("b", "y"), ("a", "z")] * 9, start=1)
        for meter, quantity in ((Meter.PROCESS_SECONDS, 10_801), (Meter.STORAGE_BYTE_HOURS, "123456789.123456789"),
                                (Meter.LOG_BYTES, 777_777))
    ]
    first = {team: invoice.as_dict() for team, invoice in bill_month(records, ROUND, JANUARY).invoices.items()}
    shuffled = list(records)
    random.Random(7).shuffle(shuffled)  # noqa: S311  (a fixed order to compare, not a secret)
    again = {team: invoice.as_dict() for team, invoice in bill_month(shuffled, ROUND, JANUARY).invoices.items()}
    assert first == again
    assert sum(doc["total_cents"] for doc in first.values()) == sum(
        sum(line["amount_cents"] for line in doc["lines"]) for doc in first.values()
    ) + 10000


def test_an_invoice_as_csv_has_a_row_per_line_then_the_shared_part_and_the_total() -> None:
    records = [usage("checkout", 1000, "2026-01-05 00:00:00", "2026-01-05 00:16:40"),
               usage("checkout", 5, "2026-01-05 10:00:00", "2026-01-05 11:00:00", meter=Meter.API_REQUESTS,
                     env="staging")]
    document = bill_month(records, ROUND, JANUARY).invoices["checkout"].as_dict()
    rows = list(csv.reader(io.StringIO(invoice_csv(document))))
    assert rows[0] == ["meter", "service", "env", "process_type", "size", "quantity", "unit", "amount_cents"]
    assert rows[1:3] == [
        ["process_seconds", "cart", "production", "web", "standard", "1000", "process-second", "100"],
        ["api_requests", "cart", "staging", "", "", "5", "request", "5"],
    ]
    assert rows[3][0] == "shared"
    assert rows[4][0] == "total"
    assert int(rows[4][-1]) == 105 + int(rows[3][-1]) == document["total_cents"]
