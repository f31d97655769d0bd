"""Failover benchmark: two ``podium server`` processes on one PostgreSQL store, the leader
killed with SIGKILL again and again.

Run it with ``.venv/bin/python bench/failover.py [--takeovers 5] [--kills 20] [--json PATH]``.
It starts a throwaway PostgreSQL cluster (the machine's binaries, as the tests do), two
servers ``a`` and ``b`` on one data dir (one node), deploys ``examples/hello`` (whose web
check the leader probes every second) and puts a team on call at a local ``json://``
receiver. Then:

1. **takeover**, ``--takeovers`` times: ``kill -9`` the leader and time until the first
   check result probed after the kill (``check_results.at``, written by the new leader's
   checker), and until the other server's ``/healthz`` says ``"leader": true``. The killed
   server starts again before the next round.
2. **baseline**, as many times: one server alone (the other stopped), ``kill -9`` it and
   start it again at once, as a supervisor like systemd would, and time until its first
   check after the kill. The ratio says how much sooner a second server brings checks back.
3. **pages**, ``--kills`` times: open 3 incidents through the follower (each pages the
   on-call person once), wait a random 0 to 0.4 s so the kill falls before, during or after
   the leader's sends, ``kill -9`` the leader, start it again. At the end every page
   must have arrived exactly once: the pages *lost* (in the outbox, never received) and
   *duplicated* (received twice) are counted.

It exits non-zero if a step fails, a page is lost, or the run exceeds ``--limit`` seconds
(default 900). A duplicate is reported, not failed: it is the one window the outbox leaves
(a kill between the receiver's answer and the commit that records it).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' helpers: a PostgreSQL cluster, a page receiver, a server process

from tests.cluster.support import Pair, Server, fresh_database  # noqa: E402
from tests.deploy.support import HELLO, create_service, deploy, env_path, slug_of  # noqa: E402
from tests.support.postgres import postgres_cluster  # noqa: E402
from tests.support.receiver import Receiver  # noqa: E402

from podium.runtime.node import LocalNode  # noqa: E402
from podium.runtime.ports import free_port  # noqa: E402

INCIDENTS_PER_KILL = 3


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def check(self, what: str) -> None:
        if time.monotonic() > self.end:
            raise SystemExit(f"failover bench: over its time limit while {what}")


def wait(condition: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"failover bench: timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def first_check_after(engine: Any, after: datetime) -> datetime | None:
    with engine.connect() as conn:
        found: datetime | None = conn.execute(
            text("SELECT min(at) FROM check_results WHERE at > :after"), {"after": after}
        ).scalar()
    return found


def kill_and_time(pair: Pair, engine: Any, victim: Server, restart_at_once: bool) -> dict[str, float]:
    """SIGKILL ``victim``; seconds until a check probed after the kill (and until a new leader)."""
    killed_at = datetime.now(UTC)
    started = time.monotonic()
    victim.kill()
    if restart_at_once:
        victim.start(wait=False)
    others = [s for s in pair.servers if s is not victim and s.running()]
    leader_after = None
    if others:
        wait(lambda: (others[0].health() or {}).get("leader"), 30, "the other server to lead")
        leader_after = time.monotonic() - started
    at = wait(lambda: first_check_after(engine, killed_at), 60, "a check after the kill")
    result = {"first_check": (at - killed_at).total_seconds()}
    if leader_after is not None:
        result["leader"] = leader_after
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    limit = Deadline(args.limit)
    base = Path(tempfile.mkdtemp(prefix="pd-bench-"))
    base.chmod(0o755)
    data_dir = base / "data"
    data_dir.mkdir()
    router_port = free_port()
    receiver = Receiver()
    receiver.start()
    results: dict[str, Any] = {"takeover": [], "baseline": [], "pages": {}}
    try:
        measure(args, limit, base, data_dir, router_port, receiver, results)
    finally:
        receiver.stop()
        shutil.rmtree(base, ignore_errors=True)  # after the PostgreSQL cluster in it has stopped
    return results


def measure(
    args: argparse.Namespace, limit: Deadline, base: Path, data_dir: Path, router_port: int, receiver: Receiver,
    results: dict[str, Any],
) -> None:
    """The three phases, on a PostgreSQL cluster and two servers made for them; ``results`` filled in."""
    with postgres_cluster(base / "pg") as superuser, fresh_database(superuser) as url:
        env = {"PODIUM_DATABASE_URL": url, "PODIUM_CHECK_INTERVAL": "1", "PODIUM_PAGING_MAX_ATTEMPTS": "10000"}
        pair = Pair([Server(name, data_dir, router_port, env) for name in ("a", "b")])
        engine = create_engine(url)
        try:
            pair.up()
            leader = pair.leader()
            with pair.other(leader).client() as client:
                client.post("/api/v1/teams", json={"name": "ops"}).raise_for_status()
                client.put("/api/v1/teams/ops/oncall", json={
                    "members": [{"name": "pat", "url": receiver.url("pat")}], "period": "daily",
                    "handoff": "09:00", "escalate_after_minutes": 600,
                }).raise_for_status()
                create_service(client, "hello", owner="ops")
                assert deploy(client, "hello", "production", slug_of(HELLO)).release["status"] == "live"
                wait(lambda: [c for c in client.get(f"{env_path('hello', 'production')}/checks").json()
                              if c["state"] == "up"], 60, "the web check to say up")

            for index in range(args.takeovers):
                limit.check("timing takeovers")
                victim = pair.leader()
                sample = kill_and_time(pair, engine, victim, restart_at_once=False)
                results["takeover"].append(sample)
                print(f"takeover {index + 1}: first check {sample['first_check']:.2f}s, "
                      f"new leader {sample['leader']:.2f}s", flush=True)
                pair.up()

            lone, spare = pair.servers
            spare.kill()
            wait(lambda: (lone.health() or {}).get("leader"), 30, "the lone server to lead")
            for index in range(args.takeovers):
                limit.check("timing restarts")
                sample = kill_and_time(pair, engine, lone, restart_at_once=True)
                results["baseline"].append(sample)
                print(f"restart {index + 1}: first check {sample['first_check']:.2f}s", flush=True)
                wait(lambda: lone.health(), 90, "the restarted server")
            pair.up()

            expected: list[str] = []
            for kill in range(args.kills):
                limit.check("killing leaders under pages")
                leader = pair.leader()
                with pair.other(leader).client() as client:
                    for number in range(INCIDENTS_PER_KILL):
                        summary = f"kill {kill} incident {number}"
                        client.post("/api/v1/services/hello/incidents",
                                    json={"summary": summary}).raise_for_status()
                        expected.append(summary)
                time.sleep(random.uniform(0.0, 0.4))  # where the kill falls among the sends
                leader.kill()
                pair.up()
            with engine.connect() as conn:
                wait(lambda: conn.execute(text(
                    "SELECT count(*) FROM notifications WHERE sent_at IS NULL AND url != ''"
                )).scalar() == 0, 60, "every page recorded sent")
            received = Counter(p.title.removeprefix("[Podium] ") for p in receiver.pages if p.path == "/pat")
            results["pages"] = {
                "kills": args.kills, "expected": len(expected),
                "lost": sum(1 for s in expected if received[s] == 0),
                "duplicated": sum(received[s] - 1 for s in expected if received[s] > 1),
                "received": sum(received[s] for s in expected),
            }
        finally:
            for server in pair.servers:
                server.kill()
            engine.dispose()
            try:
                LocalNode(data_dir / "node", router_port).shutdown()
            except Exception as exc:  # report, and still remove the data dir
                print(f"could not stop the node: {exc}", file=sys.stderr)


def report(results: dict[str, Any]) -> None:
    takeover = statistics.median(s["first_check"] for s in results["takeover"])
    leader = statistics.median(s["leader"] for s in results["takeover"])
    restart = statistics.median(s["first_check"] for s in results["baseline"])
    pages = results["pages"]
    print()
    print(f"{'':48}{'median':>10}{'baseline':>10}{'ratio':>8}")
    print(f"{'kill -9 leader -> first check by the new leader':48}{takeover:>9.2f}s{restart:>9.2f}s"
          f"{takeover / restart:>8.2f}")
    print(f"{'kill -9 leader -> other server says leader':48}{leader:>9.2f}s")
    print(f"(baseline: kill -9 of a lone server, restarted at once -> its first check; "
          f"{len(results['baseline'])} rounds)")
    print(f"pages over {pages['kills']} kills: {pages['expected']} opened, {pages['received']} received, "
          f"{pages['lost']} lost, {pages['duplicated']} duplicated")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--takeovers", type=int, default=5, help="leader kills timed (and restarts, as baseline)")
    parser.add_argument("--kills", type=int, default=20, help="leader kills while pages are being sent")
    parser.add_argument("--limit", type=float, default=900.0, help="seconds the whole run may take")
    parser.add_argument("--json", type=Path, default=None, help="write every sample here")
    args = parser.parse_args()
    started = time.monotonic()
    results = run(args)
    report(results)
    print(f"took {time.monotonic() - started:.0f}s")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    if results["pages"]["lost"]:  # a lost page is a fault; a duplicate is the one window the outbox leaves
        sys.exit(1)


if __name__ == "__main__":
    main()
