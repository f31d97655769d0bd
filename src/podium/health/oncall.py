"""On-call rotations: who is on call at a moment, who comes next, and the verbs that set them.

The first half is pure: functions of a rotation, its overrides and a moment. Every time
is UTC, handoffs included ("mon 09:00" is Monday 09:00 UTC), so there are no daylight
saving jumps to reason about. The person at index 0 is on call from ``starts_at`` until
the first handoff after it; each handoff passes the rotation to the next person in
order. An override puts someone else on call for ``[starts_at, ends_at)`` and wins over
the rotation; when overrides overlap, the one created last wins.

The second half, ``OnCallService``, reads and changes rotations in the store, authorised
by team membership and audited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

import apprise
from sqlalchemy import select
from sqlalchemy.orm import Session

from podium.catalog import audit
from podium.catalog.auth import Actor
from podium.catalog.models import Team
from podium.catalog.rules import is_name
from podium.catalog.service import get_team
from podium.errors import Forbidden, Invalid, NotFound
from podium.health.models import Incident, Notification, Rotation, RotationOverride
from podium.people.models import User
from podium.store.db import Store, utcnow

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HANDOFF_RE = re.compile(r"(?:([a-z]+)\s+)?(\d{1,2}):(\d{2})")
MAX_MEMBERS = 50
NAME_MAX = 80
URL_MAX = 1000
MAX_ESCALATE_AFTER = 24 * 60
OVERRIDE_HORIZON = timedelta(days=366)  # how far ahead, and how long, an override may reach
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Period(StrEnum):
    """How often the rotation hands off."""

    DAILY = "daily"
    WEEKLY = "weekly"

    @property
    def length(self) -> timedelta:
        return timedelta(days=1 if self is Period.DAILY else 7)


@dataclass(frozen=True)
class Person:
    """Someone who can be paged: a name and an Apprise URL (which may hold a secret)."""

    name: str
    url: str


class OnCall(NamedTuple):
    """Who is on call now, who takes over next, and when."""

    current: Person
    next: Person
    next_handoff_at: datetime


class RotationLike(Protocol):
    """What the rotation math reads of a rotation (a ``Rotation`` row fits)."""

    @property
    def members(self) -> list[dict[str, str]]: ...
    @property
    def period(self) -> str: ...
    @property
    def handoff_weekday(self) -> int: ...
    @property
    def handoff_time(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...


class OverrideLike(Protocol):
    """What the rotation math reads of an override (a ``RotationOverride`` row fits)."""

    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...


# The pure core --------------------------------------------------------------------------


def people(rotation: RotationLike) -> list[Person]:
    """The rotation's members, in order."""
    return [Person(m["name"], m["url"]) for m in rotation.members]


def first_handoff(rotation: RotationLike) -> datetime:
    """The first handoff strictly after ``starts_at``: where person 0's first shift ends."""
    hour, minute = (int(part) for part in rotation.handoff_time.split(":"))
    start = rotation.starts_at.astimezone(UTC)
    moment = start.replace(hour=hour, minute=minute, second=0, microsecond=0)
    period = Period(rotation.period)
    if period is Period.WEEKLY:
        moment += timedelta(days=(rotation.handoff_weekday - start.weekday()) % 7)
    if moment <= start:
        moment += period.length
    return moment


def shift_at(rotation: RotationLike, moment: datetime) -> tuple[int, datetime]:
    """The number of handoffs up to ``moment`` (the shift it falls in), and the next handoff after it."""
    first = first_handoff(rotation)
    if moment < first:
        return 0, first
    step = Period(rotation.period).length
    passed = (moment - first) // step + 1
    return passed, first + passed * step


def scheduled(rotation: RotationLike, moment: datetime) -> Person:
    """Whom the rotation alone puts on call at ``moment``, overrides aside."""
    members = people(rotation)
    return members[shift_at(rotation, moment)[0] % len(members)]


def active_override(overrides: Iterable[OverrideLike], moment: datetime) -> Person | None:
    """The person an override puts on call at ``moment``; the last one given wins."""
    found = None
    for override in overrides:
        if override.starts_at <= moment < override.ends_at:
            found = Person(override.name, override.url)
    return found


def on_call_at(rotation: RotationLike, overrides: Sequence[OverrideLike], moment: datetime) -> Person:
    """Who is on call at ``moment``: an override's person, else the rotation's."""
    return active_override(overrides, moment) or scheduled(rotation, moment)


def who_is_on_call(rotation: RotationLike, overrides: Sequence[OverrideLike], now: datetime) -> OnCall:
    """Who is on call at ``now``, who is next, and when that changes.

    ``next_handoff_at`` is the first moment after ``now`` at which someone else is on
    call, whether because of a handoff or an override starting or ending; a handoff
    during an override changes nobody. When nobody else ever comes (one person, no
    overrides), ``next`` is that person and the time is the next scheduled handoff.
    """
    current = on_call_at(rotation, overrides, now)
    boundaries = {t for o in overrides for t in (o.starts_at, o.ends_at) if t > now}
    # Who is on call changes only at an override's boundary, or at the first handoff after
    # now or after such a boundary: between those, either an override holds or nothing moves.
    candidates = boundaries | {shift_at(rotation, t)[1] for t in (now, *boundaries)}
    for moment in sorted(candidates):
        person = on_call_at(rotation, overrides, moment)
        if person != current:
            return OnCall(current, person, moment)
    return OnCall(current, current, shift_at(rotation, now)[1])


def backup_for(rotation: RotationLike, overrides: Sequence[OverrideLike], now: datetime) -> Person | None:
    """Whom to page when the person on call does not answer: the rotation's next person.

    That is the member after the one the rotation schedules at ``now``, skipping whoever
    is on call; None when there is nobody else (a rotation of one, no override).
    """
    current = on_call_at(rotation, overrides, now)
    members = people(rotation)
    index = shift_at(rotation, now)[0]
    for step in range(1, len(members) + 1):
        person = members[(index + step) % len(members)]
        if person != current:
            return person
    return None


def whole_team(rotation: RotationLike, overrides: Sequence[OverrideLike], now: datetime) -> list[Person]:
    """Everyone in the rotation, and whoever an override puts on call now, each once."""
    team = people(rotation)
    covering = active_override(overrides, now)
    if covering is not None and covering not in team:
        team.append(covering)
    return team


# Checking what people type ---------------------------------------------------------------


def parse_handoff(text: str, period: Period) -> tuple[int, str]:
    """``'mon 09:00'`` (or ``'09:00'`` for a daily rotation) as (weekday, ``'HH:MM'``), UTC."""
    match = HANDOFF_RE.fullmatch(text.strip().lower())
    if match is None:
        raise Invalid(f"invalid handoff {_shown(text)}: use a weekday and a UTC time, e.g. 'mon 09:00'")
    day, hours, minutes = match.group(1), int(match.group(2)), int(match.group(3))
    if hours > 23 or minutes > 59:
        raise Invalid(f"invalid handoff time {match.group(2)}:{match.group(3)}: use 00:00 to 23:59 (UTC)")
    if day is None:
        if period is Period.WEEKLY:
            raise Invalid("a weekly rotation hands off on a weekday: give one, e.g. 'mon 09:00'")
        return 0, f"{hours:02d}:{minutes:02d}"
    if day in WEEKDAYS:
        weekday = WEEKDAYS.index(day)
    elif day in WEEKDAY_NAMES:
        weekday = WEEKDAY_NAMES.index(day)
    else:
        raise Invalid(f"invalid weekday {_shown(day)}: use one of {', '.join(WEEKDAYS)}")
    return weekday, f"{hours:02d}:{minutes:02d}"


def check_period(text: str) -> Period:
    try:
        return Period(text)
    except ValueError:
        raise Invalid(f"invalid period {_shown(text)}: use daily or weekly") from None


def check_person(name: str, url: str) -> Person:
    """A person to page: a short printable name and an Apprise URL that Apprise understands."""
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable() or "," in name or "=" in name:
        raise Invalid(f"invalid name {_shown(name)}: 1 to {NAME_MAX} printable characters, no ',' or '='")
    check_apprise_url(name, url)
    return Person(name, url.strip())


def check_apprise_url(name: str, url: str) -> None:
    """Invalid unless Apprise can build a notifier from ``url``; the URL is never echoed (secrets)."""
    url = url.strip()
    understood = False
    if url and len(url) <= URL_MAX and url.isprintable():
        try:
            understood = apprise.Apprise().add(url)
        except Exception:  # Apprise's parsers are not ours: any failure means "not understood"
            understood = False
    if not understood:
        scheme = url.partition("://")[0] if "://" in url else ""
        said = f" (scheme {_shown(scheme)})" if scheme and scheme.isalnum() and len(scheme) <= 20 else ""
        raise Invalid(
            f"the notification URL of {name!r}{said} is not one Apprise understands: use e.g. "
            "slack://…, mailto://…, pagerduty://… or json://host/path (see the Apprise wiki)"
        )


def check_moment(field: str, moment: datetime) -> datetime:
    """A timezone-aware moment, in UTC."""
    if moment.tzinfo is None:
        raise Invalid(f"{field} needs a timezone, e.g. 2026-03-01T09:00:00Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{field} is out of range") from None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else f"{text[:40]}…")


# The verbs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RotationView:
    """A team's rotation as shown: the schedule, the overrides still to come, and who is on call."""

    team: str
    rotation: Rotation
    overrides: list[RotationOverride]
    on_call: OnCall


class OnCallService:
    """Rotations and overrides of teams: set by a team's members (or the platform team), read by all."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def require_member(self, actor: Actor, team_name: str) -> None:
        """NotFound for an unknown team; Forbidden unless the actor is in it or on the platform team."""
        with self.store.session() as session:
            _member_team(session, actor, team_name)

    def set_rotation(
        self,
        actor: Actor,
        team_name: str,
        members: Sequence[tuple[str, str]],
        period: str,
        handoff: str,
        escalate_after_minutes: int = 15,
        starts_at: datetime | None = None,
    ) -> RotationView:
        """Replace a team's rotation; person 0 is on call from ``starts_at`` (default: now)."""
        with self.store.session() as session:
            team = _member_team(session, actor, team_name, manage=True)
            checked = check_period(period)
            weekday, at = parse_handoff(handoff, checked)
            if not 1 <= len(members) <= MAX_MEMBERS:
                raise Invalid(f"a rotation needs 1 to {MAX_MEMBERS} people")
            users = {name for name, url in members if not url.strip()}
            persons = [
                user_person(session, team, name) if name in users else check_person(name, url) for name, url in members
            ]
            if len({p.name for p in persons}) != len(persons):
                raise Invalid("each person appears once in a rotation: two have the same name")
            if not 1 <= escalate_after_minutes <= MAX_ESCALATE_AFTER:
                raise Invalid(f"escalate_after_minutes must be 1 to {MAX_ESCALATE_AFTER}")
            now = self.clock()
            start = check_moment("starts_at", starts_at) if starts_at is not None else now
            if not EPOCH <= start <= now + OVERRIDE_HORIZON:
                raise Invalid("starts_at must be after 1970 and within a year from now")
            rotation = session.scalar(select(Rotation).where(Rotation.team_id == team.id))
            before = _snapshot(rotation) if rotation is not None else None
            if rotation is None:
                rotation = Rotation(team_id=team.id)
                session.add(rotation)
            rotation.members = [
                {"name": p.name, "url": p.url, **({"user": p.name} if p.name in users else {})} for p in persons
            ]
            rotation.period = checked.value
            rotation.handoff_weekday = weekday
            rotation.handoff_time = at
            rotation.starts_at = start
            rotation.escalate_after_minutes = escalate_after_minutes
            rotation.updated_at = now
            session.flush()
            audit.record(session, actor, "oncall.set", target=team.name, before=before, after=_snapshot(rotation))
            return self._view(session, team, rotation)

    def show(self, team_name: str) -> RotationView:
        """Who is on call for a team now and next; NotFound when it has no rotation."""
        with self.store.session() as session:
            team = get_team(session, team_name)
            rotation = _rotation_of(session, team)
            return self._view(session, team, rotation)

    def add_override(
        self, actor: Actor, team_name: str, name: str, url: str, starts_at: datetime, ends_at: datetime
    ) -> RotationOverride:
        """Put someone else on call for ``[starts_at, ends_at)``."""
        with self.store.session() as session:
            team = _member_team(session, actor, team_name, manage=True)
            rotation = _rotation_of(session, team)
            person = check_person(name, url)
            start, end = check_moment("starts_at", starts_at), check_moment("ends_at", ends_at)
            now = self.clock()
            if end <= start:
                raise Invalid("an override ends after it starts")
            if end <= now:
                raise Invalid("this override is over already: ends_at is in the past")
            if end - start > OVERRIDE_HORIZON or start - now > OVERRIDE_HORIZON:
                raise Invalid("an override lasts at most a year and starts within a year")
            override = RotationOverride(
                rotation_id=rotation.id, starts_at=start, ends_at=end, name=person.name, url=person.url
            )
            session.add(override)
            session.flush()
            audit.record(
                session, actor, "oncall.override.add", target=f"{team.name}/{override.id}",
                after={"name": person.name, "starts_at": start.isoformat(), "ends_at": end.isoformat()},
            )
            return override

    def delete_override(self, actor: Actor, team_name: str, override_id: int) -> RotationOverride:
        """Remove an override of a team's rotation."""
        with self.store.session() as session:
            team = _member_team(session, actor, team_name, manage=True)
            rotation = _rotation_of(session, team)
            override = session.get(RotationOverride, override_id)
            if override is None or override.rotation_id != rotation.id:
                raise NotFound(f"override {override_id} not found in the rotation of team {team.name!r}")
            session.delete(override)
            audit.record(
                session, actor, "oncall.override.delete", target=f"{team.name}/{override_id}",
                before={"name": override.name, "starts_at": override.starts_at.isoformat(),
                        "ends_at": override.ends_at.isoformat()},
            )
            return override

    def pages(self, actor: Actor, team_name: str, limit: int = 50) -> list[Notification]:
        """The team's latest pages, newest first: sent, waiting for a retry, or given up."""
        with self.store.session() as session:
            team = _member_team(session, actor, team_name)
            stmt = (
                select(Notification)
                .join(Incident, Notification.incident_id == Incident.id)
                .where(Incident.team_id == team.id)
                .order_by(Notification.id.desc())
                .limit(limit)
            )
            return list(session.scalars(stmt))

    def _view(self, session: Session, team: Team, rotation: Rotation) -> RotationView:
        now = self.clock()
        stmt = (
            select(RotationOverride)
            .where(RotationOverride.rotation_id == rotation.id, RotationOverride.ends_at > now)
            .order_by(RotationOverride.id)
        )
        overrides = list(session.scalars(stmt))
        return RotationView(team.name, rotation, overrides, who_is_on_call(rotation, overrides, now))


def _member_team(session: Session, actor: Actor, team_name: str, manage: bool = False) -> Team:
    """The team, when the actor may see its pages (a member) or, with ``manage``, change its rotation."""
    team = get_team(session, team_name)
    if not (actor.manages(team.id) if manage else actor.acts_for(team.id)):
        who = f"user {actor.user!r}" if actor.user is not None else f"team {actor.team!r}"
        role = " (maintainers only)" if manage and actor.user is not None and team.id in actor.teams else ""
        raise Forbidden(f"{who} may not change the on-call rotation of team {team.name!r}{role}")
    return team


def user_person(session: Session, team: Team, name: str) -> Person:
    """A Podium user of the team as a person to page: all their contact methods at once.

    Apprise takes several URLs in one string, so one page reaches each of them.
    """
    user = session.scalar(select(User).where(User.name == name)) if is_name(name) else None
    if user is None:
        raise Invalid(f"{_shown(name)} has no notification URL and is no Podium user: give name=URL or a user")
    if team.id not in {m.team_id for m in user.memberships}:
        raise Invalid(f"user {name!r} is not a member of team {team.name!r}: add them with podium teams add-member")
    if not user.contacts:
        raise Invalid(f"user {name!r} has no contact methods: podium users update {name} --contact URL")
    return Person(name, ", ".join(user.contacts))


def refresh_user_contacts(session: Session, user: User) -> None:
    """Point every rotation that names ``user`` at their current contact methods."""
    url = ", ".join(user.contacts)
    for rotation in session.scalars(select(Rotation)):
        if any(m.get("user") == user.name for m in rotation.members):
            rotation.members = [{**m, "url": url} if m.get("user") == user.name else m for m in rotation.members]


def _rotation_of(session: Session, team: Team) -> Rotation:
    rotation = session.scalar(select(Rotation).where(Rotation.team_id == team.id))
    if rotation is None:
        raise NotFound(f"team {team.name!r} has no on-call rotation: set one with `podium oncall set`")
    return rotation


def _snapshot(rotation: Rotation) -> dict[str, Any]:
    """What the audit log keeps of a rotation: names, never the URLs (they may hold secrets)."""
    return {
        "members": [m["name"] for m in rotation.members],
        "period": rotation.period,
        "handoff": handoff_text(rotation),
        "escalate_after_minutes": rotation.escalate_after_minutes,
        "starts_at": rotation.starts_at.isoformat(),
    }


def handoff_text(rotation: RotationLike) -> str:
    """``'mon 09:00'`` for a weekly rotation, ``'09:00'`` for a daily one (UTC)."""
    if Period(rotation.period) is Period.DAILY:
        return rotation.handoff_time
    return f"{WEEKDAYS[rotation.handoff_weekday]} {rotation.handoff_time}"
