"""Metrics benchmark: the pure core over 1,000,000 incidents and 1,000,000 deploys, beside SQL.

Run it with ``.venv/bin/python bench/health_metrics.py [--json PATH]``. It draws a year of
synthetic incidents (overlapping ones included; those that outlast the year still open)
and production deploys for a few hundred services with NumPy, then measures, all in the
same run:

1. the pure core computing, per service, availability, weighted availability (office-hours
   weights), MTTR, MTTA and MTBF, against the baseline: the same incidents in an in-memory
   SQLite table and ``SELECT service, AVG(resolved - triggered), SUM(...) ... GROUP BY
   service``. The MTTR of every service must agree between the two. (The SQL sum of
   durations is not downtime: it counts overlapping incidents twice; the core merges them.)
2. the DORA keys per team (deploys, change failure rate, median lead time) against
   ``SELECT team, COUNT(*), AVG(failed) ... GROUP BY team``; counts and rates must agree.
3. one service with all 1,000,000 incidents in one timeline: from arrays, and from the
   ``Outage`` dataclasses (conversion included).

It is a report, not a test: it exits non-zero only when the two sides disagree or the run
takes longer than its limit.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from podium.metrics import (
    DeployColumns,
    HourWeights,
    Outage,
    Period,
    Timeline,
    dora_report,
    measure,
    summarize,
    tally,
)

RUN_LIMIT = 120.0
YEAR = 365 * 86400.0
START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
END = START + timedelta(seconds=YEAR)
NOW = END  # incidents resolved after the year's end are still open: they run until now
SERVICES_PER_TEAM = 10


@dataclass
class Synthetic:
    """Columns of the drawn incidents and deploys."""

    service: NDArray[np.int64]
    triggered: NDArray[np.float64]
    resolved: NDArray[np.float64]
    acknowledged: NDArray[np.float64]  # NaN: never acknowledged
    maintenance: list[tuple[NDArray[np.float64], NDArray[np.float64]]]  # per service
    deploy_team: NDArray[np.int64]
    live_at: NDArray[np.float64]
    change_at: NDArray[np.float64]  # NaN: a config change
    failed: NDArray[np.bool_]


def draw(incidents: int, deploys: int, services: int, seed: int) -> Synthetic:
    """A year of incidents and deploys; some services fail more often than others.

    A million incidents on a few hundred services is about ten a day each, so most are
    short blips (median 2 minutes), with a long tail; some overlap.
    """
    rng = np.random.default_rng(seed)
    start = START.timestamp()
    proneness = rng.lognormal(0, 0.5, services)
    service = rng.choice(services, size=incidents, p=proneness / proneness.sum())
    triggered = start + rng.uniform(0, YEAR, incidents)
    lasted = np.minimum(rng.lognormal(np.log(120), 1.0, incidents), 7 * 86400)
    resolved = triggered + lasted
    acknowledged = np.where(rng.random(incidents) < 0.7, triggered + rng.exponential(240, incidents), np.nan)
    maintenance = []
    for _ in range(services):
        begins = start + rng.uniform(0, YEAR, 6)
        maintenance.append((begins, begins + rng.uniform(1800, 4 * 3600, 6)))
    teams = services // SERVICES_PER_TEAM + 1
    live_at = start + rng.uniform(0, YEAR, deploys)
    change_at = np.where(rng.random(deploys) < 0.8, live_at - rng.lognormal(np.log(2 * 3600), 1.0, deploys), np.nan)
    return Synthetic(
        service=service, triggered=triggered, resolved=resolved, acknowledged=acknowledged, maintenance=maintenance,
        deploy_team=rng.integers(0, teams, deploys), live_at=live_at, change_at=change_at,
        failed=rng.random(deploys) < 0.12,
    )


def office_hours() -> HourWeights:
    """Weekdays 08:00-20:00 UTC weigh 4, other hours 1."""
    return HourWeights([4.0 if day < 5 and 8 <= hour < 20 else 1.0 for day in range(7) for hour in range(24)])


def groups(keys: NDArray[np.int64], count: int) -> list[NDArray[np.int64]]:
    """Row indexes per key 0..count-1, with one sort."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(count + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(count)]


def core_availability(data: Synthetic, services: int) -> tuple[float, dict[int, dict[str, Any]]]:
    """Seconds, and per service the core's numbers over the year."""
    started = time.perf_counter()
    weights = office_hours()
    period = Period(START, END)
    begin, end, now = START.timestamp(), END.timestamp(), NOW.timestamp()
    found: dict[int, dict[str, Any]] = {}
    for sid, rows in enumerate(groups(data.service, services)):
        starts, ends = data.maintenance[sid]
        timeline = Timeline.from_arrays(now, data.triggered[rows], data.resolved[rows], data.acknowledged[rows],
                                        None, starts, ends)
        report = summarize(tally(timeline, begin, end, weights), period)
        found[sid] = {"incidents": report.incidents, "mttr": report.mttr_seconds, "mtbf": report.mtbf_seconds,
                      "availability": report.availability, "weighted": report.weighted_availability,
                      "downtime": report.downtime_seconds}
    return time.perf_counter() - started, found


def load_sqlite(data: Synthetic) -> tuple[float, sqlite3.Connection]:
    started = time.perf_counter()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE incidents (service INTEGER, triggered REAL, resolved REAL, acknowledged REAL)")
    db.execute("CREATE TABLE deploys (team INTEGER, live_at REAL, change_at REAL, failed INTEGER)")

    def nullable(values: NDArray[np.float64]) -> list[float | None]:
        return [None if v != v else v for v in values.tolist()]  # NaN is the only value not equal to itself

    db.executemany("INSERT INTO incidents VALUES (?, ?, ?, ?)", zip(
        data.service.tolist(), data.triggered.tolist(), data.resolved.tolist(), nullable(data.acknowledged),
        strict=True,
    ))
    db.executemany("INSERT INTO deploys VALUES (?, ?, ?, ?)", zip(
        data.deploy_team.tolist(), data.live_at.tolist(), nullable(data.change_at), data.failed.astype(int).tolist(),
        strict=True,
    ))
    db.commit()
    return time.perf_counter() - started, db


SQL_AVAILABILITY = """
SELECT service,
       COUNT(*),
       AVG(CASE WHEN resolved <= :end THEN resolved - triggered END),
       SUM(MIN(resolved, :end) - triggered)
FROM incidents
WHERE triggered >= :start AND triggered < :end
GROUP BY service
"""
SQL_DORA = """
SELECT team, COUNT(*), AVG(failed), AVG(live_at - change_at)
FROM deploys
WHERE live_at >= :start AND live_at < :end
GROUP BY team
"""


def sql_query(db: sqlite3.Connection, query: str) -> tuple[float, list[tuple[Any, ...]]]:
    started = time.perf_counter()
    rows = db.execute(query, {"start": START.timestamp(), "end": END.timestamp()}).fetchall()
    return time.perf_counter() - started, rows


def core_dora(data: Synthetic) -> tuple[float, dict[int, dict[str, Any]]]:
    started = time.perf_counter()
    period = Period(START, END)
    teams = int(data.deploy_team.max()) + 1
    found: dict[int, dict[str, Any]] = {}
    for team, rows in enumerate(groups(data.deploy_team, teams)):
        columns = DeployColumns.from_arrays(data.live_at[rows], data.change_at[rows], data.failed[rows])
        report = dora_report(columns, [], period, NOW)
        found[team] = {"deploys": report.deploys, "cfr": report.change_failure_rate,
                       "lead": report.lead_time_seconds, "per_day": report.deployment_frequency_per_day}
    return time.perf_counter() - started, found


def one_timeline(data: Synthetic) -> dict[str, float]:
    """All incidents as one service: from columns, and from dataclasses."""
    period = Period(START, END)
    started = time.perf_counter()
    timeline = Timeline.from_arrays(NOW.timestamp(), data.triggered, data.resolved, data.acknowledged)
    report = measure([(timeline, office_hours())], period)
    arrays = time.perf_counter() - started
    assert report.incidents == data.triggered.shape[0]

    def moment(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    outages = [
        Outage(moment(t), moment(r), None if a != a else moment(a))
        for t, r, a in zip(data.triggered.tolist(), data.resolved.tolist(), data.acknowledged.tolist(), strict=True)
    ]
    started = time.perf_counter()
    again = measure([(Timeline.of(outages, [], NOW), office_hours())], period)
    objects = time.perf_counter() - started
    assert again.incidents == report.incidents
    return {"from_arrays_s": arrays, "from_dataclasses_s": objects}


def agree(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"environment": {"python": platform.python_version(), "numpy": np.__version__,
                                              "sqlite": sqlite3.sqlite_version, "machine": platform.machine()},
                              "incidents": args.incidents, "deploys": args.deploys, "services": args.services}
    started = time.perf_counter()
    data = draw(args.incidents, args.deploys, args.services, args.seed)
    report["draw_s"] = time.perf_counter() - started
    print(f"drew {args.incidents:,} incidents and {args.deploys:,} deploys for {args.services} services "
          f"in {report['draw_s']:.2f} s", flush=True)

    report["sqlite_load_s"], db = load_sqlite(data)
    print(f"loaded them into in-memory SQLite in {report['sqlite_load_s']:.2f} s (not counted below)", flush=True)

    core_s, core = core_availability(data, args.services)
    sql_s, sql = sql_query(db, SQL_AVAILABILITY)
    mismatched = [sid for sid, count, mttr, _ in sql
                  if core[sid]["incidents"] != count or not agree(core[sid]["mttr"], mttr)]
    overlap = sum(s for *_, s in sql) / sum(c["downtime"] for c in core.values() if c["downtime"])
    report["availability"] = {"core_s": core_s, "sql_s": sql_s, "ratio": core_s / sql_s,
                              "services_compared": len(sql), "mttr_mismatches": len(mismatched),
                              "sql_sum_over_merged_downtime": overlap,
                              "median_availability": float(np.median([c["availability"] for c in core.values()])),
                              "median_weighted": float(np.median([c["weighted"] for c in core.values()])),
                              "median_mttr_s": float(np.median([c["mttr"] for c in core.values()])),
                              "median_mtbf_s": float(np.median([c["mtbf"] for c in core.values()]))}

    dora_core_s, dora = core_dora(data)
    dora_sql_s, dora_sql = sql_query(db, SQL_DORA)
    dora_mismatched = [team for team, count, cfr, _ in dora_sql
                       if dora[team]["deploys"] != count or not agree(dora[team]["cfr"], cfr)]
    report["dora"] = {"core_s": dora_core_s, "sql_s": dora_sql_s, "ratio": dora_core_s / dora_sql_s,
                      "teams_compared": len(dora_sql), "mismatches": len(dora_mismatched)}
    report["one_timeline"] = one_timeline(data)
    report["run_s"] = time.perf_counter() - started
    return report


def print_report(report: dict[str, Any]) -> None:
    a, d, one = report["availability"], report["dora"], report["one_timeline"]
    rows = [
        ("what", "core", "SQL GROUP BY", "core / SQL"),
        (f"availability, MTTR, MTTA, MTBF per service ({report['services']})",
         f"{a['core_s']:.3f} s", f"{a['sql_s']:.3f} s", f"{a['ratio']:.2f}x"),
        (f"DORA keys per team ({d['teams_compared']})", f"{d['core_s']:.3f} s", f"{d['sql_s']:.3f} s",
         f"{d['ratio']:.2f}x"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print(f"\nMTTR and incident counts agree for {a['services_compared'] - a['mttr_mismatches']} of "
          f"{a['services_compared']} services; deploy counts and change failure rates for "
          f"{d['teams_compared'] - d['mismatches']} of {d['teams_compared']} teams.")
    print(f"median over services: availability {a['median_availability']:.5f}, weighted "
          f"{a['median_weighted']:.5f}, MTTR {a['median_mttr_s']:.0f} s, MTBF {a['median_mtbf_s']:.0f} s")
    print(f"the SQL sum of incident durations is {a['sql_sum_over_merged_downtime']:.3f}x the merged downtime "
          f"(overlapping incidents counted twice, maintenance not left out)")
    print(f"one timeline of {report['incidents']:,} incidents: {one['from_arrays_s']:.2f} s from arrays, "
          f"{one['from_dataclasses_s']:.2f} s from Outage dataclasses (conversion included)")
    print(f"the whole run: {report['run_s']:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--deploys", type=int, default=1_000_000)
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="Also write the results as JSON to this file.")
    args = parser.parse_args()
    report = run(args)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failed = report["availability"]["mttr_mismatches"] or report["dora"]["mismatches"]
    if failed:
        print("bench/health_metrics.py: the core and SQL disagree", file=sys.stderr)
    if report["run_s"] > RUN_LIMIT:
        print(f"bench/health_metrics.py: took {report['run_s']:.0f} s, over {RUN_LIMIT:.0f} s", file=sys.stderr)
    return 1 if failed or report["run_s"] > RUN_LIMIT else 0


if __name__ == "__main__":
    sys.exit(main())
