"""Experiments benchmark: each number beside a baseline measured in the same run.

Run it with ``.venv/bin/python bench/experiments.py [--quick] [--json PATH] [--rounds N] [--users N]
[--events N] [--clients N] [--results-events N] [--parts 1,2,3]``.

1. Assignment: SDK evaluations per second of one experiment (2 variations, 50/50,
   coverage 0.02, hash version 2) with ``podium.sdk.Client.variant`` (definitions fetched
   over HTTP from a loopback server, exposures queued as in an app), against the
   ``growthbook`` package's ``GrowthBook.run(Experiment(...))`` on the same users, for two
   shapes of user id; also ``CompiledExperiment.assign`` alone, with and without the C hash
   (``fnv-hash-fast``; an app whose environment lacks it runs the pure-Python loop). Every
   user's variation must be the same on every side.

2. Event ingestion: events per second through ``POST /api/v1/events`` of a live server
   (uvicorn on 127.0.0.1, in a process of its own, SQLite store), ``--clients`` concurrent
   keep-alive clients sending batches of 1,000 until ``--events`` are sent or 60 s pass.
   Then the stored count must equal the sent count, and one batch sent again must add 0.
   Baseline in the same run: the same rows inserted straight into a fresh store of the same
   schema with a SQLAlchemy ``executemany`` (no HTTP, no checks, no duplicate handling).
   Also the store side alone (checks and insert, in process, CPU time so that a loaded
   machine weighs on both alike): today's ``ingest`` against the SQLAlchemy insert it used
   before, batch by batch in turn.
3. Results of an experiment with ``--results-events`` events (default 10,000,000), written
   straight into SQLite with one ``INSERT … SELECT`` over a recursive counter (secondary
   indexes dropped during the load and rebuilt after): seconds for ``ResultsService.results``
   (primary metric and one guardrail), and with a segment. Baseline: ``SELECT count(*)``
   over the same table. Then a guardrail round: aggregating every event (what each round
   did before) against the kept tally (``podium.experiments.tally``) after 1,000 new events,
   whose counts must equal a tally built from every event.

``--quick`` runs a smaller version of each part (about a minute in all).

It is a report, not a test: it exits non-zero only when a step fails (a user who gets a
different variation from Podium than from GrowthBook, a stored count that differs from
the sent count, a server that does not start).
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from growthbook import Experiment, GrowthBook
from sqlalchemy import insert, select, text

from podium.catalog.auth import Actor, authenticate
from podium.config import Settings
from podium.core import Podium
from podium.experiments.assign import CompiledExperiment, assign
from podium.experiments.events import EVENTS, EventService, ingest, insert_ignoring_duplicates, parse_event
from podium.experiments.guardrails import metric_trip
from podium.experiments.models import Experiment as ExperimentRow
from podium.experiments.results import ResultsService
from podium.experiments.service import ExperimentService
from podium.experiments.tally import Tally
from podium.runtime.ports import free_port
from podium.sdk import Client
from podium.store.db import Store

ROOT = Path(__file__).resolve().parent.parent
USERS = 200_000
ROUNDS = 3
KEY = "signup-button"
VARIATIONS = ["control", "bigger-button"]
WEIGHTS = [0.5, 0.5]
COVERAGE = 0.02
TARGET_RATIO = 10.0

INGEST_EVENTS = 200_000
INGEST_CLIENTS = 3
INGEST_BATCH = 1_000
INGEST_SECONDS = 60.0  # the load stops here even if not every event was sent
RESULTS_EVENTS = 10_000_000
RESULTS_ROUNDS = 3
QUICK = {"users": 50_000, "rounds": 1, "events": 50_000, "results_events": 1_000_000}

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


def podium_pure() -> Evaluator:
    """``CompiledExperiment.assign`` without the C hash: an app whose environment lacks fnv-hash-fast."""
    experiment = CompiledExperiment(KEY, VARIATIONS, WEIGHTS, COVERAGE, accelerated=None)

    def evaluate(users: Sequence[str]) -> list[str | None]:
        return [experiment.assign(user_id) for user_id in users]

    return evaluate


DEFINITIONS = {
    "service": "bench", "env": "production", "flags": [],
    "experiments": [{
        "key": KEY, "status": "running", "variants": VARIATIONS, "weights": WEIGHTS, "coverage": COVERAGE,
        "seed": KEY, "hash_version": 2, "namespace": None, "conditions": {}, "force": None,
    }],
}  # fmt: skip


@contextlib.contextmanager
def definitions_server() -> Iterator[str]:
    """A loopback HTTP server answering the SDK's definitions request, so the client below is the real one."""
    body = json.dumps(DEFINITIONS).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("ETag", '"bench"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def podium_sdk(url: str) -> Evaluator:
    """``podium.sdk.Client.variant``: definitions fetched over HTTP, exposures queued (not sent) as in an app."""

    def evaluate(users: Sequence[str]) -> list[str | None]:
        client = Client(url, "bench-token", "bench", "production", start=False)
        if not client.refresh():
            raise BenchFailed(f"the SDK could not fetch definitions from {url}: {client.last_error}")
        out = [client.variant(KEY, user_id) for user_id in users]
        if client.pending != sum(v is not None for v in out):
            raise BenchFailed("the SDK did not queue one exposure per exposed user")
        return out

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
    with definitions_server() as url:
        return _bench_assignment(users, rounds, url)


def _bench_assignment(users: int, rounds: int, url: str) -> dict[str, Any]:
    contenders: dict[str, Evaluator] = {
        "podium_sdk": podium_sdk(url),
        "podium_compiled": podium_compiled(),
        "podium_pure": podium_pure(),
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
            "ratio_vs_growthbook_per_user": rates["podium_sdk"] / rates["growthbook_per_user"],
            "ratio_vs_growthbook_shared": rates["podium_sdk"] / rates["growthbook_shared"],
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
        "podium_sdk": "podium.sdk Client.variant (the SDK an app uses)",
        "podium_compiled": "podium CompiledExperiment.assign",
        "podium_pure": "  the same without fnv-hash-fast (pure Python)",
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
                f"     SDK ratio vs growthbook {baseline:<9} {ratio:6.1f}x  ({verdict} the {TARGET_RATIO:.0f}x target)"
            )
        lines.append(
            f"     identical assignments: {numbers['identical_users']:,} of {numbers['identical_users']:,} users "
            f"({numbers['exposed']:,} exposed)"
        )
    return lines


# Part 2: ingestion through the HTTP API ----------------------------------------------------

SERVER = """
import sys
import uvicorn
from pathlib import Path
from podium.api.app import create_app
from podium.config import Settings
from podium.core import Podium

settings = Settings(data_dir=Path(sys.argv[1]), port=int(sys.argv[2]))
core = Podium(settings)
core.start()
try:
    uvicorn.run(create_app(core), host="127.0.0.1", port=settings.port, log_level="warning")
finally:
    core.close()
"""


def event_batches(count: int, run: str) -> list[list[dict[str, Any]]]:
    """``count`` events in batches of ``INGEST_BATCH``: one exposure (with attributes) for every four metric events."""
    events: list[dict[str, Any]] = []
    for i in range(count):
        user = f"user-{i // 5}"
        if i % 5 == 0:
            events.append({"id": f"{run}-{i}", "type": "exposure", "user_id": user, "experiment": KEY,
                           "variant": VARIATIONS[i // 5 % 2], "attributes": {"profession": "marketing", "plan": 2}})
        else:
            events.append({"id": f"{run}-{i}", "type": "metric", "user_id": user,
                           "name": ("signup", "error", "pageview", "pageview")[i % 5 - 1], "value": 1.0})
    return [events[i:i + INGEST_BATCH] for i in range(0, count, INGEST_BATCH)]


class Server:
    """``podium``'s API in a uvicorn process of its own on 127.0.0.1, with a fresh data dir and SQLite store."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="pd-bench-exp-"))
        self.settings = Settings(data_dir=self.data_dir, port=free_port())
        self.url = f"http://127.0.0.1:{self.settings.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(self.data_dir), str(self.settings.port)], cwd=ROOT,
        )
        deadline = time.monotonic() + 120  # a shared machine under load can take a minute to start it
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise BenchFailed("the Podium server did not start")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def stored(self) -> int:
        path = self.settings.store_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT count(*) FROM experiment_events").fetchone()[0])


def team_token(url: str, admin_token: str) -> str:
    """A token of team ``bench-team``, which owns service ``shop`` (created here)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30) as admin:
        admin.post("/api/v1/teams", json={"name": "bench-team"}).raise_for_status()
        admin.post("/api/v1/services", json={"name": "shop", "owner": "bench-team"}).raise_for_status()
        token: str = admin.post("/api/v1/teams/bench-team/tokens", json={}).json()["token"]
        return token


def send_all(url: str, token: str, bodies: list[bytes], clients: int) -> tuple[float, int, list[float]]:
    """Post every body with ``clients`` keep-alive clients; (seconds, accepted, per-batch seconds)."""
    pending: Iterator[bytes] = iter(bodies)
    lock = threading.Lock()
    latencies: list[float] = []
    accepted = [0]
    deadline = time.monotonic() + INGEST_SECONDS
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    body = next(pending, None)
                if body is None:
                    return
                began = time.perf_counter()
                response = client.post("/api/v1/events", content=body)
                elapsed = time.perf_counter() - began
                if response.status_code != 200:
                    raise BenchFailed(f"POST /api/v1/events answered {response.status_code}: {response.text[:200]}")
                with lock:
                    latencies.append(elapsed)
                    accepted[0] += response.json()["accepted"]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    return time.perf_counter() - started, accepted[0], latencies


def direct_insert(batches: list[list[dict[str, Any]]]) -> float:
    """Baseline: the same rows, already parsed, inserted straight into a fresh store, one transaction per batch."""
    data_dir = Path(tempfile.mkdtemp(prefix="pd-bench-exp-"))
    try:
        core = Podium(Settings(data_dir=data_dir))
        core.start()
        admin = admin_actor(core)
        core.catalog.create_team(admin, "bench-team")
        core.catalog.create_service(admin, "shop", "bench-team", "", "production")
        environment_id = environment_of(core.store)
        now = datetime.now(UTC)
        rows = [[parse_event(event, environment_id, now) for event in batch] for batch in batches]
        started = time.perf_counter()
        for batch in rows:
            with core.store.session() as session:
                session.execute(insert(EVENTS), batch)
        elapsed = time.perf_counter() - started
        core.close()
        return elapsed
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def sqlalchemy_ingest(session: Any, environment_id: int, events: list[dict[str, Any]]) -> int:
    """How ``ingest`` stored a batch before: SQLAlchemy's multi-row INSERT … ON CONFLICT … RETURNING."""
    moment = datetime.now(UTC)
    rows = [parse_event(raw, environment_id, moment) for raw in events]
    return len(session.execute(insert_ignoring_duplicates(session).returning(EVENTS.c.id), rows).all())


def ingest_cpu(batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """CPU seconds of the store side of ingestion, checks included, old and new way, batch by batch in turn.

    Measured in process time, so a loaded machine changes both the same way. Each way writes
    into a fresh store of its own.
    """
    spent = {"before": 0.0, "after": 0.0}
    stored = {"before": 0, "after": 0}
    with tempfile.TemporaryDirectory(prefix="pd-bench-cpu-") as root:
        stores = {}
        for way in spent:
            stores[way] = Store(f"sqlite:///{root}/{way}.db")
            stores[way].migrate()
        for batch in batches:
            for way, store in stores.items():
                with store.session() as session:
                    session.execute(text("PRAGMA foreign_keys=OFF"))  # no service rows in these stores
                    started = time.process_time()
                    if way == "before":
                        stored[way] += sqlalchemy_ingest(session, 1, batch)
                    else:
                        stored[way] += ingest(session, 1, batch).accepted
                    spent[way] += time.process_time() - started
        for store in stores.values():
            store.dispose()
    if stored["before"] != stored["after"]:
        raise BenchFailed(f"the two ways stored {stored['before']:,} and {stored['after']:,} events")
    events = sum(len(b) for b in batches)
    return {"cpu_events_per_second_before": events / spent["before"],
            "cpu_events_per_second_after": events / spent["after"]}


def bench_ingestion(count: int = INGEST_EVENTS, clients: int = INGEST_CLIENTS) -> dict[str, Any]:
    """Part 2: events/s through POST /api/v1/events, the stored count, a resent batch; beside direct inserts."""
    run = uuid.uuid4().hex[:8]
    batches = event_batches(count, run)
    bodies = [json.dumps({"service": "shop", "env": "production", "events": b}).encode() for b in batches]
    with Server() as server:
        token = team_token(server.url, server.settings.admin_token_path.read_text().strip())
        seconds, accepted, latencies = send_all(server.url, token, bodies, clients)
        sent = len(latencies) * INGEST_BATCH
        stored = server.stored()
        if not accepted == stored == sent:
            raise BenchFailed(f"sent {sent:,} events, the API accepted {accepted:,}, the store holds {stored:,}")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            again = client.post("/api/v1/events", content=bodies[0], headers={"Content-Type": "application/json"})
        resent = again.json()
        if resent["accepted"] != 0 or resent["duplicates"] != len(batches[0]) or server.stored() != stored:
            raise BenchFailed(f"a batch sent again was not all duplicates: {resent}")
    baseline = direct_insert(batches[: len(latencies)])
    cpu = ingest_cpu(batches[: len(latencies)])
    latencies.sort()
    return {
        **cpu,
        "events": sent, "batch": INGEST_BATCH, "clients": clients, "seconds": seconds,
        "events_per_second": sent / seconds, "stored": stored, "accepted": accepted,
        "resent_batch": resent, "batch_seconds_p50": latencies[len(latencies) // 2],
        "batch_seconds_p95": latencies[int(len(latencies) * 0.95)],
        "baseline_seconds": baseline, "baseline_events_per_second": sent / baseline,
        "ratio_vs_direct_insert": (sent / seconds) / (sent / baseline),
    }


def report_ingestion(result: dict[str, Any]) -> list[str]:
    return [
        f"2. ingestion: {result['events']:,} events in batches of {result['batch']:,}, {result['clients']} clients, "
        "POST /api/v1/events on a live server (uvicorn, SQLite)",
        f"     through the API                {result['events_per_second']:>12,.0f} events/s  "
        f"({result['seconds']:.1f} s; a batch: p50 {result['batch_seconds_p50'] * 1000:.0f} ms, "
        f"p95 {result['batch_seconds_p95'] * 1000:.0f} ms)",
        f"     baseline: direct executemany   {result['baseline_events_per_second']:>12,.0f} events/s  "
        f"({result['baseline_seconds']:.1f} s)",
        f"     ratio API / direct insert      {result['ratio_vs_direct_insert']:6.2f}",
        f"     store side, per CPU-second:    {result['cpu_events_per_second_after']:>12,.0f} events/s  (now: one "
        f"executemany) against {result['cpu_events_per_second_before']:,.0f} (before: SQLAlchemy's insert), "
        f"ratio {result['cpu_events_per_second_after'] / result['cpu_events_per_second_before']:.2f}",
        f"     stored {result['stored']:,} = sent {result['events']:,}; a batch sent again: "
        f"accepted {result['resent_batch']['accepted']}, duplicates {result['resent_batch']['duplicates']:,}",
    ]


# Part 3: results over millions of events ----------------------------------------------------

# One statement writes every event: exposures first (each user once, every fifth user twice,
# later), then metric events of exposed users and of some never exposed, at times around
# the exposures (a few before them, which do not count).
GENERATE = """
WITH RECURSIVE counter(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM counter WHERE i < :total - 1),
events(i, exposure, user) AS (
    SELECT i, i < :exposures,
           CASE WHEN i < :users THEN i WHEN i < :exposures THEN (i - :users) * 5 % :users
                ELSE i * 2654435761 % (:users + :users / 4) END
    FROM counter
)
INSERT INTO experiment_events
    (environment_id, event_id, type, user_id, experiment, variant, name, value, attributes, at, received_at)
SELECT :environment_id, printf('b%010d', i),
       CASE WHEN exposure THEN 'exposure' ELSE 'metric' END,
       'user-' || user,
       CASE WHEN exposure THEN :key END,
       CASE WHEN exposure THEN CASE WHEN user * 2654435761 % 1000 < 500 THEN :control ELSE :treatment END END,
       CASE WHEN exposure THEN NULL WHEN i % 10 = 0 THEN 'signup' WHEN i % 10 = 1 THEN 'error' ELSE 'pageview' END,
       CASE WHEN exposure THEN 1.0 ELSE i % 7 + 0.5 END,
       CASE WHEN exposure THEN
            CASE WHEN user % 3 = 0 THEN '{"profession": "marketing"}' ELSE '{"profession": "engineering"}' END END,
       datetime(:base, '+' || CASE WHEN i < :users THEN user % 36000 WHEN exposure THEN 40000
                                   ELSE i * 7 % 50000 END || ' seconds') || '.000000',
       :base
FROM events
"""


def admin_actor(core: Podium) -> Actor:
    with core.store.session() as session:
        return authenticate(session, core.settings.admin_token_path.read_text().strip())


def environment_of(store: Store, env: str = "production") -> int:
    with store.session() as session:
        environment_id: int = session.execute(
            text("SELECT e.id FROM environments e JOIN services s ON s.id = e.service_id "
                 "WHERE s.name = 'shop' AND e.name = :env"), {"env": env},
        ).scalar_one()
        return environment_id


def generate_events(path: str, environment_id: int, total: int) -> dict[str, Any]:
    """Write ``total`` events of experiment KEY straight into the SQLite store at ``path``."""
    users = max(total // 20, 10)
    exposures = users + users // 5
    base = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    conn = sqlite3.connect(path)
    try:
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'experiment_events' "
            "AND sql IS NOT NULL"
        ).fetchall()
        started = time.perf_counter()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(GENERATE, {
            "total": total, "users": users, "exposures": exposures, "environment_id": environment_id, "key": KEY,
            "control": VARIATIONS[0], "treatment": VARIATIONS[1], "base": base,
        })
        loaded = time.perf_counter() - started
        for _, sql in indexes:
            conn.execute(sql)
        conn.commit()
        indexed = time.perf_counter() - started - loaded
    finally:
        conn.close()
    return {"events": total, "users": users, "exposures": exposures, "insert_seconds": loaded,
            "index_seconds": indexed}


def timed_median(rounds: int, run: Callable[[], object], cpu: list[float] | None = None) -> tuple[float, Any]:
    """The median wall seconds of ``rounds`` runs and the last value; ``cpu`` gets the median CPU seconds."""
    samples, spent, value = [], [], None
    for _ in range(rounds):
        started, began = time.perf_counter(), time.process_time()
        value = run()
        samples.append(time.perf_counter() - started)
        spent.append(time.process_time() - began)
    if cpu is not None:
        cpu.append(statistics.median(spent))
    return statistics.median(samples), value


def bench_guardrail_round(core: Podium, admin: Actor, rounds: int) -> dict[str, Any]:
    """A guardrail round's seconds: aggregating every event (before) against the kept tally after 1,000 new events."""
    with core.store.session() as session:
        experiment = session.scalars(select(ExperimentRow).where(ExperimentRow.key == KEY)).one()
        full, _ = timed_median(rounds, lambda: metric_trip(session, experiment, 0.01))
        tally = Tally.of(experiment)
        started = time.perf_counter()
        metric_trip(session, experiment, 0.01, tally)
        built = time.perf_counter() - started
    sender, samples = EventService(core.store), []
    for round_ in range(rounds):
        batch = [{"id": f"late-{round_}-{i}", "type": "metric" if i % 4 else "exposure", "user_id": f"late-{i}",
                  "name": "error", "experiment": KEY, "variant": VARIATIONS[i % 2]} for i in range(1_000)]
        sender.record(admin, "shop", "production", batch)
        with core.store.session() as session:
            experiment = session.scalars(select(ExperimentRow).where(ExperimentRow.key == KEY)).one()
            started = time.perf_counter()
            metric_trip(session, experiment, 0.01, tally)
            samples.append(time.perf_counter() - started)
    with core.store.session() as session:
        experiment = session.scalars(select(ExperimentRow).where(ExperimentRow.key == KEY)).one()
        expected = Tally.of(experiment)
        expected.update(session)
    if expected.counts() != tally.counts():
        raise BenchFailed("the kept guardrail tally differs from one built from every event")
    return {"guardrail_full_seconds": full, "guardrail_tally_build_seconds": built,
            "guardrail_tally_round_seconds": statistics.median(samples)}


def bench_results(total: int = RESULTS_EVENTS, rounds: int = RESULTS_ROUNDS) -> dict[str, Any]:
    """Part 3: seconds to compute an experiment's results over ``total`` events, beside SELECT count(*)."""
    data_dir = Path(tempfile.mkdtemp(prefix="pd-bench-exp-"))
    try:
        core = Podium(Settings(data_dir=data_dir))
        core.start()
        admin = admin_actor(core)
        core.catalog.create_team(admin, "bench-team")
        core.catalog.create_service(admin, "shop", "bench-team", "", "production")
        experiments = ExperimentService(core.settings, core.store)
        experiments.create(admin, "shop", "production", KEY, metric="signup", variants=VARIATIONS,
                           weights=WEIGHTS, coverage=COVERAGE, guardrails=["error"])
        experiments.start(admin, "shop", "production", KEY)
        generated = generate_events(core.settings.store_url.removeprefix("sqlite:///"), environment_of(core.store),
                                    total)
        results = ResultsService(core.store)

        def count() -> int:
            with core.store.session() as session:
                return int(session.execute(text("SELECT count(*) FROM experiment_events")).scalar_one())

        stored = count()
        if stored != total:
            raise BenchFailed(f"generated {total:,} events, the store holds {stored:,}")
        baseline, _ = timed_median(rounds, count)
        cpu: list[float] = []  # SQLite works in this process: its CPU time is the query's, whatever the load
        seconds, document = timed_median(rounds, lambda: results.results("shop", "production", KEY), cpu)
        segment_seconds, segmented = timed_median(
            rounds, lambda: results.results("shop", "production", KEY, segment="profession=marketing"))
        numeric_seconds, _ = timed_median(
            rounds, lambda: results.results("shop", "production", KEY, metric="pageview"))
        daily_seconds, daily = timed_median(rounds, lambda: results.over_time("shop", "production", KEY), cpu)
        if daily["days"][-1]["variants"][1]["users"] != document["variants"][1]["users"]:
            raise BenchFailed("the last day of the results over time differs from the results")
        guardrails = bench_guardrail_round(core, admin, rounds)
        core.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    exposed = sum(v["users"] for v in document["variants"])
    if exposed != generated["users"]:
        raise BenchFailed(f"{generated['users']:,} users were exposed, the results count {exposed:,}")
    return {
        **generated, "rounds": rounds, "seconds": seconds, "segment_seconds": segment_seconds,
        "other_metric_seconds": numeric_seconds, "daily_seconds": daily_seconds, "days": len(daily["days"]),
        "cpu_seconds": cpu[0], "daily_cpu_seconds": cpu[1],
        "count_seconds": baseline, "ratio_vs_count": seconds / baseline,
        **guardrails,
        "variants": [{k: v[k] for k in ("name", "users", "conversions", "rate", "lift", "p_value")}
                     for v in document["variants"]],
        "segment_users": [v["users"] for v in segmented["segment"]["segment"]["variants"]],
    }


def report_results(result: dict[str, Any]) -> list[str]:
    control, treatment = result["variants"]
    return [
        f"3. results: {result['events']:,} events ({result['exposures']:,} exposures of {result['users']:,} users), "
        f"SQLite, median of {result['rounds']}",
        f"     generated in {result['insert_seconds']:.1f} s, indexed in {result['index_seconds']:.1f} s",
        f"     results (signup + guardrail error)   {result['seconds']:7.2f} s   "
        f"({result['cpu_seconds']:.2f} s of CPU)",
        f"     with segment profession=marketing    {result['segment_seconds']:7.2f} s",
        f"     another metric (pageview)            {result['other_metric_seconds']:7.2f} s",
        f"     results over time ({result['days']} days)       {result['daily_seconds']:7.2f} s   "
        f"({result['daily_cpu_seconds']:.2f} s of CPU)",
        f"     baseline: SELECT count(*)            {result['count_seconds']:7.2f} s",
        f"     ratio results / count(*)             {result['ratio_vs_count']:7.1f}",
        f"     a guardrail round, every event       {result['guardrail_full_seconds']:7.2f} s   (before)",
        f"     a guardrail round, kept tally        {result['guardrail_tally_round_seconds']:7.3f} s   "
        f"(after 1,000 new events; built once in {result['guardrail_tally_build_seconds']:.2f} s), "
        f"ratio {result['guardrail_full_seconds'] / result['guardrail_tally_round_seconds']:.0f}x",
        f"     users {control['users']:,} / {treatment['users']:,}, conversions {control['conversions']:,} / "
        f"{treatment['conversions']:,}",
    ]


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
    parser.add_argument("--quick", action="store_true", help="A smaller run of every part (about a minute).")
    parser.add_argument("--parts", default="1,2,3", help="Which parts to run (default 1,2,3).")
    parser.add_argument("--users", type=int, help=f"Part 1: users per id shape (default {USERS:,}).")
    parser.add_argument("--rounds", type=int, help=f"Part 1: timed rounds, median taken (default {ROUNDS}).")
    parser.add_argument("--events", type=int, help=f"Part 2: events to send (default {INGEST_EVENTS:,}).")
    parser.add_argument("--clients", type=int, default=INGEST_CLIENTS,
                        help=f"Part 2: concurrent clients (default {INGEST_CLIENTS}).")
    parser.add_argument("--results-events", type=int,
                        help=f"Part 3: events of the experiment (default {RESULTS_EVENTS:,}).")
    args = parser.parse_args()
    quick: dict[str, int] = QUICK if args.quick else {}
    parts = {part.strip() for part in args.parts.split(",")}

    report: dict[str, Any] = {"environment": environment()}
    status = 0
    try:
        if "1" in parts:
            report["assignment"] = bench_assignment(args.users or quick.get("users", USERS),
                                                    args.rounds or quick.get("rounds", ROUNDS))
            print("\n".join(report_assignment(report["assignment"])), flush=True)
        if "2" in parts:
            report["ingestion"] = bench_ingestion(args.events or quick.get("events", INGEST_EVENTS), args.clients)
            print("\n".join(report_ingestion(report["ingestion"])), flush=True)
        if "3" in parts:
            report["results"] = bench_results(args.results_events or quick.get("results_events", RESULTS_EVENTS),
                                              args.rounds or quick.get("rounds", RESULTS_ROUNDS))
            print("\n".join(report_results(report["results"])), flush=True)
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
