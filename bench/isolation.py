"""Isolation benchmark: the same app started and served sandboxed and not, in the same run.

Run it with ``.venv/bin/python bench/isolation.py [--rounds N] [--seconds S] [--json PATH]``
(as root for the user per app and cgroups; without root it measures bwrap and rlimits).
It starts one supervisord and one nginx in a fresh data dir and, alternating the two modes
round by round so that a change in the machine's load hits both alike, measures:

1. start-to-first-200: from asking supervisord to add the group (the hello app, one web
   process) until the app answers 200 on its port, in every round and in ``--starts`` more
   rounds of each mode that only start (a start is ~60 ms, and the machine's noise is
   several: the median needs many). Besides the ratio of the two medians, the "paired"
   ratio takes the median of each round's difference (the two starts of a round are back
   to back, so they share the machine's load of the moment);
2. requests/s through the router: a route to that process, then ``--threads`` clients
   sending GET / for ``--seconds`` each round;
3. the set-up alone, ``--chain`` times each: the command supervisord runs (``/bin/sh``
   with the keeper, or the plain line) started directly, with ``date`` as the Procfile command,
   from the start until ``date`` reads the clock. No app start-up and no supervisord
   around it, so this is what the sandbox itself adds to every start, with less noise.

"Off" is ``PODIUM_SANDBOX=off``: the process runs as Podium's user, unconfined, exactly
as before. "On" adds the keeper (which joins the cgroups), bwrap and podium-drop (or, where
``make install`` did not build it, setpriv and env: the report says which). Each ratio is
baseline/sandboxed for time, sandboxed/baseline for throughput (1.0 = no cost; the target
is at least 0.9). Bounded: rounds and seconds are capped, the node is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from podium.config import Settings
from podium.runtime.ports import free_port
from podium.runtime.router import Router
from podium.runtime.sandbox import Sandbox, Size
from podium.runtime.supervisor import ProcessSpec, Supervisor

ROOT = Path(__file__).resolve().parent.parent
APP_SOURCE = ROOT / "examples" / "hello"
HOST = "hello.bench.localhost"
MAX_ROUNDS = 20
MAX_CHAIN = 200
MAX_STARTS = 200
MAX_SECONDS = 10.0
START_TIMEOUT = 30.0
POLL = 0.005


def first_200(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(POLL)
    return False


def throughput(router_port: int, threads: int, seconds: float) -> float:
    """Requests/s answered 200 through nginx by ``threads`` clients in ``seconds``."""
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        while time.monotonic() < stop:
            connection = http.client.HTTPConnection("127.0.0.1", router_port, timeout=5)
            connection.request("GET", "/", headers={"Host": HOST})
            if connection.getresponse().status == 200:
                counts[index] += 1
            connection.close()

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.monotonic() - started)


def setup_alone(sandbox: Sandbox, user: str | None, app: Path, data: Path, runs: int) -> dict[str, list[float]]:
    """Seconds from starting each mode's supervisord command until its Procfile command runs."""
    env_file = data / "chain.env"
    env_file.write_text("export PORT=0\n")
    env_file.chmod(0o600)
    command = "exec /bin/date +%s.%N"  # prints when it runs, on the clock time.time() reads
    scripts = {
        "off": f". {env_file} && {command}",
        "on": sandbox.program("chain", "web-1", sandbox.confinement(user, None, readable=(app,), chdir=app),
                              env_file, command),
    }
    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for index in range(runs):
            for mode in ("off", "on") if index % 2 == 0 else ("on", "off"):
                began = time.time()
                done = subprocess.run(["/bin/sh", "-c", scripts[mode]], cwd=app, stdin=subprocess.DEVNULL,
                                      capture_output=True, text=True, timeout=START_TIMEOUT, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"set-up alone, {mode}: exit {done.returncode}: {done.stderr.strip()}")
                times[mode].append(float(done.stdout) - began)
    finally:
        sandbox.forget("chain")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--size", default="standard-1x", help="the formation size of the sandboxed process")
    parser.add_argument("--chain", type=int, default=40, help="runs of the set-up alone, per mode (0: skip)")
    parser.add_argument("--starts", type=int, default=40,
                        help="starts without a throughput run after them, per mode, added to the rounds' starts")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds, seconds = min(args.rounds, MAX_ROUNDS), min(args.seconds, MAX_SECONDS)
    chain = max(0, min(args.chain, MAX_CHAIN))
    starts = max(0, min(args.starts, MAX_STARTS))

    data = Path(tempfile.mkdtemp(prefix="pd-iso-"))
    app = data / "deploy" / "hello" / "bench" / "apps" / "a" / "app"
    shutil.copytree(APP_SOURCE, app)
    sizes = {name: Size(*numbers) for name, numbers in Settings().size_table.items()}
    sandbox = Sandbox(enabled=True, hidden=[data], state_dir=data / "node" / "sandbox", sizes=sizes,
                      default_size="standard-1x")
    if not sandbox.enabled:
        sys.exit("bwrap is not installed: nothing to compare")
    user = sandbox.ensure_user("hello", "bench")
    sandbox.hand_over(app.parent, user)
    supervisor = Supervisor(data / "node" / "supervisor", sandbox)
    router = Router(data / "node" / "router", free_port())
    results: dict[str, dict[str, list[float]]] = {mode: {"start": [], "rps": []} for mode in ("off", "on")}
    alone: dict[str, list[float]] = {}
    try:
        if chain:
            alone = setup_alone(sandbox, user, app, data, chain)
        supervisor.ensure_running()
        router.ensure_running()
        for index in range(rounds + starts):
            for mode in ("off", "on") if index % 2 == 0 else ("on", "off"):
                port = free_port()
                confinement = sandbox.confinement(user, args.size, readable=(app,), chdir=app) if mode == "on" else None
                spec = ProcessSpec(
                    name="web-1", command="python3 app.py", directory=app, environment={"PORT": str(port)},
                    log_file=data / "logs" / f"{mode}.log", confinement=confinement,
                )
                group = f"hello_bench_{mode}{index}"
                began = time.monotonic()
                supervisor.add_group(group, [spec])
                if not first_200(port, began + START_TIMEOUT):
                    log = (data / "logs" / f"{mode}.log").read_text()[-2000:]
                    raise SystemExit(f"{mode}: no 200 within {START_TIMEOUT:g}s; its log:\n{log}")
                results[mode]["start"].append(time.monotonic() - began)
                if index < rounds:
                    router.set_route("hello_bench", [HOST], [port])
                    results[mode]["rps"].append(throughput(router.port, args.threads, seconds))
                supervisor.remove_group(group)
    finally:
        router.stop()
        supervisor.shutdown()
        shutil.rmtree(data, ignore_errors=True)

    def median(mode: str, key: str) -> float:
        return statistics.median(results[mode][key])

    report: dict[str, Any] = {
        "rounds": rounds, "starts": rounds + starts, "seconds": seconds, "threads": args.threads,
        "root": sandbox.privileged,
        "drop": "podium-drop" if sandbox.helper else "setpriv + env",
        "cgroups": sorted(sandbox.cgroups),
        "start_s": {mode: round(median(mode, "start"), 4) for mode in results},
        "rps": {mode: round(median(mode, "rps"), 1) for mode in results},
    }
    report["start_ratio"] = round(median("off", "start") / median("on", "start"), 3)
    report["rps_ratio"] = round(median("on", "rps") / median("off", "rps"), 3)
    # Each round starts both modes back to back, so a change in the machine's load hits both:
    # the median of the rounds' differences is the sandbox's cost with less of the noise.
    added = statistics.median(on - off for off, on in zip(results["off"]["start"], results["on"]["start"], strict=True))
    report["start_added_ms"] = round(added * 1000, 2)
    report["paired_start_ratio"] = round(median("off", "start") / (median("off", "start") + added), 3)
    # On a shared machine other work only ever adds time: the best round is the cost itself.
    best_start = {mode: min(results[mode]["start"]) for mode in results}
    best_rps = {mode: max(results[mode]["rps"]) for mode in results}
    report["best_start_ratio"] = round(best_start["off"] / best_start["on"], 3)
    report["best_rps_ratio"] = round(best_rps["on"] / best_rps["off"], 3)
    print(f"sandbox: bwrap, {report['drop']}, cgroups: {', '.join(report['cgroups']) or 'none (rlimits)'}")
    print(f"start-to-first-200 (median of {rounds + starts}): off {report['start_s']['off'] * 1000:.0f} ms, "
          f"on {report['start_s']['on'] * 1000:.0f} ms  -> ratio {report['start_ratio']:.2f}x; "
          f"best rounds {best_start['off'] * 1000:.0f} / {best_start['on'] * 1000:.0f} ms "
          f"-> {report['best_start_ratio']:.2f}x; paired: on adds {report['start_added_ms']:.1f} ms "
          f"(median of the rounds' differences) -> {report['paired_start_ratio']:.2f}x")
    print(f"requests/s through the router ({args.threads} clients, {seconds:g} s): off {report['rps']['off']:.0f}, "
          f"on {report['rps']['on']:.0f}  -> ratio {report['rps_ratio']:.2f}x; "
          f"best rounds {best_rps['off']:.0f} / {best_rps['on']:.0f} -> {report['best_rps_ratio']:.2f}x")
    if alone:
        report["setup_ms"] = {mode: round(statistics.median(alone[mode]) * 1000, 2) for mode in alone}
        report["setup_added_ms"] = round(report["setup_ms"]["on"] - report["setup_ms"]["off"], 2)
        fastest = {mode: min(alone[mode]) * 1000 for mode in alone}
        print(f"set-up alone (median of {chain}): off {report['setup_ms']['off']:.1f} ms, "
              f"on {report['setup_ms']['on']:.1f} ms  -> the sandbox adds {report['setup_added_ms']:.1f} ms; "
              f"fastest {fastest['off']:.1f} / {fastest['on']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
