"""How long a CLI command takes before and while doing its work, against ``python -c pass``.

Runs ``podium --help`` and ``podium services list`` (against a real ``podium server`` on
loopback, with a fresh data dir) RUNS times each, interleaved with the interpreter's own
start-up, and prints medians and their ratio to that baseline, for the wall clock and for
the CPU time each process used. ``--before SRC`` also runs
both commands from another source tree (e.g. ``git archive <commit> src | tar -x -C DIR``,
then ``DIR/src``) with the same interpreter, interleaved, for a before/after in one run.
Bounded: RUNS runs per command, 120 s for the whole run; the node the server started is
stopped and its data dir removed at the end.

    .venv/bin/python bench/cli.py [--runs N] [--before SRC]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
DEADLINE = time.monotonic() + 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock seconds of one run, and the CPU seconds (user + system) the process used:
    on a shared machine the wall clock grows with the load, the CPU time much less."""
    if time.monotonic() > DEADLINE:
        raise SystemExit("bench/cli.py: over its 120 s budget")
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"bench/cli.py: {' '.join(argv)} exited {child.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before", type=Path, help="a src/ tree to run the same commands from, for comparison")
    args = parser.parse_args()
    runs = args.runs
    data_dir = Path(tempfile.mkdtemp(prefix="pb-"))
    port, router_port = free_port(), free_port()
    env = {**os.environ, "PODIUM_DATA_DIR": str(data_dir), "PODIUM_PORT": str(port),
           "PODIUM_ROUTER_PORT": str(router_port), "PODIUM_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen([str(BIN / "podium"), "server"], env=env, stderr=subprocess.DEVNULL)
    try:
        token_file = data_dir / "admin-token"
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > DEADLINE or server.poll() is not None:
                    raise SystemExit("bench/cli.py: the server did not start") from None
                time.sleep(0.1)
        env["PODIUM_TOKEN"] = token_file.read_text().strip()
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "podium --help": ([str(BIN / "podium"), "--help"], env),
            "podium services list": ([str(BIN / "podium"), "services", "list"], env),
        }
        if args.before is not None:
            # What the console script runs, with the other tree first on the path.
            script = "import sys; sys.argv[0] = 'podium'; from podium.cli.main import main; sys.exit(main())"
            before_env = {**env, "PYTHONPATH": str(args.before.resolve())}
            commands["  before: --help"] = ([sys.executable, "-c", script, "--help"], before_env)
            commands["  before: services list"] = ([sys.executable, "-c", script, "services", "list"], before_env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, (argv, command_env) in commands.items():
                elapsed, used = timed(argv, command_env)
                samples[name].append(elapsed)
                cpu[name].append(used)
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run([str(BIN / "podium"), "node", "stop", "--data-dir", str(data_dir)], env=env, check=False,
                       stdout=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)
    baseline = statistics.median(samples["python -c pass"])
    cpu_baseline = statistics.median(cpu["python -c pass"])
    print(f"{'command':<26} {'median':>8} {'min':>8} {'ratio':>7} {'cpu':>8} {'ratio':>7}"
          f"   ({runs} runs each, interleaved; seconds)")
    for name, values in samples.items():
        median, used = statistics.median(values), statistics.median(cpu[name])
        print(f"{name:<26} {median:8.3f} {min(values):8.3f} {median / baseline:6.1f}x {used:8.3f}"
              f" {used / cpu_baseline:6.1f}x")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
