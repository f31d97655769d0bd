"""How long a CLI command takes before and while doing its work, against ``python -c pass``.

Runs ``podium --help`` and ``podium services list`` (against a real ``podium server`` on
loopback, with a fresh data dir) RUNS times each, interleaved with the interpreter's own
start-up, and prints medians and their ratio to that baseline. Bounded: RUNS runs per
command, 120 s for the whole run; the node the server started is stopped at the end.

    .venv/bin/python bench/cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
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


def timed(argv: list[str], env: dict[str, str]) -> float:
    if time.monotonic() > DEADLINE:
        raise SystemExit("bench/cli.py: over its 120 s budget")
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
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
            "python -c pass": [sys.executable, "-c", "pass"],
            "podium --help": [str(BIN / "podium"), "--help"],
            "podium services list": [str(BIN / "podium"), "services", "list"],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, argv in commands.items():
                samples[name].append(timed(argv, env))
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run([str(BIN / "podium"), "node", "stop", "--data-dir", str(data_dir)], env=env, check=False,
                       stdout=subprocess.DEVNULL, timeout=60)
    baseline = statistics.median(samples["python -c pass"])
    print(f"{'command':<22} {'median':>8} {'min':>8} {'ratio':>7}   ({runs} runs each, interleaved)")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<22} {median:8.3f} {min(values):8.3f} {median / baseline:6.1f}x")


if __name__ == "__main__":
    main()
