"""The rotation math, on explicit UTC times: handoffs, their boundaries, overrides, one-person rotations.

2026-03-02 is a Monday. The weekly rotation below starts on Wednesday 2026-03-04 10:00
and hands off on Mondays at 09:00: alice until 03-09 09:00, bob until 03-16 09:00, carol
until 03-23 09:00, then alice again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.errors import Invalid
from podium.health.oncall import (
    OnCall,
    Period,
    Person,
    backup_for,
    first_handoff,
    handoff_text,
    on_call_at,
    parse_handoff,
    shift_at,
    who_is_on_call,
    whole_team,
)
from podium.health.paging import backoff

ALICE, BOB, CAROL, DAVE = (Person(n, f"json://127.0.0.1:9/{n}") for n in ("alice", "bob", "carol", "dave"))
TICK = timedelta(microseconds=1)


@dataclass
class Rota:
    """A rotation as the math reads it (what a ``Rotation`` row offers)."""

    members: list[dict[str, str]]
    period: str = "weekly"
    handoff_weekday: int = 0
    handoff_time: str = "09:00"
    starts_at: datetime = field(default_factory=lambda: at("2026-03-04 10:00"))


@dataclass
class Cover:
    starts_at: datetime
    ends_at: datetime
    name: str
    url: str


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def rota(*persons: Person, **kw: object) -> Rota:
    return Rota(members=[{"name": p.name, "url": p.url} for p in persons], **kw)  # type: ignore[arg-type]


def cover(person: Person, start: str, end: str) -> Cover:
    return Cover(at(start), at(end), person.name, person.url)


WEEKLY = rota(ALICE, BOB, CAROL)


# Handoffs -------------------------------------------------------------------------------


def test_the_first_person_is_on_call_from_the_start_until_the_first_handoff() -> None:
    assert who_is_on_call(WEEKLY, [], at("2026-03-04 10:00")) == OnCall(ALICE, BOB, at("2026-03-09 09:00"))
    assert who_is_on_call(WEEKLY, [], at("2026-03-09 08:59:59.999999")).current == ALICE


def test_at_the_handoff_instant_the_next_person_is_on_call() -> None:
    assert who_is_on_call(WEEKLY, [], at("2026-03-09 09:00")) == OnCall(BOB, CAROL, at("2026-03-16 09:00"))
    assert who_is_on_call(WEEKLY, [], at("2026-03-16 09:00") - TICK).current == BOB


def test_the_rotation_wraps_around() -> None:
    assert who_is_on_call(WEEKLY, [], at("2026-03-20 00:00")) == OnCall(CAROL, ALICE, at("2026-03-23 09:00"))
    assert who_is_on_call(WEEKLY, [], at("2026-03-23 09:00")) == OnCall(ALICE, BOB, at("2026-03-30 09:00"))
    # Many weeks on: 100 handoffs after the first shift is shift 100, 100 % 3 == 1.
    far = at("2026-03-09 09:00") + timedelta(weeks=99)
    assert who_is_on_call(WEEKLY, [], far).current == BOB


def test_before_the_rotation_starts_its_first_person_is_named() -> None:
    assert who_is_on_call(WEEKLY, [], at("2026-01-01 00:00")) == OnCall(ALICE, BOB, at("2026-03-09 09:00"))


def test_a_rotation_set_exactly_at_a_handoff_gives_its_first_person_a_whole_period() -> None:
    rotation = rota(ALICE, BOB, starts_at=at("2026-03-02 09:00"))
    assert first_handoff(rotation) == at("2026-03-09 09:00")
    assert who_is_on_call(rotation, [], at("2026-03-02 09:00")).current == ALICE


def test_a_rotation_set_just_before_its_handoff_hands_off_that_day() -> None:
    rotation = rota(ALICE, BOB, starts_at=at("2026-03-02 08:59"))
    assert who_is_on_call(rotation, [], at("2026-03-02 08:59")) == OnCall(ALICE, BOB, at("2026-03-02 09:00"))
    assert who_is_on_call(rotation, [], at("2026-03-02 09:00")).current == BOB


def test_daily_rotations_hand_off_every_day_at_the_time() -> None:
    daily = rota(ALICE, BOB, CAROL, period="daily", handoff_time="17:30", starts_at=at("2026-03-04 18:00"))
    assert who_is_on_call(daily, [], at("2026-03-05 12:00")) == OnCall(ALICE, BOB, at("2026-03-05 17:30"))
    assert who_is_on_call(daily, [], at("2026-03-05 17:30")) == OnCall(BOB, CAROL, at("2026-03-06 17:30"))
    assert who_is_on_call(daily, [], at("2026-03-07 17:30")).current == ALICE
    assert shift_at(daily, at("2026-03-07 17:29")) == (2, at("2026-03-07 17:30"))


def test_a_handoff_time_is_utc_whatever_the_zone_of_now() -> None:
    paris = timezone(timedelta(hours=1))
    assert who_is_on_call(WEEKLY, [], datetime(2026, 3, 9, 9, 30, tzinfo=paris)).current == ALICE  # 08:30 UTC
    assert who_is_on_call(WEEKLY, [], datetime(2026, 3, 9, 10, 0, tzinfo=paris)).current == BOB  # 09:00 UTC


# Overrides ------------------------------------------------------------------------------


def test_an_override_wins_for_its_range_only() -> None:
    overrides = [cover(DAVE, "2026-03-05 12:00", "2026-03-06 12:00")]
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-04 11:00")) == OnCall(ALICE, DAVE, at("2026-03-05 12:00"))
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-05 12:00")) == OnCall(DAVE, ALICE, at("2026-03-06 12:00"))
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-06 12:00")) == OnCall(ALICE, BOB, at("2026-03-09 09:00"))


def test_an_override_spanning_a_handoff_holds_through_it() -> None:
    overrides = [cover(DAVE, "2026-03-08 12:00", "2026-03-10 12:00")]  # Sunday to Tuesday, over Monday 09:00
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-08 13:00")) == OnCall(DAVE, BOB, at("2026-03-10 12:00"))
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-09 09:00")) == OnCall(DAVE, BOB, at("2026-03-10 12:00"))
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-10 12:00")) == OnCall(BOB, CAROL, at("2026-03-16 09:00"))


def test_an_override_by_the_next_person_moves_the_handoff_earlier() -> None:
    overrides = [cover(BOB, "2026-03-08 00:00", "2026-03-09 09:00")]
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-07 00:00")) == OnCall(ALICE, BOB, at("2026-03-08 00:00"))
    # Bob covers until his own shift begins: the next change is his handoff to carol.
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-08 01:00")) == OnCall(BOB, CAROL, at("2026-03-16 09:00"))


def test_the_override_given_last_wins_where_overrides_overlap() -> None:
    overrides = [
        cover(DAVE, "2026-03-05 00:00", "2026-03-07 00:00"),
        cover(CAROL, "2026-03-06 00:00", "2026-03-06 06:00"),
    ]
    assert on_call_at(WEEKLY, overrides, at("2026-03-05 12:00")) == DAVE
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-05 12:00")) == OnCall(DAVE, CAROL, at("2026-03-06 00:00"))
    assert who_is_on_call(WEEKLY, overrides, at("2026-03-06 01:00")) == OnCall(CAROL, DAVE, at("2026-03-06 06:00"))


def test_overrides_that_are_over_change_nothing() -> None:
    overrides = [cover(DAVE, "2026-03-01 00:00", "2026-03-02 00:00")]
    now = at("2026-03-04 11:00")
    assert who_is_on_call(WEEKLY, overrides, now) == who_is_on_call(WEEKLY, [], now)


# One person ----------------------------------------------------------------------------


def test_a_one_person_rotation_names_that_person_next_at_the_next_handoff() -> None:
    solo = rota(ALICE)
    assert who_is_on_call(solo, [], at("2026-03-04 11:00")) == OnCall(ALICE, ALICE, at("2026-03-09 09:00"))
    assert who_is_on_call(solo, [], at("2026-03-09 09:00")) == OnCall(ALICE, ALICE, at("2026-03-16 09:00"))


def test_a_one_person_rotation_with_an_override() -> None:
    solo = rota(ALICE)
    overrides = [cover(CAROL, "2026-03-10 00:00", "2026-03-20 00:00")]
    assert who_is_on_call(solo, overrides, at("2026-03-04 11:00")) == OnCall(ALICE, CAROL, at("2026-03-10 00:00"))
    assert who_is_on_call(solo, overrides, at("2026-03-12 00:00")) == OnCall(CAROL, ALICE, at("2026-03-20 00:00"))
    assert backup_for(solo, overrides, at("2026-03-12 00:00")) == ALICE
    assert backup_for(solo, [], at("2026-03-12 00:00")) is None


# Whom escalation pages -----------------------------------------------------------------


def test_the_backup_is_the_next_person_in_the_rotation() -> None:
    assert backup_for(WEEKLY, [], at("2026-03-04 11:00")) == BOB
    assert backup_for(WEEKLY, [], at("2026-03-20 00:00")) == ALICE
    # Dave covers alice: the backup is still the one after alice.
    overrides = [cover(DAVE, "2026-03-05 00:00", "2026-03-06 00:00")]
    assert backup_for(WEEKLY, overrides, at("2026-03-05 12:00")) == BOB
    # Bob covers alice: the backup skips him.
    overrides = [cover(BOB, "2026-03-05 00:00", "2026-03-06 00:00")]
    assert backup_for(WEEKLY, overrides, at("2026-03-05 12:00")) == CAROL


def test_the_whole_team_is_every_member_and_whoever_covers_now() -> None:
    overrides = [cover(DAVE, "2026-03-05 00:00", "2026-03-06 00:00")]
    assert whole_team(WEEKLY, overrides, at("2026-03-05 12:00")) == [ALICE, BOB, CAROL, DAVE]
    assert whole_team(WEEKLY, overrides, at("2026-03-07 12:00")) == [ALICE, BOB, CAROL]


# The handoff as people type it ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "period", "expected"),
    [
        ("mon 09:00", Period.WEEKLY, (0, "09:00")),
        ("Friday 9:30", Period.WEEKLY, (4, "09:30")),
        ("  sun 23:59 ", Period.WEEKLY, (6, "23:59")),
        ("18:00", Period.DAILY, (0, "18:00")),
        ("wed 08:00", Period.DAILY, (2, "08:00")),
    ],
)
def test_handoffs_people_type(text: str, period: Period, expected: tuple[int, str]) -> None:
    assert parse_handoff(text, period) == expected


@pytest.mark.parametrize(
    ("text", "period", "says"),
    [
        ("09:00", Period.WEEKLY, "weekday"),
        ("mon 24:00", Period.WEEKLY, "00:00 to 23:59"),
        ("mon 09:60", Period.WEEKLY, "00:00 to 23:59"),
        ("someday 09:00", Period.WEEKLY, "invalid weekday"),
        ("monday", Period.WEEKLY, "invalid handoff"),
        ("", Period.DAILY, "invalid handoff"),
    ],
)
def test_handoffs_refused_with_a_reason(text: str, period: Period, says: str) -> None:
    with pytest.raises(Invalid, match=says):
        parse_handoff(text, period)


def test_handoff_text() -> None:
    assert handoff_text(rota(ALICE, handoff_weekday=2, handoff_time="08:15")) == "wed 08:15"
    assert handoff_text(rota(ALICE, period="daily", handoff_time="08:15")) == "08:15"


def test_backoff_doubles_from_five_seconds_and_stops_at_ten_minutes() -> None:
    assert [backoff(n, 5.0, 600.0) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    assert backoff(10_000, 5.0, 600.0) == 600


# Properties ---------------------------------------------------------------------------

BASE = at("2026-03-02 00:00")
hours = st.integers(min_value=0, max_value=24 * 60)  # a ten-week window, by the hour


@st.composite
def schedules(draw: st.DrawFn) -> tuple[Rota, list[Cover], datetime]:
    size = draw(st.integers(min_value=1, max_value=4))
    members = [ALICE, BOB, CAROL, DAVE][:size]
    rotation = rota(
        *members,
        period=draw(st.sampled_from(["daily", "weekly"])),
        handoff_weekday=draw(st.integers(min_value=0, max_value=6)),
        handoff_time=f"{draw(st.integers(min_value=0, max_value=23)):02d}:{draw(st.sampled_from([0, 30])):02d}",
        starts_at=BASE + timedelta(hours=draw(hours)),
    )
    covers = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        start = BASE + timedelta(hours=draw(hours))
        length = timedelta(hours=draw(st.integers(min_value=1, max_value=400)))
        covers.append(Cover(start, start + length, *draw(st.sampled_from([(p.name, p.url) for p in (ALICE, DAVE)]))))
    return rotation, covers, BASE + timedelta(hours=draw(hours), minutes=draw(st.integers(0, 59)))


@given(schedules())
def test_nobody_changes_before_the_handoff_and_next_takes_over_at_it(case: tuple[Rota, list[Cover], datetime]) -> None:
    rotation, covers, now = case
    current, following, handoff = who_is_on_call(rotation, covers, now)
    assert handoff > now
    assert current == on_call_at(rotation, covers, now)
    # Every moment at which anything could change before the handoff: nothing does.
    moments = {c.starts_at for c in covers} | {c.ends_at for c in covers}
    step = Period(rotation.period).length
    moment = shift_at(rotation, now)[1]
    while moment < handoff:
        moments.add(moment)
        moment += step
    for moment in moments:
        if now <= moment < handoff:
            assert on_call_at(rotation, covers, moment) == current, moment
    if following != current:
        assert on_call_at(rotation, covers, handoff) == following
    else:
        assert len({m["name"] for m in rotation.members}) == 1
