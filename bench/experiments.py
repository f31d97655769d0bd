"""Experiments benchmark: each number beside a baseline measured in the same run.

Run it with ``.venv/bin/python bench/experiments.py [--json PATH] [--rounds N] [--users N]``.

1. Assignment: SDK-style evaluations per second of one experiment (2 variations, 50/50,
   coverage 0.02, hash version 2) with ``CompiledExperiment.assign``, against the
   ``growthbook`` package's ``GrowthBook.run(Experiment(...))`` on the same users, for two
   shapes of user id. Every user's variation must be the same on both sides.

It is a report, not a test: it exits non-zero only when a step fails (here: any user who
gets a different variation from Podium than from GrowthBook).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from growthbook import Experiment, GrowthBook

from podium.experiments.assign import CompiledExperiment, assign

ROOT = Path(__file__).resolve().parent.parent
USERS = 200_000
ROUNDS = 3
KEY = "signup-button"
VARIATIONS = ["control", "bigger-button"]
WEIGHTS = [0.5, 0.5]
COVERAGE = 0.02
TARGET_RATIO = 10.0

Evaluator = Callable[[Sequence[str]], list[str | None]]


class BenchFailed(Exception):
    """A step of the benchmark failed (not merely a slow number)."""


def user_ids(count: int, shape: str) -> list[str]:
    """``count`` distinct ids: ``user-<n>`` (short, like a database key) or random UUID4 strings."""
    if shape == "short":
        return [f"user-{i}" for i in range(count)]
    rng = random.Random(20_26)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def podium_compiled() -> Evaluator:
    """``CompiledExperiment.assign``: the experiment compiled once, as the SDK holds it."""
    experiment = CompiledExperiment(KEY, VARIATIONS, WEIGHTS, COVERAGE)

    def evaluate(users: Sequence[str]) -> list[str | None]:
        return [experiment.assign(user_id) for user_id in users]

    return evaluate


def podium_reference(users: Sequence[str]) -> list[str | None]:
    """``assign()``: the step-by-step reference, nothing precomputed."""
    return [assign(KEY, user_id, VARIATIONS, WEIGHTS, COVERAGE) for user_id in users]


def growthbook_experiment() -> Experiment[str]:
    return Experiment(key=KEY, variations=VARIATIONS, weights=WEIGHTS, coverage=COVERAGE, hashVersion=2)


def growthbook_per_user(users: Sequence[str]) -> list[str | None]:
    """One ``GrowthBook`` per user, as GrowthBook's docs set one up per request; the Experiment built once."""
    experiment = growthbook_experiment()
    out: list[str | None] = []
    for user_id in users:
        result = GrowthBook(attributes={"id": user_id}).run(experiment)
        out.append(result.value if result.inExperiment else None)
    return out


def growthbook_shared(users: Sequence[str]) -> list[str | None]:
    """One ``GrowthBook`` for everyone, ``set_attributes`` per user: the fastest use of the package we found."""
    experiment = growthbook_experiment()
    gb = GrowthBook(attributes={})
    out: list[str | None] = []
    for user_id in users:
        gb.set_attributes({"id": user_id})
        result = gb.run(experiment)
        out.append(result.value if result.inExperiment else None)
    return out


def timed(evaluate: Evaluator, users: Sequence[str]) -> tuple[float, list[str | None]]:
    started = time.perf_counter()
    variations = evaluate(users)
    return time.perf_counter() - started, variations


def check_identical(users: Sequence[str], expected: list[str | None], got: list[str | None], label: str) -> None:
    for user_id, want, have in zip(users, expected, got, strict=True):
        if want != have:
            raise BenchFailed(f"{label}: user {user_id!r} gets {have!r}, GrowthBook gives {want!r}")


def bench_assignment(users: int = USERS, rounds: int = ROUNDS) -> dict[str, Any]:
    """Part 1: evaluations per second, Podium against the growthbook package, same users, same run."""
    contenders: dict[str, Evaluator] = {
        "podium_compiled": podium_compiled(),
        "podium_reference": podium_reference,
        "growthbook_per_user": growthbook_per_user,
        "growthbook_shared": growthbook_shared,
    }
    shapes: dict[str, Any] = {}
    for shape in ("short", "uuid"):
        ids = user_ids(users, shape)
        seconds: dict[str, list[float]] = {name: [] for name in contenders}
        exposed = 0
        for _ in range(rounds):
            # Interleaved rounds, so a burst of load elsewhere on the machine hits every contender.
            _, expected = timed(growthbook_per_user, ids[:1])  # warm-up of imports and caches
            results: dict[str, list[str | None]] = {}
            for name, evaluate in contenders.items():
                elapsed, results[name] = timed(evaluate, ids)
                seconds[name].append(elapsed)
            expected = results["growthbook_per_user"]
            for name, got in results.items():
                check_identical(ids, expected, got, f"{shape} ids, {name}")
            exposed = sum(v is not None for v in expected)
        rates = {name: len(ids) / statistics.median(samples) for name, samples in seconds.items()}
        shapes[shape] = {
            "example_id": ids[0],
            "evaluations_per_second": rates,
            "ratio_vs_growthbook_per_user": rates["podium_compiled"] / rates["growthbook_per_user"],
            "ratio_vs_growthbook_shared": rates["podium_compiled"] / rates["growthbook_shared"],
            "seconds": seconds,
            "identical_users": len(ids),
            "exposed": exposed,
        }
    return {
        "experiment": {"key": KEY, "variations": VARIATIONS, "weights": WEIGHTS, "coverage": COVERAGE},
        "users": users,
        "rounds": rounds,
        "target_ratio": TARGET_RATIO,
        "shapes": shapes,
    }


def report_assignment(result: dict[str, Any]) -> list[str]:
    labels = {
        "podium_compiled": "podium CompiledExperiment.assign",
        "podium_reference": "podium assign() (nothing precomputed)",
        "growthbook_per_user": "growthbook: GrowthBook(attributes).run per user",
        "growthbook_shared": "growthbook: one GrowthBook, set_attributes + run",
    }
    lines = [
        f"1. assignment: {result['users']:,} users, coverage {COVERAGE}, {len(VARIATIONS)} variations, hash v2, "
        f"median of {result['rounds']} interleaved rounds"
    ]
    for shape, numbers in result["shapes"].items():
        lines.append(f"   ids like {numbers['example_id']!r} ({shape})")
        for name, rate in numbers["evaluations_per_second"].items():
            lines.append(f"     {labels[name]:<52} {rate:>12,.0f} evals/s")
        for baseline in ("per_user", "shared"):
            ratio = numbers[f"ratio_vs_growthbook_{baseline}"]
            verdict = "meets" if ratio >= TARGET_RATIO else "below"
            lines.append(
                f"     ratio vs growthbook {baseline:<9} {ratio:6.1f}x  ({verdict} the {TARGET_RATIO:.0f}x target)"
            )
        lines.append(
            f"     identical assignments: {numbers['identical_users']:,} of {numbers['identical_users']:,} users "
            f"({numbers['exposed']:,} exposed)"
        )
    return lines


def environment() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, help="Also write the results as JSON to this file.")
    parser.add_argument("--users", type=int, default=USERS, help=f"Users per id shape (default {USERS:,}).")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"Timed rounds, median taken (default {ROUNDS}).")
    args = parser.parse_args()

    report: dict[str, Any] = {"environment": environment()}
    status = 0
    try:
        report["assignment"] = bench_assignment(args.users, args.rounds)
        print("\n".join(report_assignment(report["assignment"])))
    except BenchFailed as exc:
        print(f"bench/experiments.py failed: {exc}", file=sys.stderr)
        report["error"] = str(exc)
        status = 1
    report["environment"]["loadavg_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
