"""What the pages show of availability: status lines, metric cards, weekly trends, incidents.

The view builders here call the core's verbs (``incidents``, ``checks``, ``oncall``,
``metrics``) and turn their numbers into the strings and charts the templates print. A
number with no data behind it (``None`` from the metrics) is shown as ``no data``, never as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup

from podium.catalog.auth import Actor
from podium.core import Podium
from podium.errors import NotFound
from podium.health.checks import CheckInfo
from podium.health.incidents import IncidentInfo
from podium.health.models import IncidentState
from podium.health.status import EnvStatus
from podium.metrics.availability import AvailabilityReport
from podium.metrics.dora import DoraReport
from podium.metrics.period import week_start
from podium.metrics.service import Scope
from podium.metrics.slo import SloStatus
from podium.web.charts import availability_axis, svg_line_chart
from podium.web.templating import duration as spoken_duration

NO_DATA = "no data"
CARD_PERIOD = "30d"
TREND_WEEKS = 12
INCIDENTS_SHOWN = 50
OPEN_STATES = (IncidentState.TRIGGERED, IncidentState.ACKNOWLEDGED)


# Formatting ------------------------------------------------------------------------------


def percent(fraction: float | None) -> str:
    """``0.99952`` → ``99.952%``; never rounded up to 100% unless it is 100%; ``no data`` for none."""
    if fraction is None or not math.isfinite(fraction):
        return NO_DATA
    if fraction >= 1:
        return "100%"
    return f"{math.floor(fraction * 100_000) / 1000:.3f}%"


def tick_percent(fraction: float) -> str:
    """An axis tick: ``99.5%``, ``100%`` (no trailing zeros)."""
    return f"{fraction * 100:.4f}".rstrip("0").rstrip(".") + "%"


def duration(seconds: float | None) -> str:
    """``38m 12s``, the way people say it; ``no data`` for none."""
    return NO_DATA if seconds is None else spoken_duration(seconds)


def per_day(rate: float | None) -> str:
    return NO_DATA if rate is None else f"{rate:.2f} / day"


@dataclass(frozen=True)
class Card:
    """One number on a page: what it is, its value as shown, and a line on how it is measured."""

    key: str
    label: str
    value: str
    hint: str = ""

    @property
    def empty(self) -> bool:
        return self.value == NO_DATA


def availability_cards(report: AvailabilityReport) -> list[Card]:
    """The cards of an availability report: availability, weighted, MTTR, MTTA, MTBF, incidents."""
    return [
        Card("availability", "Availability", percent(report.availability), "maintenance left out"),
        Card("weighted_availability", "Business-weighted", percent(report.weighted_availability),
             "downtime weighted by hour of week"),
        Card("mttr", "MTTR", duration(report.mttr_seconds), "mean time from trigger to resolve"),
        Card("mtta", "MTTA", duration(report.mtta_seconds), "mean time to acknowledge"),
        Card("mtbf", "MTBF", duration(report.mtbf_seconds), "mean uptime between outages"),
        Card("incidents", "Incidents", str(report.incidents), f"triggered in the last {CARD_PERIOD}"),
    ]


def slo_cards(status: SloStatus) -> list[Card]:
    """The objective and what is left of its error budget."""
    remaining = status.budget_remaining_fraction
    left = NO_DATA if remaining is None else f"{remaining * 100:.0f}%"
    return [
        Card("slo", "SLO", tick_percent(status.objective), f"over {status.window_days} days"),
        Card("error_budget", "Error budget left", left,
             NO_DATA if status.burn_rate is None else f"burn rate {status.burn_rate:.2f}"),
    ]


def dora_cards(report: DoraReport) -> list[Card]:
    """The four keys of a team's production deploys."""
    return [
        Card("deployment_frequency", "Deployment frequency", per_day(report.deployment_frequency_per_day),
             f"{report.deploys} deploys"),
        Card("lead_time", "Lead time", duration(report.lead_time_seconds),
             "commit → live" if report.lead_time_seconds is not None else (report.lead_time_reason or "")),
        Card("change_failure_rate", "Change failure rate", percent(report.change_failure_rate),
             f"{report.failed_changes} failed changes"),
        Card("time_to_restore", "Time to restore", duration(report.time_to_restore_seconds),
             "incidents caused by deploys"),
    ]


# Trends ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trends:
    """Weekly charts: availability, and MTTR (in minutes or hours, whichever reads better)."""

    availability: Markup
    mttr: Markup


def trend_since(now: datetime) -> str:
    """The Monday ``TREND_WEEKS - 1`` weeks before this week's: whole weeks, this one last."""
    return (week_start(now) - timedelta(weeks=TREND_WEEKS - 1)).isoformat()


def trend_charts(weeks: Sequence[tuple[datetime, AvailabilityReport]], objective: float | None = None) -> Trends:
    """The weekly charts; availability's axis runs from a fixed floor (the SLO's ``objective``
    when every week met it) to 100%, with the objective drawn across it."""
    labels = [monday.strftime("%b %d") for monday, _ in weeks]
    availability = [report.availability for _, report in weeks]
    repairs = [report.mttr_seconds for _, report in weeks]
    longest = max((r for r in repairs if r is not None), default=0.0)
    unit, seconds = ("hours", 3600.0) if longest > 5 * 3600 else ("minutes", 60.0)
    measured = [value for value in availability if value is not None and math.isfinite(value)]
    return Trends(
        availability=svg_line_chart(
            list(zip(labels, availability, strict=True)),
            title="Availability per week", format_value=tick_percent, axis=availability_axis(measured, objective),
            reference=None if objective is None else (objective, f"SLO {tick_percent(objective)}"),
            css_class="availability",
        ),
        mttr=svg_line_chart(
            list(zip(labels, [None if r is None else r / seconds for r in repairs], strict=True)),
            title=f"MTTR per week ({unit})", format_value="{:g}".format, include=(0.0,), css_class="mttr",
        ),
    )


# Incidents -------------------------------------------------------------------------------


def is_open(incident: IncidentInfo) -> bool:
    return incident.state in OPEN_STATES


def lasted(incident: IncidentInfo, now: datetime) -> float:
    """How long it lasted, or has lasted so far when it is still open."""
    return max(0.0, ((incident.resolved_at or now) - incident.triggered_at).total_seconds())


def open_incidents(podium: Podium, service: str | None = None) -> list[IncidentInfo]:
    """Incidents not yet resolved, oldest first."""
    found = [i for state in OPEN_STATES for i in podium.incidents.list(service=service, state=state.value)]
    return sorted(found, key=lambda i: (i.triggered_at, i.id))


@dataclass(frozen=True)
class IncidentRows:
    """An incident list and whether the signed-in team may act on each of them."""

    incidents: list[IncidentInfo]
    allowed: frozenset[int]
    now: datetime

    def may_act(self, incident: IncidentInfo) -> bool:
        return incident.id in self.allowed

    def lasted(self, incident: IncidentInfo) -> float:
        return lasted(incident, self.now)


def incident_rows(podium: Podium, actor: Actor, incidents: list[IncidentInfo], now: datetime) -> IncidentRows:
    """The rows, with the buttons the team's rights allow."""
    return IncidentRows(incidents, podium.incidents.may_act(actor, incidents), now)


# Pages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentHealth:
    """One environment's status line: its state and the oldest incident still open in it."""

    env: str
    state: str
    checked: bool
    open_incident: IncidentInfo | None
    open_count: int


def environment_health(statuses: list[EnvStatus], open_ones: list[IncidentInfo]) -> list[EnvironmentHealth]:
    """Per environment, its health and open incidents."""
    lines = []
    for status in statuses:
        mine = [i for i in open_ones if i.is_in(status.env)]
        lines.append(EnvironmentHealth(status.env, status.health, status.checked, mine[0] if mine else None,
                                       len(mine)))
    return lines


@dataclass(frozen=True)
class ServiceHealth:
    """The availability part of a service page (production, the last 30 days)."""

    environments: list[EnvironmentHealth]
    cards: list[Card]
    trends: Trends
    incidents: IncidentRows
    checks: list[CheckInfo]


def service_health(
    podium: Podium, actor: Actor, name: str, statuses: list[EnvStatus], now: datetime
) -> ServiceHealth:
    scope = Scope(service=name)
    report = podium.metrics.availability(scope, CARD_PERIOD, now=now).report
    cards = availability_cards(report)
    objective = None
    with suppress(NotFound):  # no objective set: no SLO cards, no SLO line
        slo = podium.metrics.slo(name, now=now).status
        cards += slo_cards(slo)
        objective = slo.objective
    weeks = podium.metrics.availability(scope, trend_since(now), now=now).weekly
    listed = podium.incidents.list(service=name, limit=INCIDENTS_SHOWN)
    return ServiceHealth(
        environments=environment_health(statuses, open_incidents(podium, name)),
        cards=cards,
        trends=trend_charts(weeks, objective),
        incidents=incident_rows(podium, actor, listed, now),
        checks=podium.checks.list(name),
    )


@dataclass(frozen=True)
class OnCallNow:
    """Who is on call for a team, by name only: the rotation's URLs may hold secrets."""

    current: str
    next: str
    next_handoff_at: datetime


@dataclass(frozen=True)
class TeamHealth:
    """The availability part of a team page: on call, cards, trends, open incidents."""

    on_call: OnCallNow | None
    cards: list[Card]
    dora: list[Card]
    trends: Trends
    incidents: IncidentRows


def team_health(podium: Podium, actor: Actor, team: str, services: Sequence[str], now: datetime) -> TeamHealth:
    try:
        rotation = podium.oncall.show(team).on_call
        on_call = OnCallNow(rotation.current.name, rotation.next.name, rotation.next_handoff_at)
    except NotFound:  # the team has no rotation yet
        on_call = None
    scope = Scope(team=team)
    report = podium.metrics.availability(scope, CARD_PERIOD, now=now).report
    keys = ("availability", "weighted_availability", "mttr", "mtbf", "incidents")
    weeks = podium.metrics.availability(scope, trend_since(now), now=now).weekly
    owned = set(services)
    open_ones = [i for i in open_incidents(podium) if i.service in owned or i.team == team]
    return TeamHealth(
        on_call=on_call,
        cards=[card for card in availability_cards(report) if card.key in keys],
        dora=dora_cards(podium.metrics.dora(team, CARD_PERIOD, now=now).report),
        trends=trend_charts(weeks),
        incidents=incident_rows(podium, actor, open_ones, now),
    )


@dataclass(frozen=True)
class StatusRow:
    """One service environment on the status page."""

    service: str
    owner: str
    env: str
    state: str
    open_incidents: list[IncidentInfo]
    availability: str


def status_board(podium: Podium, statuses: dict[str, list[EnvStatus]], now: datetime) -> list[StatusRow]:
    """Every service environment: its state, its open incidents, its availability over 30 days."""
    open_ones = open_incidents(podium)
    rows = []
    for service in podium.catalog.list_services():
        for status in statuses.get(service.name, []):
            scope = Scope(service=service.name, environment=status.env)
            report = podium.metrics.availability(scope, CARD_PERIOD, now=now).report
            mine = [i for i in open_ones if i.service == service.name and i.is_in(status.env)]
            rows.append(StatusRow(service.name, service.owner.name, status.env, status.health, mine,
                                  percent(report.availability)))
    return rows


@dataclass(frozen=True)
class Moment:
    """One line of an incident's timeline."""

    at: datetime
    what: str
    who: str
    text: str = ""
    anchor: str = ""  # a note's ``note-<id>``, where adding it sends the browser


def timeline(incident: IncidentInfo) -> list[Moment]:
    """Triggered, acknowledged, resolved and the notes, in the order they happened."""
    opened_by = f"check {incident.check}" if incident.source == "check" and incident.check else incident.opened_by
    moments = [Moment(incident.triggered_at, "triggered", opened_by)]
    if incident.acknowledged_at is not None:
        moments.append(Moment(incident.acknowledged_at, "acknowledged", incident.acknowledged_by or NO_DATA))
    if incident.resolved_at is not None:
        moments.append(Moment(incident.resolved_at, "resolved", incident.resolved_by or NO_DATA))
    moments += [Moment(note.at, "note", note.team, note.text, f"note-{note.id}") for note in incident.notes]
    return sorted(moments, key=lambda moment: moment.at)
