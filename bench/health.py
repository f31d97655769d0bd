"""Checker benchmark: 1,000 checks at a 10 s interval, beside a plain asyncio + httpx loop.

Run it with ``.venv/bin/python bench/health.py [--checks 1000] [--interval 10]
[--seconds 60] [--json PATH]``. It makes a fresh store under /tmp with 100 services whose
production environments have a live release (rows only: no process runs), so each gets
its ``web`` check the way a deploy gives it one, plus 9 extra HTTP checks each. In place
of nginx, a few asyncio HTTP servers, each its own process, share the router port
(SO_REUSEPORT) and answer every request with a small JSON body.

Then, one after the other, for ``--seconds`` each:

1. the real ``Checker`` (its loop thread, its store thread writing results in batches,
   the state machine, incident hand-off): process CPU time / wall time, and how late each
   probe started against its fixed-rate schedule (p50, p99, max);
2. the baseline: the same number of requests on the same schedule from a plain asyncio
   loop with one ``httpx.AsyncClient`` and no bookkeeping at all (no store, no state).

The ratio of the two CPU fractions is what the checker's bookkeeping costs. The servers
run in other processes, so neither side's CPU includes answering. It is a report, not a
test: it exits non-zero only if a phase fails to probe or the run overruns its limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from podium.catalog.auth import Actor
from podium.catalog.models import PLATFORM_TEAM, Environment
from podium.config import Settings
from podium.core import Podium
from podium.deploy.models import Artifact, DeployState, Release, ReleaseStatus
from podium.health.checker import Checker, Lateness, next_due
from podium.health.models import Check, CheckKind, CheckResult, CheckState
from podium.runtime.ports import free_port, wait_for_port

RUN_LIMIT = 400.0  # seconds for the whole run, setup included
SERVERS = 3
CHECKS_PER_SERVICE = 10
GOLDEN = 0.6180339887498949

# A minimal keep-alive HTTP/1.1 server: reads a request head, answers 200 with a JSON body.
SERVER = r"""
import asyncio, sys
BODY = b'{"status": "ok"}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)

async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()

async def main(port):
    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_port=True, backlog=2048)
    async with server:
        await server.serve_forever()

asyncio.run(main(int(sys.argv[1])))
"""


@dataclass
class Phase:
    """What one side did over its run."""

    name: str
    wall: float
    cpu: float
    probes: int
    failed: int
    skipped: int
    lateness: Lateness

    @property
    def cpu_fraction(self) -> float:
        return self.cpu / self.wall

    def late_ms(self, q: float) -> float:
        value = self.lateness.percentile(q)
        return 1000 * value if value is not None else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall, 3), "cpu_s": round(self.cpu, 3), "cpu_fraction": round(self.cpu_fraction, 4),
            "probes": self.probes, "probes_per_s": round(self.probes / self.wall, 1), "failed": self.failed,
            "skipped_slots": self.skipped, "lateness_p50_ms": round(self.late_ms(0.5), 3),
            "lateness_p99_ms": round(self.late_ms(0.99), 3), "lateness_max_ms": round(self.late_ms(1.0), 3),
        }


def populate(core: Podium, checks: int, interval: float) -> None:
    """Services with a live release each, their web checks made by the checks service, and
    extra HTTP checks: ``checks`` in all."""
    admin = Actor(team=PLATFORM_TEAM, team_id=0, token_id=None)
    core.catalog.create_team(admin, "bench")
    services = -(-checks // CHECKS_PER_SERVICE)
    for n in range(services):
        core.catalog.create_service(admin, f"svc-{n}", "bench")
    with core.store.session() as session:
        environments = session.scalars(select(Environment).where(Environment.name == "production")).all()
        for environment in environments:
            artifact = Artifact(service_id=environment.service_id, digest=f"sha256:{environment.id}", size=1,
                                processes={"web": "python3 app.py"}, app_json={}, created_by="bench")
            session.add(artifact)
            session.flush()
            release = Release(environment_id=environment.id, version=1, artifact_id=artifact.id, config={},
                              formation={"web": 1}, description="", created_by="bench", status=ReleaseStatus.LIVE)
            session.add(release)
            session.flush()
            session.add(DeployState(environment_id=environment.id, live_release_id=release.id, formation={},
                                    config={}))
    core.checks.ensure_web_checks()  # the web check of each, as the checker's sync makes them
    with core.store.session() as session:
        made = session.scalar(select(func.count()).select_from(Check)) or 0
        for i, environment in enumerate(environments):
            for k in range(CHECKS_PER_SERVICE - 1):
                if made >= checks:
                    break
                session.add(Check(
                    environment_id=environment.id, name=f"extra-{k}", kind=CheckKind.HTTP, path=f"/extra/{i}/{k}",
                    path_pinned=True, interval=interval, timeout=5.0, down_after=3, up_after=2, enabled=True,
                    state=CheckState.UNKNOWN, consecutive_ok=0, consecutive_fail=0,
                ))
                made += 1


def start_servers(port: int, count: int) -> list[subprocess.Popen[bytes]]:
    servers = [subprocess.Popen([sys.executable, "-c", SERVER, str(port)]) for _ in range(count)]
    if not wait_for_port(port, timeout=10):
        raise RuntimeError(f"the test servers did not listen on port {port}")
    return servers


def run_checker(core: Podium, seconds: float, expected: int) -> Phase:
    checker = Checker(core.settings, core.store, core.checks, core.incidents)
    checker.start()
    try:
        if len(checker.slots) != expected:
            raise RuntimeError(f"the checker runs {len(checker.slots)} checks, not {expected}")
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        checker.close()
    with core.store.session() as session:
        failed = session.scalar(select(func.count()).select_from(CheckResult).where(CheckResult.ok.is_(False)))
    lateness = checker.lateness
    return Phase("checker", wall, cpu, lateness.probes, int(failed or 0), lateness.skipped, lateness)


def run_baseline(urls: list[tuple[str, str]], interval: float, seconds: float, connections: int) -> Phase:
    """The same requests on the same fixed-rate schedule, from a plain loop: no store, no state."""
    lateness = Lateness(samples=deque(maxlen=200_000))
    failed = [0]

    async def one(client: httpx.AsyncClient, index: int, url: str, host: str) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + (index * GOLDEN % 1.0) * interval
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            lateness.add(loop.time() - due)
            try:
                response = await client.get(url, headers={"Host": host}, timeout=5.0)
                failed[0] += response.status_code >= 400
            except httpx.HTTPError:
                failed[0] += 1
            due, missed = next_due(due, interval, loop.time())
            lateness.skipped += missed

    async def main() -> tuple[float, float]:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
            tasks = [asyncio.create_task(one(client, i, url, host)) for i, (url, host) in enumerate(urls)]
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return cpu, wall

    result: list[tuple[float, float]] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(main())), name="baseline")
    thread.start()
    thread.join()
    cpu, wall = result[0]
    return Phase("baseline", wall, cpu, lateness.probes, failed[0], lateness.skipped, lateness)


def report(checker: Phase, baseline: Phase, args: argparse.Namespace) -> dict[str, Any]:
    print(f"{args.checks} checks every {args.interval:g}s for {args.seconds:g}s each, "
          f"{SERVERS} server processes on loopback; python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print()
    print(f"{'':28}{'checker':>12}{'baseline':>12}")
    rows = [
        ("probes", f"{checker.probes}", f"{baseline.probes}"),
        ("probes/s", f"{checker.probes / checker.wall:.1f}", f"{baseline.probes / baseline.wall:.1f}"),
        ("failed", f"{checker.failed}", f"{baseline.failed}"),
        ("CPU time / wall time", f"{100 * checker.cpu_fraction:.1f}%", f"{100 * baseline.cpu_fraction:.1f}%"),
        ("lateness p50", f"{checker.late_ms(0.5):.2f} ms", f"{baseline.late_ms(0.5):.2f} ms"),
        ("lateness p99", f"{checker.late_ms(0.99):.2f} ms", f"{baseline.late_ms(0.99):.2f} ms"),
        ("lateness max", f"{checker.late_ms(1.0):.2f} ms", f"{baseline.late_ms(1.0):.2f} ms"),
        ("skipped slots", f"{checker.skipped}", f"{baseline.skipped}"),
    ]
    for label, ours, theirs in rows:
        print(f"{label:28}{ours:>12}{theirs:>12}")
    ratio = checker.cpu_fraction / baseline.cpu_fraction
    print()
    print(f"checker CPU / baseline CPU: {ratio:.2f}x")
    return {"checks": args.checks, "interval": args.interval, "seconds": args.seconds, "cpu_ratio": round(ratio, 3),
            "checker": checker.as_dict(), "baseline": baseline.as_dict(), "load_average": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of each phase (at most 150).")
    parser.add_argument("--json", type=Path, help="Also write the results as JSON to this file.")
    args = parser.parse_args()
    args.seconds = min(args.seconds, 150.0)
    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="pd-bench-health-"))
    port = free_port()
    settings = Settings(data_dir=data_dir, router_port=port, check_interval=args.interval)
    core = Podium(settings)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        core.start()
        populate(core, args.checks, args.interval)
        targets = [target for target, _ in core.checks.targets()]
        servers = start_servers(port, SERVERS)
        checker = run_checker(core, args.seconds, len(targets))
        urls = [(t.url, t.host_header or "") for t in targets]
        baseline = run_baseline(urls, args.interval, args.seconds, settings.check_max_connections)
        results = report(checker, baseline, args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        if min(checker.probes, baseline.probes) == 0:
            print("error: a phase made no probes", file=sys.stderr)
            return 1
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=10)
        core.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    if time.monotonic() - started > RUN_LIMIT:
        print(f"error: the run took longer than {RUN_LIMIT:g}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
