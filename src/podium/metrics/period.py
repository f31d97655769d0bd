"""Periods: ``since`` as people write it, ISO weeks and calendar months, seconds and datetimes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from podium.errors import Invalid

MAX_SPAN = timedelta(days=3660)  # ten years: far enough back for any report, and no date overflow
SINCE_RULE = "use a length such as 24h, 30d or 12w, or an ISO date such as 2024-01-31"
_RELATIVE = re.compile(r"(\d{1,7})([hdw])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def to_seconds(moment: datetime) -> float:
    """Seconds since the Unix epoch of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the metrics")
    return moment.timestamp()


def from_seconds(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class Period:
    """The half-open time range ``[start, end)`` a report covers."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a period needs aware datetimes")
        if self.end < self.start:
            raise ValueError("a period cannot end before it starts")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def clip(self, start: datetime, end: datetime) -> Period:
        """The part of this period inside ``[start, end)`` (empty, at the nearer edge, if none)."""
        lo = min(max(self.start, start), self.end)
        return Period(lo, max(lo, min(self.end, end)))


def parse_since(text: str, now: datetime) -> datetime:
    """When a period that ends ``now`` starts: ``24h``, ``30d``, ``12w`` back, or an ISO date/time.

    A date or a time without an offset is taken as UTC. Raises Invalid with the rule when
    the text is neither, is in the future, or reaches back more than ten years.
    """
    shown = text if len(text) <= 40 else f"{text[:40]}…"
    relative = _RELATIVE.fullmatch(text.strip().lower())
    if relative is not None:
        count, unit = int(relative.group(1)), relative.group(2)
        if count == 0:
            raise Invalid(f"since {shown!r} is an empty period: {SINCE_RULE}")
        start = now - min(_UNITS[unit] * count, MAX_SPAN + _UNITS["d"])
    else:
        moment = _parse_moment(text.strip())
        if moment is None:
            raise Invalid(f"invalid since {shown!r}: {SINCE_RULE}")
        if moment >= now:
            raise Invalid(f"since {shown!r} is not in the past")
        start = moment
    if now - start > MAX_SPAN:
        raise Invalid(f"since {shown!r} reaches back more than {MAX_SPAN.days} days")
    return start


def _parse_moment(value: str) -> datetime | None:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # not ISO 8601, or out of datetime's range once in UTC
        return None


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week holding ``moment``."""
    moment = moment.astimezone(UTC)
    monday = moment.date() - timedelta(days=moment.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC)


def iso_weeks(period: Period) -> list[tuple[datetime, Period]]:
    """Each ISO week that overlaps the period: its Monday, and the part of the period in it."""
    weeks: list[tuple[datetime, Period]] = []
    monday = week_start(period.start)
    while monday < period.end:
        weeks.append((monday, period.clip(monday, monday + timedelta(weeks=1))))
        monday += timedelta(weeks=1)
    return weeks


def months(period: Period) -> list[tuple[datetime, Period]]:
    """Each calendar month (UTC) that overlaps the period: its first day, and the part of the period in it."""
    found: list[tuple[datetime, Period]] = []
    start = period.start.astimezone(UTC)
    first = datetime(start.year, start.month, 1, tzinfo=UTC)
    while first < period.end:
        following = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=UTC)
        found.append((first, period.clip(first, following)))
        first = following
    return found
