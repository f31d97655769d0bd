"""Billing commands: a team's usage and invoice of a month, and the price sheet.

Each command makes one API call (two when it must first ask which team the token is)
and renders the answer; amounts come from the server in cents and are shown as money.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.cli.common import JsonFlag, connect, seg
from podium.cli.output import print_fields, print_json, print_table
from podium.errors import Invalid

TeamOpt = Annotated[str | None, typer.Option("--team", "-t", help="The team (default: the token's own).")]
MonthOpt = Annotated[str | None, typer.Option("--month", "-m", help="The month, YYYY-MM (default: this month).")]

billing_app = typer.Typer(help="What each team's use of the platform costs: usage, invoices, prices.",
                          no_args_is_help=True)


class InvoiceFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def money(cents: int, currency: str = "") -> str:
    """``1234`` → ``12.34 USD``; exact, from integer cents."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d}" + (f" {currency}" if currency else "")


def quantity(value: float, unit: str) -> str:
    shown = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"
    return f"{shown} {unit}"


def month_of(month: str | None) -> str:
    return month if month is not None else datetime.now(UTC).strftime("%Y-%m")


def where(row: dict[str, Any]) -> str:
    """``cart/staging``, ``cart``, or ``-`` for usage that named no service."""
    return "/".join(part for part in (row["service"], row["env"]) if part) or "-"


def what(row: dict[str, Any]) -> str:
    """The meter, with the process type and size for process-seconds."""
    detail = ":".join(part for part in (row["process_type"], row["size"]) if part)
    return f"{row['meter']} ({detail})" if detail else row["meter"]


@billing_app.command("usage")
def usage(team: TeamOpt = None, month: MonthOpt = None, as_json: JsonFlag = False) -> None:
    """A team's usage in a month, per service and meter."""
    params = {"month": month_of(month), **({"team": team} if team else {})}
    with connect() as api:
        answer = api.get("/api/v1/billing/usage", params=params)
    if as_json:
        print_json(answer)
        return
    typer.echo(f"usage of team {answer['team']} in {answer['month']}", err=True)
    print_table(
        ["service", "meter", "quantity"],
        [[where(row), what(row), quantity(row["quantity"], row["unit"])] for row in answer["usage"]],
        empty="no usage recorded in that month",
    )


@billing_app.command("invoice")
def invoice(
    team: TeamOpt = None, month: MonthOpt = None,
    format: Annotated[InvoiceFormat, typer.Option("--format", "-f", help="table, json or csv.")] = InvoiceFormat.TABLE,
) -> None:
    """A team's invoice of a month: a line per service and meter, its share of the platform's cost, the total."""
    with connect() as api:
        name = team or api.get("/api/v1/whoami")["team"]
        path = f"/api/v1/billing/invoices/{seg(name)}/{seg(month_of(month))}"
        if format is InvoiceFormat.CSV:
            sys.stdout.write(api.get(path, params={"format": "csv"}))
            return
        answer = api.get(path)
    if format is InvoiceFormat.JSON:
        print_json(answer)
        return
    currency = answer["currency"]
    print_table(
        ["service", "meter", "quantity", "amount"],
        [[where(line), what(line), quantity(line["quantity"], line["unit"]), money(line["amount_cents"])]
         for line in answer["lines"]],
        empty="no usage in that month",
    )
    print_fields([
        ("team", answer["team"]),
        ("month", answer["month"] + ("" if answer["final"] else " (open: may still change)")),
        ("usage", money(answer["usage_cents"], currency)),
        ("platform share", f"{money(answer['shared_cents'], currency)} of {money(answer['platform_cents'], currency)}"),
        ("how it was shared", answer.get("shared_explanation") or "-"),
        ("total", money(answer["total_cents"], currency)),
        ("price sheet", answer["price_sheet_version"]),
    ])


@billing_app.command("prices")
def prices(
    set_from: Annotated[Path | None, typer.Option("--set", help="Replace the price sheet with this TOML file "
                                                              "(platform team only).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the price sheet in force, or replace it (--set FILE)."""
    with connect() as api:
        if set_from is None:
            answer = api.get("/api/v1/billing/prices")
        else:
            try:
                text = set_from.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise Invalid(f"cannot read {set_from}: {exc}") from None
            answer = api.request("PUT", "/api/v1/billing/prices", content=text.encode(),
                                 headers={"Content-Type": "application/toml"})
    if as_json:
        print_json(answer)
        return
    if set_from is not None:
        typer.echo(f"price sheet {answer['version']} is now in force", err=True)
    sys.stdout.write(answer["text"] if answer["text"].endswith("\n") else answer["text"] + "\n")
