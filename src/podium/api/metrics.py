"""Metrics routes: availability, DORA, SLOs, hour-of-week weights, CSV exports.

Every authenticated team may read every metric; setting an SLO is for the service's
owner, setting weights for the team's members (the platform team may do both).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from podium.api.deps import ActorDep, PodiumDep
from podium.errors import Invalid
from podium.health.models import Slo
from podium.metrics.service import PRODUCTION, Scope, WeightsView

router = APIRouter(prefix="/api/v1", tags=["metrics"])

SINCE_HELP = "How far back: 24h, 30d, 12w, or an ISO date such as 2024-01-31."
ENV_HELP = "staging or production."
CSV_CELL_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as the start of a formula


class AvailabilityNumbers(BaseModel):
    """Availability numbers of a period; null where there is no data (no incidents: no MTTR)."""

    period_start: datetime
    period_end: datetime
    incidents: int = Field(description="Incidents triggered in the period.")
    incidents_caused_by_deploys: int
    mttr_seconds: float | None = Field(description="Mean resolved - triggered, incidents triggered in the period.")
    mttr_median_seconds: float | None
    mtta_seconds: float | None = Field(description="Mean acknowledged - triggered, acknowledged incidents.")
    mtbf_seconds: float | None = Field(description="Mean observed uptime between consecutive outages.")
    availability: float | None = Field(description="1 - downtime / observed time (maintenance excluded).")
    weighted_availability: float | None = Field(description="Availability with hour-of-week weights.")
    downtime_seconds: float
    observed_seconds: float


class AvailabilityWeek(AvailabilityNumbers):
    week: str = Field(description="ISO week, e.g. 2024-W05.")
    week_start: date = Field(description="Its Monday (UTC).")


class AvailabilityOut(AvailabilityNumbers):
    service: str | None
    team: str | None
    environment: str
    weekly: list[AvailabilityWeek]


class DoraNumbers(BaseModel):
    """The DORA four keys over a period; null where there is no data."""

    period_start: datetime
    period_end: datetime
    deploys: int = Field(description="Production releases that went live in the period.")
    failed_changes: int
    deployment_frequency_per_day: float | None
    lead_time_seconds: float | None = Field(description="Median live - commit time, new changes only; null when "
                                            "no commit time is known (lead_time_reason says why).")
    lead_time_reason: str | None = Field(None, description="Why lead_time_seconds is null.")
    upload_to_live_seconds: float | None = Field(None, description="Median live - artifact upload, new changes only.")
    change_failure_rate: float | None = Field(description="Failed changes / deploys.")
    time_to_restore_seconds: float | None = Field(description="Median resolved - triggered, production incidents.")


class DoraWeek(DoraNumbers):
    week: str
    week_start: date


class DoraOut(DoraNumbers):
    team: str | None
    weekly: list[DoraWeek]


class SloIn(BaseModel):
    objective: float = Field(description="Between 0 and 1, exclusive: 0.999 is 99.9%.")
    window_days: int = Field(30, description="The rolling window, 1 to 365 days.")
    environment: str = Field(PRODUCTION, description=ENV_HELP)


class SloOut(BaseModel):
    service: str
    environment: str
    objective: float
    window_days: int


class SloStatusOut(SloOut):
    window_start: datetime
    window_end: datetime
    availability: float | None
    error_budget_seconds: float | None = Field(description="Downtime the objective allows over the window.")
    budget_consumed_seconds: float
    budget_remaining_fraction: float | None = Field(description="1 untouched, 0 spent, below 0 overspent.")
    burn_rate: float | None = Field(description="Downtime fraction / (1 - objective) over the window.")
    burn_rate_1h: float | None
    burn_rate_6h: float | None


class WeightsIn(BaseModel):
    """Exactly one of ``weights``, ``counts`` or ``source: "flat"``."""

    weights: list[float] | None = Field(None, description="168 weights, Monday 00:00-01:00 UTC first.")
    counts: list[float] | None = Field(None, description="168 request counts per hour of the week to derive them from.")
    source: str | None = Field(None, description='"flat": every hour weighs the same.')


class WeightsOut(BaseModel):
    team: str
    source: str = Field(description="flat | table | traffic")
    weights: list[float] = Field(description="168 weights, scaled to average 1.")

    @classmethod
    def of(cls, view: WeightsView) -> WeightsOut:
        return cls(team=view.team, source=view.source, weights=view.weights)


def scope_of(service: str | None, team: str | None, everything: bool, env: str) -> Scope:
    """The scope a request names: exactly one of a service, a team, or ``all=true``."""
    if (service is not None) + (team is not None) + everything != 1:
        raise Invalid("give one of service=NAME, team=NAME or all=true")
    return Scope(service=service, team=team, environment=env)


def iso_week(monday: datetime) -> dict[str, Any]:
    """The ISO week a Monday starts, as ``week`` and ``week_start`` fields."""
    year, week, _ = monday.isocalendar()
    return {"week": f"{year}-W{week:02d}", "week_start": monday.date()}


@router.get("/metrics/availability")
def availability(
    podium: PodiumDep,
    actor: ActorDep,
    service: str | None = Query(None, description="One service."),
    team: str | None = Query(None, description="Every service of a team."),
    all: bool = Query(False, description="Every service."),
    env: str = Query(PRODUCTION, description=ENV_HELP),
    since: str = Query("30d", description=SINCE_HELP),
) -> AvailabilityOut:
    """Availability, weighted availability, MTTR, MTTA and MTBF, with weekly trends."""
    result = podium.metrics.availability(scope_of(service, team, all, env), since)
    weeks = [AvailabilityWeek(**report.as_dict(), **iso_week(monday)) for monday, report in result.weekly]
    return AvailabilityOut(**result.report.as_dict(), service=service, team=team, environment=env, weekly=weeks)


@router.get("/metrics/dora")
def dora(
    podium: PodiumDep,
    actor: ActorDep,
    team: str | None = Query(None, description="The team."),
    all: bool = Query(False, description="Every team together."),
    since: str = Query("30d", description=SINCE_HELP),
) -> DoraOut:
    """The DORA four keys of a team's production deploys, with weekly trends."""
    if (team is not None) + all != 1:
        raise Invalid("give one of team=NAME or all=true")
    result = podium.metrics.dora(team, since)
    weeks = [DoraWeek(**report.as_dict(), **iso_week(monday)) for monday, report in result.weekly]
    return DoraOut(**result.report.as_dict(), team=team, weekly=weeks)


@router.get("/metrics/slo")
def slo(
    podium: PodiumDep,
    actor: ActorDep,
    service: str = Query(description="The service."),
    env: str = Query(PRODUCTION, description=ENV_HELP),
) -> SloStatusOut:
    """Error budget and burn rates against the service's SLO (404 when it has none)."""
    result = podium.metrics.slo(service, env)
    status = result.status.as_dict()
    return SloStatusOut(service=result.service, environment=result.environment, **status)


def _slo_out(service: str, row: Slo) -> SloOut:
    return SloOut(service=service, environment=row.environment, objective=row.objective,
                  window_days=row.window_days)


@router.get("/services/{service}/slo")
def show_slo(
    service: str, podium: PodiumDep, actor: ActorDep, env: str = Query(PRODUCTION, description=ENV_HELP)
) -> SloOut:
    """A service's SLO (404 when it has none)."""
    return _slo_out(service, podium.metrics.get_slo(service, env))


@router.put("/services/{service}/slo")
def set_slo(service: str, body: SloIn, podium: PodiumDep, actor: ActorDep) -> SloOut:
    """Set a service's SLO: the owning team or the platform team."""
    row = podium.metrics.set_slo(actor, service, body.objective, body.window_days, body.environment)
    return _slo_out(service, row)


@router.get("/teams/{team}/availability-weights")
def show_weights(team: str, podium: PodiumDep, actor: ActorDep) -> WeightsOut:
    """A team's hour-of-week weights for business-weighted availability."""
    return WeightsOut.of(podium.metrics.get_weights(team))


@router.put("/teams/{team}/availability-weights")
def set_weights(team: str, body: WeightsIn, podium: PodiumDep, actor: ActorDep) -> WeightsOut:
    """Set a team's weights: a table, request counts to derive one from, or flat (members or platform team)."""
    view = podium.metrics.set_weights(actor, team, weights=body.weights, counts=body.counts, source=body.source)
    return WeightsOut.of(view)


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "description": "CSV"}}


@router.get("/metrics/export/incidents.csv", response_class=Response, responses=CSV_RESPONSE)
def export_incidents(
    podium: PodiumDep,
    actor: ActorDep,
    service: str | None = Query(None, description="One service."),
    team: str | None = Query(None, description="Every service of a team."),
    env: str = Query(PRODUCTION, description=ENV_HELP),
    since: str = Query("90d", description=SINCE_HELP),
) -> Response:
    """The incidents triggered in the period, one row each."""
    rows = podium.metrics.incidents(scope_of(service, team, False, env), since)
    return csv_response(rows, INCIDENT_COLUMNS, "incidents.csv")


@router.get("/metrics/export/availability.csv", response_class=Response, responses=CSV_RESPONSE)
def export_availability(
    podium: PodiumDep,
    actor: ActorDep,
    service: str | None = Query(None, description="One service."),
    team: str | None = Query(None, description="Every service of a team."),
    env: str = Query(PRODUCTION, description=ENV_HELP),
    since: str = Query("365d", description=SINCE_HELP),
) -> Response:
    """Availability per calendar month and service."""
    rows = podium.metrics.monthly_availability(scope_of(service, team, False, env), since)
    return csv_response(rows, AVAILABILITY_COLUMNS, "availability.csv")


INCIDENT_COLUMNS = (
    "id", "service", "environment", "state", "source", "summary", "triggered_at", "acknowledged_at",
    "resolved_at", "time_to_acknowledge_seconds", "time_to_resolve_seconds", "cause_release",
)
AVAILABILITY_COLUMNS = (
    "month", "service", "environment", "incidents", "downtime_seconds", "observed_seconds", "availability",
    "weighted_availability", "mttr_seconds", "mtta_seconds", "mtbf_seconds",
)


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: empty for null, and text that a spreadsheet would run as a formula quoted."""
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text.startswith(CSV_CELL_TRIGGERS):
        return "'" + text
    return text


def csv_response(rows: Sequence[dict[str, Any]], columns: Sequence[str], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row[column]) for column in columns])
    return Response(
        buffer.getvalue(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
