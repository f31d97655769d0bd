"""Availability and DORA metrics: a pure core (timelines in, numbers out) and the service that feeds it."""

from podium.metrics.availability import (
    AvailabilityReport,
    Outage,
    Tally,
    Timeline,
    Window,
    availability_report,
    combine,
    measure,
    summarize,
    tally,
    weekly,
)
from podium.metrics.dora import Deploy, DeployColumns, DoraReport, ReleaseFacts, dora_report, failed_changes
from podium.metrics.period import Period, parse_since
from podium.metrics.slo import SloStatus, slo_status
from podium.metrics.weights import HourWeights, weights_from_traffic

__all__ = [
    "AvailabilityReport",
    "Deploy",
    "DeployColumns",
    "DoraReport",
    "HourWeights",
    "Outage",
    "Period",
    "ReleaseFacts",
    "SloStatus",
    "Tally",
    "Timeline",
    "Window",
    "availability_report",
    "combine",
    "dora_report",
    "failed_changes",
    "measure",
    "parse_since",
    "slo_status",
    "summarize",
    "tally",
    "weekly",
    "weights_from_traffic",
]
