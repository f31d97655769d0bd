"""Billing routes: usage and invoices per team and month, the price sheet; and the request meter.

The platform team reads every team's billing; any other team reads its own (403
otherwise). Only the platform team changes the price sheet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from podium.api.deps import ActorDep, PodiumDep
from podium.billing.invoice import invoice_csv
from podium.billing.meters import RequestCounter
from podium.billing.prices import PriceSheet
from podium.catalog.auth import Actor
from podium.experiments.tokens import AppCaller
from podium.store.db import utcnow

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

MONTH_HELP = "The month, YYYY-MM (UTC); not one still to come."
TOML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The whole price sheet, as TOML (see docs/billing.md).",
        "content": {"application/toml": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}},
    }
}
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, "text/csv": {}}, "description": "The invoice, as JSON or CSV."}
}


class UsageRow(BaseModel):
    service: str = Field(description="The service, empty for requests that named none.")
    env: str
    meter: str = Field(description="process_seconds, storage_byte_hours, api_requests, log_bytes, build_seconds.")
    process_type: str = Field(description="For process_seconds: the process type (web, worker…).")
    size: str = Field(description="For process_seconds: the process size.")
    quantity: int | float
    unit: str


class UsageOut(BaseModel):
    team: str
    month: str
    start: datetime
    end: datetime = Field(description="The first instant after the month.")
    usage: list[UsageRow]


class InvoiceLine(BaseModel):
    meter: str
    service: str
    env: str
    process_type: str
    size: str
    quantity: int | float
    unit: str
    amount_cents: int = Field(description="Exact cost of the line, rounded once to cents, half up.")


class InvoiceOut(BaseModel):
    team: str
    month: str
    currency: str
    price_sheet_version: str = Field(description="The version of the price sheet the invoice was computed with.")
    lines: list[InvoiceLine]
    usage_cents: int = Field(description="The sum of the lines' amount_cents.")
    shared_cents: int = Field(description="The team's share of the platform's fixed cost (largest remainder).")
    platform_cents: int = Field(description="The platform's fixed cost for the month, shared by all teams.")
    total_cents: int = Field(description="usage_cents + shared_cents.")
    shared_basis: list[dict[str, Any]] = Field(
        [], description="How shared_cents was computed, per price period of the month: from, until, rule "
        "(usage | even | weights), description, platform_cents, team_weight, total_weight, share, exact_cents.")
    shared_explanation: str | None = Field(None, description="The same in one sentence.")
    final: bool = Field(description="True once the month is closed: the invoice is frozen and never changes.")
    computed_at: datetime


class PricesOut(BaseModel):
    currency: str
    version: str
    prices: list[dict[str, Any]] = Field(description="The price periods; prices as decimal strings.")
    text: str = Field(description="The sheet's TOML as given.")


def prices_out(sheet: PriceSheet) -> PricesOut:
    return PricesOut(**sheet.as_dict(), text=sheet.text)


@router.get("/usage")
def usage(
    podium: PodiumDep,
    actor: ActorDep,
    team: str | None = Query(None, description="The team (default: your own)."),
    month: str | None = Query(None, description=MONTH_HELP + " Default: this month."),
) -> UsageOut:
    """A team's usage in a month, per service, environment and meter."""
    now = utcnow()
    answer = podium.billing.usage(actor, team or actor.team, month or now.strftime("%Y-%m"), now)
    return UsageOut(**answer)


@router.get("/invoices/{team}/{month}", response_model=None, responses=CSV_RESPONSE)
def invoice(
    team: str,
    month: str,
    podium: PodiumDep,
    actor: ActorDep,
    format: Literal["json", "csv"] = Query("json", description="json or csv."),
) -> InvoiceOut | Response:
    """A team's invoice of a month: lines, the shared part of the platform's cost, and the total."""
    document = podium.billing.invoice(actor, team, month)
    if format == "csv":
        filename = f"invoice-{document['team']}-{document['month']}.csv"
        return Response(invoice_csv(document), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return InvoiceOut(**document)


@router.get("/prices")
def prices(podium: PodiumDep, actor: ActorDep) -> PricesOut:
    """The price sheet in force."""
    return prices_out(podium.billing.price_sheet())


@router.put("/prices", openapi_extra=TOML_BODY)
async def set_prices(request: Request, podium: PodiumDep, actor: ActorDep) -> PricesOut:
    """Replace the price sheet (platform team only); 422 and nothing changed when it does not parse."""
    podium.billing.set_price_sheet(actor, (await request.body()).decode("utf-8", "replace"))
    return prices_out(podium.billing.price_sheet())


class RequestMeter:
    """ASGI middleware: count each API request of an authenticated team, per service, environment and hour.

    A deployed app's requests (its app token: definitions, evaluate, events) count for the
    team owning its service, in its service environment.
    """

    def __init__(self, app: ASGIApp, counter: RequestCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        status = 500
        scope.setdefault("state", {})  # where the auth dependency leaves the actor, shared with the route

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state = scope.get("state", {})
            actor, app = state.get("actor"), state.get("app_caller")
            if isinstance(actor, Actor):
                # A path that names a service counts towards it, unless the request failed (a typo).
                params = scope.get("path_params", {}) if status < 400 else {}
                self.counter.count(actor.team, str(params.get("service", "")), str(params.get("env", "")), utcnow())
            elif isinstance(app, AppCaller) and app.team:
                where = (app.service, app.env) if status < 400 else ("", "")
                self.counter.count(app.team, *where, utcnow())


def install(app: FastAPI) -> None:
    """The billing routes, and the middleware that counts API requests for the meter."""
    app.include_router(router)
    app.add_middleware(RequestMeter, counter=app.state.podium.billing.requests)
