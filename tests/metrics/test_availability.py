"""Availability, MTTR, MTTA and MTBF on hand-computed incident timelines.

Times are hours from Monday 2024-01-01 00:00 UTC; every expected number is worked out in
the comment beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from podium.metrics import (
    HourWeights,
    Outage,
    Period,
    Timeline,
    Window,
    availability_report,
    measure,
    weekly,
)

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)
H = 3600.0


def at(hours: float) -> datetime:
    return MONDAY + timedelta(hours=hours)


DAY = Period(at(0), at(24))


def test_overlapping_and_back_to_back_incidents_are_one_outage() -> None:
    outages = [
        Outage(at(1), at(2)),
        Outage(at(1.5), at(3)),  # overlaps the first
        Outage(at(3), at(4)),  # starts as the second ends
        Outage(at(2), at(2.5)),  # inside the first two
    ]
    report = availability_report(outages, [], DAY, at(24))
    assert report.downtime_seconds == 3 * H  # one outage, 01:00-04:00
    assert report.availability == pytest.approx(1 - 3 / 24)
    assert report.incidents == 4
    assert report.mttr_seconds == pytest.approx((1 + 1.5 + 1 + 0.5) / 4 * H)  # each incident on its own
    assert report.mttr_median_seconds == pytest.approx(1 * H)
    assert report.mtbf_seconds is None  # one outage: no time between two


def test_incident_open_at_the_period_start_counts_as_downtime_only() -> None:
    period = Period(at(10), at(20))
    report = availability_report([Outage(at(8), at(11))], [], period, at(30))
    assert report.downtime_seconds == 1 * H  # 10:00-11:00 of it falls in the period
    assert report.incidents == 0  # triggered before the period
    assert report.mttr_seconds is None
    assert report.availability == pytest.approx(0.9)


def test_incident_running_past_the_period_end_is_clipped_but_its_repair_is_whole() -> None:
    period = Period(at(10), at(20))
    report = availability_report([Outage(at(19), at(22))], [], period, at(30))
    assert report.downtime_seconds == 1 * H
    assert report.incidents == 1
    assert report.mttr_seconds == 3 * H


def test_open_incident_counts_until_now_when_now_is_inside_the_period() -> None:
    period = Period(at(0), at(24))
    report = availability_report([Outage(at(5))], [], period, now=at(8))
    assert report.downtime_seconds == 3 * H
    assert report.observed_seconds == 8 * H  # the rest of the period has not happened yet
    assert report.availability == pytest.approx(1 - 3 / 8)
    assert report.incidents == 1
    assert report.mttr_seconds is None  # not resolved


def test_open_incident_counts_until_the_period_end_when_now_is_later() -> None:
    report = availability_report([Outage(at(20))], [], DAY, now=at(50))
    assert report.downtime_seconds == 4 * H
    assert report.availability == pytest.approx(1 - 4 / 24)


def test_maintenance_partly_over_an_incident_removes_that_part_from_both_sides() -> None:
    outages = [Outage(at(2), at(6))]
    windows = [Window(at(5), at(8))]  # covers 05:00-06:00 of the outage, then 2 h of uptime
    report = availability_report(outages, windows, DAY, at(24))
    assert report.downtime_seconds == 3 * H
    assert report.observed_seconds == 21 * H
    assert report.availability == pytest.approx(1 - 3 / 21)
    assert report.mttr_seconds == 4 * H  # repair time is the incident's own, maintenance or not


def test_maintenance_fully_over_an_incident_leaves_no_downtime() -> None:
    report = availability_report([Outage(at(3), at(4))], [Window(at(2), at(5))], DAY, at(24))
    assert report.downtime_seconds == 0
    assert report.availability == 1.0
    assert report.incidents == 1
    assert report.mtbf_seconds is None


def test_overlapping_maintenance_windows_are_not_subtracted_twice() -> None:
    windows = [Window(at(0), at(4)), Window(at(2), at(6)), Window(at(6), at(8))]
    report = availability_report([], windows, DAY, at(24))
    assert report.observed_seconds == 16 * H


def test_an_empty_period_has_availability_one_and_nothing_else() -> None:
    report = availability_report([], [], DAY, at(24))
    assert report.availability == 1.0
    assert report.weighted_availability == 1.0
    assert report.incidents == 0
    assert report.downtime_seconds == 0
    assert report.mttr_seconds is None
    assert report.mttr_median_seconds is None
    assert report.mtta_seconds is None
    assert report.mtbf_seconds is None


def test_a_period_with_nothing_observed_has_no_availability() -> None:
    all_maintenance = availability_report([Outage(at(3), at(4))], [Window(at(-1), at(25))], DAY, at(24))
    assert all_maintenance.observed_seconds == 0
    assert all_maintenance.availability is None
    assert all_maintenance.weighted_availability is None
    not_yet = availability_report([], [], Period(at(10), at(20)), now=at(5))  # the period is in the future
    assert not_yet.availability is None
    assert not_yet.observed_seconds == 0


def test_mtbf_is_the_mean_uptime_between_consecutive_outages() -> None:
    outages = [Outage(at(1), at(2)), Outage(at(5), at(6)), Outage(at(6), at(7)), Outage(at(15), at(16))]
    report = availability_report(outages, [], DAY, at(24))
    # Outages 01-02, 05-07 (two back-to-back incidents), 15-16: gaps of 3 h and 8 h.
    assert report.mtbf_seconds == pytest.approx((3 + 8) / 2 * H)


def test_mtbf_leaves_maintenance_out_of_the_uptime_and_joins_outages_split_by_it() -> None:
    outages = [Outage(at(1), at(2)), Outage(at(2.5), at(3)), Outage(at(10), at(11))]
    windows = [Window(at(2), at(2.5)), Window(at(5), at(7))]
    report = availability_report(outages, windows, DAY, at(24))
    # 01-02 and 02:30-03 touch once maintenance is taken out: one outage. Then 03-10 is
    # 7 h, of which 2 h is maintenance: 5 h of uptime before the 10:00 outage.
    assert report.mtbf_seconds == pytest.approx(5 * H)
    assert report.downtime_seconds == pytest.approx(2.5 * H)


def test_mtbf_counts_an_outage_open_at_the_period_start() -> None:
    outages = [Outage(at(-5), at(1)), Outage(at(4), at(5))]
    report = availability_report(outages, [], DAY, at(24))
    assert report.mtbf_seconds == pytest.approx(3 * H)


def test_mtta_covers_acknowledged_incidents_only() -> None:
    outages = [
        Outage(at(1), at(2), acknowledged_at=at(1) + timedelta(minutes=4)),
        Outage(at(3), at(4), acknowledged_at=at(3) + timedelta(minutes=10)),
        Outage(at(5), at(6)),  # never acknowledged
    ]
    report = availability_report(outages, [], DAY, at(24))
    assert report.mtta_seconds == pytest.approx(7 * 60)
    assert availability_report([Outage(at(1), at(2))], [], DAY, at(24)).mtta_seconds is None


def test_what_happens_after_now_has_not_happened() -> None:
    outages = [
        Outage(at(1), at(9), acknowledged_at=at(7)),  # resolved and acknowledged after now: open, unacknowledged
        Outage(at(10), at(11)),  # triggered after now
    ]
    report = availability_report(outages, [], DAY, now=at(6))
    assert report.incidents == 1
    assert report.downtime_seconds == 5 * H
    assert report.mttr_seconds is None
    assert report.mtta_seconds is None


def test_incidents_caused_by_deploys_are_counted() -> None:
    outages = [Outage(at(1), at(2), cause_deploy=True), Outage(at(3), at(4))]
    assert availability_report(outages, [], DAY, at(24)).incidents_caused_by_deploys == 1


def test_a_team_adds_up_its_services_time_and_pools_their_incidents() -> None:
    cart = Timeline.of([Outage(at(1), at(3))], [], at(24))
    search = Timeline.of([Outage(at(1), at(2)), Outage(at(10), at(11))], [Window(at(12), at(24))], at(24))
    report = measure([(cart, None), (search, None)], DAY)
    assert report.downtime_seconds == 4 * H  # 2 h + 2 h, each service on its own clock
    assert report.observed_seconds == (24 + 12) * H
    assert report.availability == pytest.approx(1 - 4 / 36)
    assert report.incidents == 3
    assert report.mttr_seconds == pytest.approx((2 + 1 + 1) / 3 * H)
    assert report.mtbf_seconds == pytest.approx(8 * H)  # only search has two outages


def test_weights_per_service_in_a_team_report() -> None:
    peak = HourWeights([3.0 if h == 1 else 1.0 for h in range(168)])
    cart = Timeline.of([Outage(at(1), at(2))], [], at(24))
    report = measure([(cart, peak), (cart, None)], DAY)
    # Tables are scaled so that an average hour weighs 1: the peak hour weighs 3k, the
    # others k, with k = 168/170. Peak-weighted cart loses 3k of 26k weighted hours, flat cart 1 of 24.
    k = 168 / 170
    assert report.weighted_availability == pytest.approx(1 - (3 * k + 1) / (26 * k + 24))


def test_weekly_trends_split_the_period_at_iso_week_boundaries() -> None:
    period = Period(at(3 * 24), at(17 * 24))  # Thursday of week 1 to Thursday of week 3
    outages = [
        Outage(at(4 * 24), at(4 * 24 + 2)),  # Friday, week 1
        Outage(at(7 * 24 - 1), at(7 * 24 + 1)),  # across Sunday midnight into week 2
        Outage(at(15 * 24)),  # open, Tuesday of week 3, until now
    ]
    now = at(16 * 24)
    weeks = weekly([(Timeline.of(outages, [], now), None)], period)
    assert [monday for monday, _ in weeks] == [at(0), at(7 * 24), at(14 * 24)]
    first, second, third = (report for _, report in weeks)
    assert first.period_start == at(3 * 24)  # the period's own start, not the Monday
    assert first.observed_seconds == 4 * 24 * H
    assert first.downtime_seconds == 3 * H  # 2 h on Friday, 1 h on Sunday night
    assert first.incidents == 2
    assert second.downtime_seconds == 1 * H
    assert second.incidents == 0
    assert second.availability == pytest.approx(1 - 1 / 168)
    assert third.observed_seconds == 2 * 24 * H  # Monday to now
    assert third.downtime_seconds == 24 * H
    assert third.mttr_seconds is None
