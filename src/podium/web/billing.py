"""Billing pages: a team's month (a stacked bar chart of cost per day, and its invoice), and the platform's.

The chart is inline SVG drawn here, on the server, from the exact daily costs: the pages'
CSP allows no script or inline style, so colours are SVG presentation attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from podium.api.deps import PodiumDep
from podium.billing.invoice import Month
from podium.web.pages import PageRoute, render
from podium.web.session import PageActor

router = APIRouter(route_class=PageRoute, include_in_schema=False, default_response_class=HTMLResponse)

COLOURS = ("#0b5cad", "#e3822b", "#2da44e", "#cf222e", "#8250df", "#1b7c83", "#bf8700", "#6e7781", "#d2418c",
           "#4d2d00")
GRID, INK = "#d0d7de", "#656d76"
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 12, 28
X_LABEL_DAYS = (1, 5, 10, 15, 20, 25)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class StackedChart:
    """A stacked bar chart's shapes, ready for the template; ``empty`` when there is nothing to draw."""

    width: int
    height: int
    plot_left: float
    plot_right: float
    baseline: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    legend: list[tuple[str, str]]
    empty: bool


def money(cents: int | Decimal) -> str:
    """Cents as money: ``123456`` → ``1,234.56``; exact for integer cents."""
    value = Decimal(cents).quantize(Decimal(1))
    sign = "-" if value < 0 else ""
    whole, part = divmod(int(abs(value)), 100)
    return f"{sign}{whole:,}.{part:02d}"


def nice_step(top: Decimal, ticks: int = 4) -> Decimal:
    """A round step (1, 2 or 5 times a power of ten cents) cutting ``[0, top]`` into about ``ticks`` parts."""
    raw = top / ticks
    power = Decimal(1)
    while power * 10 <= raw:
        power *= 10
    while power > raw and power > Decimal("0.0001"):
        power /= 10
    for multiple in (1, 2, 5, 10):
        if raw <= power * multiple:
            return power * multiple
    return power * 10


def stacked_bar_chart(series: dict[tuple[str, str], list[Decimal]], month: Month, currency: str) -> StackedChart:
    """Bars per day of ``month``, one segment per (service, meter), from exact costs in currency units."""
    days = month.days
    cents = {key: [value * 100 for value in values] for key, values in series.items() if any(values)}
    totals = [sum((values[day] for values in cents.values()), Decimal(0)) for day in range(days)]
    top = max(totals, default=Decimal(0))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    slot = plot_width / days
    step = nice_step(top) if top > 0 else Decimal(1)
    ceiling = step * max(Decimal(1), (top / step).to_integral_value(rounding=ROUND_CEILING))
    scale = plot_height / float(ceiling)
    bars: list[Bar] = []
    legend: list[tuple[str, str]] = []
    stacked = [0.0] * days
    for index, ((service, meter), values) in enumerate(cents.items()):
        colour, label = COLOURS[index % len(COLOURS)], f"{service} · {meter}"
        legend.append((colour, label))
        for day, value in enumerate(values):
            if value <= 0:
                continue
            height = float(value) * scale
            stacked[day] += height
            date = datetime(month.year, month.month, day + 1, tzinfo=UTC).date().isoformat()
            bars.append(Bar(
                x=round(LEFT + day * slot + slot * 0.15, 2), y=round(baseline - stacked[day], 2),
                width=round(slot * 0.7, 2), height=round(height, 2), colour=colour,
                title=f"{date} {label}: {money(value)} {currency}",
            ))
    y_ticks = []
    tick = Decimal(0)
    while tick <= ceiling:
        y_ticks.append(Tick(x=LEFT - 6, y=round(baseline - float(tick) * scale, 2), label=money(tick)))
        tick += step
    x_ticks = [Tick(x=round(LEFT + (day - 0.5) * slot, 2), y=HEIGHT - 8, label=str(day))
               for day in (*X_LABEL_DAYS, days)]
    return StackedChart(width=WIDTH, height=HEIGHT, plot_left=LEFT, plot_right=WIDTH - RIGHT, baseline=baseline,
                        bars=bars, y_ticks=y_ticks, x_ticks=x_ticks, legend=legend, empty=not bars)


def month_param(month: str | None) -> str:
    return month or datetime.now(UTC).strftime("%Y-%m")


def line_rows(document: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for line in document["lines"]:
        detail = ":".join(part for part in (line["process_type"], line["size"]) if part)
        quantity = line["quantity"]
        shown = f"{quantity:,.0f}" if float(quantity).is_integer() else f"{quantity:,.3f}"
        rows.append({
            "where": "/".join(part for part in (line["service"], line["env"]) if part) or "—",
            "meter": f"{line['meter']} ({detail})" if detail else line["meter"],
            "quantity": f"{shown} {line['unit']}",
            "amount": money(line["amount_cents"]),
        })
    return rows


@router.get("/teams/{name}/billing")
def team_billing(
    request: Request, name: str, podium: PodiumDep, actor: PageActor, month: str | None = None
) -> HTMLResponse:
    """A team's month: cost per day by service and meter, and the invoice (the team itself or the platform team)."""
    chosen = month_param(month)
    document = podium.billing.invoice(actor, name, chosen)
    period = Month.parse(document["month"])
    chart = stacked_bar_chart(podium.billing.daily(actor, name, chosen), period, document["currency"])
    context = {
        "page": "team", "team": name, "month": document["month"], "invoice": document, "chart": chart,
        "lines": line_rows(document), "money": money,
    }
    return render(request, "billing.html", context)


@router.get("/billing/platform")
def platform_billing(request: Request, podium: PodiumDep, actor: PageActor, month: str | None = None) -> HTMLResponse:
    """Every team's bill of a month and its use of each platform service (platform team only)."""
    view = podium.billing.platform(actor, month_param(month))
    teams = [document["team"] for document in view.invoices]
    context = {
        "page": "platform", "month": str(view.month), "view": view, "money": money, "teams": teams,
    }
    return render(request, "billing.html", context)
