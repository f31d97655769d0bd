"""Deploy benchmark: a real Podium server, the hello app, and each number beside its baseline.

Run it with ``.venv/bin/python bench/deploy.py [--json PATH]``. It starts ``podium server``
on free loopback ports in a fresh data dir, creates a team and a service through the API,
and measures, all in the same run:

1. deploy time (upload → live → rollout done) against the floor: ``tar xzf`` of the same
   slug, ``python3 app.py`` and polling until its first 200, done by hand;
2. failed requests through the router, from keep-alive clients, while three rounds of
   deploys, a config change and a rollback run;
3. rollback time, from the command until the router serves the rollback release;
4. recovery from a SIGKILLed web process until the router answers again;
5. requests/s through the router against the app directly (with and without keep-alive).

It is a report, not a test: it exits non-zero only when a step itself fails (a deploy that
does not go live, a server that does not start, the time limit). The node (supervisord and
nginx) and the server are stopped at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from podium.artifacts.pack import pack_directory
from podium.runtime.node import LocalNode
from podium.runtime.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' keep-alive client, which re-sends only as RFC 9112 allows

from tests.keepalive import KeepAliveClient  # noqa: E402

APP_SOURCE = ROOT / "examples" / "hello"
TEAM, SERVICE, ENV = "bench", "hello", "staging"
HOST = f"{SERVICE}.{ENV}.localhost"

RUN_LIMIT = 170.0  # the whole run, server start and shutdown included, stays under 3 minutes
SERVER_START_TIMEOUT = 30.0
STEP_TIMEOUT = 30.0  # one deploy, rollback or recovery
POLL = 0.005  # how often the floor and the timers below poll, as often as the health gate looks for the port
DEPLOYS = 5
LOAD_ROUNDS = 3  # under load: each round is 5 deploys, a config change and a rollback
ROLLBACKS = 3
KILLS = 3
LOAD_THREADS = 4
LOAD_MAX_SECONDS = 60.0
LOAD_MAX_REQUESTS = 200_000
THROUGHPUT_REQUESTS = 2_000
WARMUP_REQUESTS = 50
LOCK_WAIT_SECONDS = 2.0


class BenchFailed(Exception):
    """A step of the benchmark could not be carried out."""


class Clock:
    """The run's time limit: every wait asks it how long it may still take."""

    def __init__(self, limit: float) -> None:
        self.end = time.monotonic() + limit

    def budget(self, wanted: float) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise BenchFailed(f"the run took longer than {RUN_LIMIT:.0f}s")
        return min(wanted, left)


# The server ---------------------------------------------------------------------------


@dataclass
class Server:
    """A running ``podium server`` subprocess and an admin client for its API."""

    data_dir: Path
    port: int
    router_port: int
    api: httpx.Client
    lock_waits: int = 0  # changes refused with 409 right after the previous rollout's final event

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.router_port}/"

    def env_path(self, tail: str) -> str:
        return f"/api/v1/services/{SERVICE}/environments/{ENV}/{tail}"


@contextlib.contextmanager
def running_server(data_dir: Path, log: Path, clock: Clock) -> Iterator[Server]:
    """``podium server`` (the console script next to this interpreter) on free ports, once
    /healthz answers; afterwards, even on failure, the node and the server are stopped."""
    script = Path(sys.executable).parent / "podium"
    port, router_port = free_port(), free_port()
    while router_port == port:
        router_port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(script), "server", "--data-dir", str(data_dir), "--port", str(port),
             "--router-port", str(router_port)],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + clock.budget(SERVER_START_TIMEOUT)
        while True:
            if process.poll() is not None:
                raise BenchFailed(f"podium server exited with status {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchFailed(f"podium server did not answer /healthz in {SERVER_START_TIMEOUT:.0f}s")
            time.sleep(0.05)
        token = (data_dir / "admin-token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
            yield Server(data_dir, port, router_port, api)
    finally:
        try:
            LocalNode(data_dir / "node", router_port).shutdown()
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def checked(response: httpx.Response) -> Any:
    if response.is_error:
        raise BenchFailed(f"{response.request.method} {response.request.url.path}: "
                          f"{response.status_code} {response.text[:300]}")
    return response.json()


# Slugs and the floor ------------------------------------------------------------------


def make_slug(work: Path, marker: str) -> Path:
    """examples/hello with a VERSION file of its own: a new artifact every time."""
    source = work / f"src-{marker}"
    shutil.copytree(APP_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "VERSION").write_text(f"{marker}\n")
    return pack_directory(source, work / f"hello-{marker}.tgz")


def get_ok(port: int, path: str, host: str | None = None, timeout: float = 1.0) -> tuple[int, bytes] | None:
    """One GET on a fresh connection: (status, body), or None when nothing answered."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": host} if host else {})
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return None
    finally:
        connection.close()


@dataclass
class FloorRun:
    total: float  # unpack → first 200
    unpack: float
    health_wait: float  # process start → first 200


def floor_once(slug: Path, work: Path, index: int, clock: Clock) -> FloorRun:
    """By hand: unpack the slug into a fresh dir, start its web process, poll until it answers."""
    target = work / f"floor-{index}"
    port = free_port()
    started = time.perf_counter()
    target.mkdir()
    subprocess.run(["tar", "xzf", str(slug), "-C", str(target)], check=True)
    unpacked = time.perf_counter()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        ["python3", "app.py"], cwd=target / "app", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + clock.budget(STEP_TIMEOUT)
        while (answer := get_ok(port, "/health")) is None or answer[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchFailed(f"the app started by hand did not answer on port {port}")
            time.sleep(POLL)
        done = time.perf_counter()
    finally:
        process.terminate()
        process.wait(timeout=10)
    return FloorRun(total=done - started, unpack=unpacked - started, health_wait=done - unpacked)


# Rollouts -----------------------------------------------------------------------------


@dataclass
class Rollout:
    """One rollout as the client saw it, with the server's stage events."""

    version: str
    started: float  # wall clock, to compare with the events' ``at``
    live: float  # seconds from the request to the router switch being done ("draining" begins)
    total: float  # seconds from the request to the final event line
    events: list[dict[str, Any]]
    serving: float | None = None  # seconds from the request until the router answered from it

    def stages(self) -> dict[str, float]:
        """Seconds spent in each stage, from one event's ``at`` to the next; ``upload`` is
        the request until the release exists, ``final line`` the last event until the client read it."""
        times = [datetime.fromisoformat(e["at"]).timestamp() for e in self.events]
        spans = {"upload": times[0] - self.started}
        for event, begun, ended in zip(self.events, times, times[1:], strict=False):
            spans[event["stage"]] = spans.get(event["stage"], 0.0) + ended - begun
        spans["final line"] = self.started + self.total - times[-1]
        return spans


def health_split(server: Server, rollout: Rollout) -> dict[str, float] | None:
    """The starting and health-check stages split by the app's own log, whose lines the
    node stamps with the time it read them: the new process getting to "listening", and
    the health gate's first answered probe. None when the log has no such stamps."""
    log = server.data_dir / "deploy" / SERVICE / ENV / "logs" / f"{rollout.version}.web-1.log"
    at = {e["stage"]: datetime.fromisoformat(e["at"]).timestamp() for e in rollout.events}
    listening = probed = None
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            stamp, _, text = line.partition(" ")
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                if listening is None and text.startswith("listening on"):
                    listening = moment
                elif probed is None and text.startswith("GET /health"):
                    probed = moment
    if listening is None or probed is None or not {"starting", "switching"} <= at.keys():
        return None
    return {
        "starting → app listening": listening - at["starting"],
        "listening → first probe answered": probed - listening,
        "probe answered → switching": at["switching"] - probed,
    }


def follow(server: Server, version: str, clock: Clock) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read a release's events until the final line; fail unless it went live."""
    events: list[dict[str, Any]] = []
    timeout = httpx.Timeout(clock.budget(STEP_TIMEOUT), connect=5.0)
    with server.api.stream("GET", server.env_path(f"releases/{version}/events"), timeout=timeout) as response:
        if response.is_error:
            response.read()
            checked(response)
        for line in response.iter_lines():
            if not line.strip():
                continue
            event = json.loads(line)
            if event.get("final"):
                if event["status"] != "live":
                    raise BenchFailed(f"{version} did not go live: {event.get('failure_reason')}\n"
                                      f"{event.get('log_tail') or ''}")
                return events, event
            events.append(event)
    raise BenchFailed(f"the events of {version} ended without a final line")


def timed_rollout(server: Server, clock: Clock, request: Any, *, until_serving: bool = False) -> Rollout:
    """Send the request that starts a rollout (``request()`` returns the release) and follow
    it to the end; with ``until_serving``, first poll the router until it answers from it."""
    wall, started = time.time(), time.perf_counter()
    release = request()
    serving = None
    if until_serving:
        deadline = time.monotonic() + clock.budget(STEP_TIMEOUT)
        while (body := answer(server)) is None or body.get("release") != release["version"]:
            if time.monotonic() > deadline:
                raise BenchFailed(f"the router did not serve {release['version']} within {STEP_TIMEOUT:.0f}s")
            time.sleep(POLL)
        serving = time.perf_counter() - started
    events, _ = follow(server, release["version"], clock)
    total = time.perf_counter() - started
    switched = next((e for e in events if e["stage"] == "draining"), events[-1])
    live = datetime.fromisoformat(switched["at"]).timestamp() - wall
    return Rollout(release["version"], wall, live, total, events, serving)


def change(server: Server, method: str, tail: str, **kwargs: Any) -> Any:
    """Send a request that starts a rollout. The previous rollout's final event can reach us
    before its lock is released, so a 409 is retried for a short, bounded while, and counted."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        response = server.api.request(method, server.env_path(tail), **kwargs)
        if response.status_code != 409 or time.monotonic() > deadline:
            return checked(response)
        server.lock_waits += 1
        time.sleep(0.02)


def deploy(server: Server, slug: Path, clock: Clock) -> Rollout:
    def upload() -> Any:
        return change(
            server, "POST", "deploys", content=slug.read_bytes(), headers={"Content-Type": "application/gzip"}
        )

    return timed_rollout(server, clock, upload)


def rollback(server: Server) -> Any:
    return change(server, "POST", "rollback", json={})


def set_config(server: Server, value: str) -> Any:
    result = change(server, "PATCH", "config", json={"set": {"GREETING": value}})
    if result["release"] is None:
        raise BenchFailed("the config change made no release: nothing was live")
    return result["release"]


# Load ---------------------------------------------------------------------------------


class Load:
    """Threads with keep-alive clients hitting the app through the router, bounded in time
    and count; every non-2xx answer and every error left after the client's one permitted
    retry is a failed request."""

    def __init__(self, server: Server, threads: int = LOAD_THREADS) -> None:
        self.port = server.router_port
        self.clients = [KeepAliveClient(self.port, HOST, timeout=5.0) for _ in range(threads)]
        self.threads = [threading.Thread(target=self._hit, args=(c,), daemon=True) for c in self.clients]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures: Counter[str] = Counter()
        self.failure_times: list[float] = []
        self.retry_times: list[float] = []
        self.started = self.ended = 0.0

    def __enter__(self) -> Load:
        self.deadline = time.monotonic() + LOAD_MAX_SECONDS
        self.started = time.perf_counter()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.ended = time.perf_counter()

    @property
    def total(self) -> int:
        return self.ok + sum(self.failures.values())

    @property
    def reused(self) -> int:
        return sum(client.reused for client in self.clients)

    @property
    def retried(self) -> int:
        return sum(client.retried for client in self.clients)

    def _hit(self, client: KeepAliveClient) -> None:
        while not self.stop.is_set() and time.monotonic() < self.deadline and self.total < LOAD_MAX_REQUESTS:
            retried = client.retried
            try:
                status, _ = client.get("/")
                kind = None if 200 <= status < 300 else f"HTTP {status}"
            except (OSError, http.client.HTTPException) as exc:
                client.close()
                kind = type(exc).__name__
            with self.lock:
                if client.retried != retried:
                    self.retry_times.append(time.time())
                if kind is None:
                    self.ok += 1
                else:
                    self.failures[kind] += 1
                    self.failure_times.append(time.time())
        client.close()


# Rollback and recovery ----------------------------------------------------------------


def answer(server: Server) -> dict[str, Any] | None:
    """The app's JSON through the router, or None unless it answered 200."""
    got = get_ok(server.router_port, "/", HOST)
    if got is None or got[0] != 200:
        return None
    body: dict[str, Any] = json.loads(got[1])
    return body


def rollback_release(server: Server) -> Any:
    """Roll back to the release before the live one: a new release of that older artifact."""
    release = rollback(server)
    if not release.get("rollback_of"):
        raise BenchFailed(f"{release['version']} is not a rollback: {release['description']}")
    return release


def web_process(server: Server) -> dict[str, Any]:
    processes = checked(server.api.get(server.env_path("ps")))
    web = [p for p in processes if p["type"] == "web"]
    if not web:
        raise BenchFailed(f"no web process in {processes}")
    return web[0]


@dataclass
class Recovery:
    """One SIGKILL of the live web process, as the client and supervisord's log saw it."""

    seconds: float  # kill → the router answers 200 again
    misses: int  # polls in between that got no 200: proof that the kill was felt
    noticed: float | None = None  # kill → supervisord logs the exit
    spawned: float | None = None  # kill → supervisord logs the new process


def wait_running(server: Server, clock: Clock, other_than: int | None = None) -> dict[str, Any]:
    """The web process once supervisord calls it RUNNING (it has lived ``startsecs``, 1 s):
    a process killed sooner counts as a failed start and is restarted only after a back-off."""
    deadline = time.monotonic() + clock.budget(STEP_TIMEOUT)
    while (process := web_process(server))["state"] != "RUNNING" or process["pid"] == other_than:
        if time.monotonic() > deadline:
            raise BenchFailed(f"the web process was not RUNNING in time: {process}")
        time.sleep(0.05)
    return process


def timed_recovery(server: Server, clock: Clock) -> Recovery:
    """SIGKILL the live web process and time the router until it answers 200 again."""
    process = wait_running(server, clock)
    killed_at = time.time()
    os.kill(process["pid"], signal.SIGKILL)
    started = time.perf_counter()
    misses = 0
    deadline = time.monotonic() + clock.budget(STEP_TIMEOUT)
    while answer(server) is None:
        misses += 1
        if time.monotonic() > deadline:
            raise BenchFailed(f"the app did not answer again within {STEP_TIMEOUT:.0f}s of the kill")
        time.sleep(POLL)
    recovery = Recovery(time.perf_counter() - started, misses)
    successor = wait_running(server, clock, other_than=process["pid"])
    log = server.data_dir / "node" / "supervisor" / "supervisord.log"
    recovery.noticed = logged_at(log, f"exited: {process['process']} (terminated by SIGKILL", killed_at)
    recovery.spawned = logged_at(log, f"with pid {successor['pid']}", killed_at)
    return recovery


def logged_at(log: Path, text: str, since: float) -> float | None:
    """Seconds after ``since`` at which supervisord first logged a line containing ``text``."""
    for line in log.read_text(errors="replace").splitlines():
        if text in line:
            with contextlib.suppress(ValueError):
                moment = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
                if moment >= since - 0.01:
                    return moment - since
    return None


# Throughput ---------------------------------------------------------------------------


Target = tuple[str, dict[str, str]]  # a URL and the headers to send with it


def requests_per_second(targets: dict[str, Target], count: int, rounds: int = 10) -> dict[str, float]:
    """One keep-alive httpx client per target, ``count`` GETs each, sent in interleaved
    rounds so that the machine's noise falls on every target alike; requests/s per target."""
    clients = {name: httpx.Client(headers=headers, timeout=5.0) for name, (_, headers) in targets.items()}
    spent = dict.fromkeys(targets, 0.0)
    try:
        for name, (url, _) in targets.items():
            for _ in range(WARMUP_REQUESTS):
                clients[name].get(url).raise_for_status()
        for round_ in range(rounds):
            order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
            for name in order:
                url, client = targets[name][0], clients[name]
                started = time.perf_counter()
                for _ in range(count // rounds):
                    client.get(url).raise_for_status()
                spent[name] += time.perf_counter() - started
    finally:
        for client in clients.values():
            client.close()
    return {name: (count // rounds) * rounds / seconds for name, seconds in spent.items()}


# The run ------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def split_medians(splits: list[dict[str, float] | None]) -> dict[str, float]:
    found = [s for s in splits if s is not None]
    return {name: median([s[name] for s in found]) for name in (found[0] if found else {})}


def stage_medians(rollouts: list[Rollout]) -> dict[str, float]:
    spans = [r.stages() for r in rollouts]
    names = list(dict.fromkeys(name for s in spans for name in s))
    return {name: median([s.get(name, 0.0) for s in spans]) for name in names}


def run(server: Server, work: Path, clock: Clock, report: dict[str, Any]) -> None:
    api = server.api
    steps: dict[str, float] = {}
    report["step_seconds"] = steps
    mark = time.perf_counter()

    def step_done(name: str) -> None:
        nonlocal mark
        steps[name] = time.perf_counter() - mark
        mark = time.perf_counter()

    report["environment"]["nginx_keepalive_timeout"] = nginx_setting(server, "keepalive_timeout")
    checked(api.post("/api/v1/teams", json={"name": TEAM}))
    checked(api.post("/api/v1/services", json={"name": SERVICE, "owner": TEAM}))

    # 1. Deploy against the floor, interleaved so that the machine's noise hits both alike.
    floors: list[FloorRun] = []
    deploys: list[Rollout] = []
    for i in range(1, DEPLOYS + 1):
        slug = make_slug(work, f"d{i}")
        floors.append(floor_once(slug, work, i, clock))
        deploys.append(deploy(server, slug, clock))
        print(f"  deploy {deploys[-1].version}: {deploys[-1].total:.3f}s (floor {floors[-1].total:.3f}s)",
              flush=True)
    floor = median([f.total for f in floors])
    health_wait = median([f.health_wait for f in floors])
    deploy_total = median([d.total for d in deploys])
    report["deploy"] = {
        "deploy_s": deploy_total,
        "live_s": median([d.live for d in deploys]),
        "floor_s": floor,
        "floor_unpack_s": median([f.unpack for f in floors]),
        "health_wait_s": health_wait,
        "ratio": deploy_total / floor,
        "budget_s": 1.5 * floor + health_wait,
        "stages_s": stage_medians(deploys),
        "health_split_s": split_medians([health_split(server, d) for d in deploys]),
        "samples": {"deploy_s": [d.total for d in deploys], "floor_s": [f.total for f in floors],
                    "stages_s": [d.stages() for d in deploys]},
    }

    step_done("deploys")

    # 2. Failed requests while the environment changes under load.
    changes: list[Rollout] = []
    with Load(server) as load:
        for round_ in range(1, LOAD_ROUNDS + 1):
            for i in range(1, DEPLOYS + 1):
                changes.append(deploy(server, make_slug(work, f"l{round_}-{i}"), clock))
            changes.append(timed_rollout(server, clock, partial(set_config, server, f"Hello under load {round_}")))
            changes.append(timed_rollout(server, clock, partial(rollback, server)))
        time.sleep(0.2)  # requests in flight when the last change finished still count
    seconds = load.ended - load.started
    report["load"] = {
        "requests": load.total, "failed": sum(load.failures.values()), "failures": dict(load.failures),
        "seconds": seconds, "rps": load.total / seconds, "changes": len(changes), "threads": LOAD_THREADS,
        "failures_by_stage": failures_by_stage(load.failure_times, changes),
        "reused": load.reused, "retried": load.retried,
        "retried_by_stage": failures_by_stage(load.retry_times, changes),
    }

    step_done("load")

    # 3. Rollback: command → the router serves the rollback release (the older artifact).
    rollbacks = [
        timed_rollout(server, clock, lambda: rollback_release(server), until_serving=True) for _ in range(ROLLBACKS)
    ]
    report["rollback"] = {
        "serving_s": median([r.serving for r in rollbacks if r.serving is not None]),
        "done_s": median([r.total for r in rollbacks]),
        "stages_s": stage_medians(rollbacks),
        "samples": [r.serving for r in rollbacks],
        "baseline_deploy_s": deploy_total,
    }
    step_done("rollbacks")

    # 4. Recovery from a killed web process.
    kills = [timed_recovery(server, clock) for _ in range(KILLS)]
    report["recovery"] = {
        "seconds": median([k.seconds for k in kills]), "samples": [k.seconds for k in kills],
        "misses": [k.misses for k in kills], "baseline_health_wait_s": health_wait,
        "supervisord_noticed_s": median([k.noticed for k in kills if k.noticed is not None]),
        "supervisord_spawned_s": median([k.spawned for k in kills if k.spawned is not None]),
        "supervisord_samples": [[k.noticed, k.spawned] for k in kills],
    }

    step_done("recovery")

    # 5. Requests/s through the router against the app directly: the baseline sends
    # "Connection: close", one connection per request; the app with keep-alive, as the router
    # now talks to it, is measured in the same rounds (see bench/README.md).
    port = web_process(server)["port"]
    direct_url = f"http://127.0.0.1:{port}/"
    rates = requests_per_second(
        {
            "router": (server.router_url, {"Host": HOST}),
            "direct": (direct_url, {"Connection": "close"}),
            "direct keep-alive": (direct_url, {}),
        },
        THROUGHPUT_REQUESTS,
    )
    routed, direct = rates["router"], rates["direct"]
    report["throughput"] = {
        "router_rps": routed, "direct_rps": direct, "ratio": routed / direct,
        "direct_keepalive_rps": rates["direct keep-alive"], "requests": THROUGHPUT_REQUESTS,
    }
    report["lock_waits"] = server.lock_waits
    step_done("throughput")


def nginx_setting(server: Server, name: str) -> str | None:
    """A directive's value in the router's nginx.conf, as this run used it."""
    conf = server.data_dir / "node" / "router" / "nginx.conf"
    for line in conf.read_text().splitlines():
        words = line.strip().rstrip(";").split()
        if len(words) == 2 and words[0] == name:
            return words[1]
    return None


def failures_by_stage(times: list[float], rollouts: list[Rollout]) -> dict[str, int]:
    """Which rollout stage each failed request fell in (by the events' clock)."""
    spans = []
    for rollout in rollouts:
        ats = [datetime.fromisoformat(e["at"]).timestamp() for e in rollout.events]
        ends = [*ats[1:], rollout.started + rollout.total]
        spans += [(start, end, e["stage"]) for e, start, end in zip(rollout.events, ats, ends, strict=True)]
    found: Counter[str] = Counter()
    for moment in times:
        found[next((stage for start, end, stage in spans if start <= moment < end), "between rollouts")] += 1
    return dict(found)


def print_report(report: dict[str, Any]) -> None:
    d, load, rb = report["deploy"], report["load"], report["rollback"]
    rec, tp = report["recovery"], report["throughput"]
    rows = [
        ("deploy, upload → rollout done (median of 5)", f"{d['deploy_s']:.3f} s",
         f"floor {d['floor_s']:.3f} s", f"{d['ratio']:.2f}x"),
        ("deploy, upload → live (router switched)", f"{d['live_s']:.3f} s",
         f"floor {d['floor_s']:.3f} s", f"{d['live_s'] / d['floor_s']:.2f}x"),
        ("  app's own health wait (start → first 200)", f"{d['health_wait_s']:.3f} s", "", ""),
        ("  budget: 1.5 x floor + health wait", f"{d['budget_s']:.3f} s", "",
         f"live {'within' if d['live_s'] <= d['budget_s'] else 'OVER'}, "
         f"done {'within' if d['deploy_s'] <= d['budget_s'] else 'OVER'}"),
        (f"failed requests during {load['changes']} changes", f"{load['failed']} of {load['requests']}",
         f"{load['rps']:.0f} req/s", f"{100 * load['failed'] / max(load['requests'], 1):.2f} %"),
        ("rollback, command → old artifact serving (median of 3)", f"{rb['serving_s']:.3f} s",
         f"deploy {rb['baseline_deploy_s']:.3f} s", f"{rb['serving_s'] / rb['baseline_deploy_s']:.2f}x"),
        ("recovery, SIGKILL → answering again (median of 3)", f"{rec['seconds']:.3f} s",
         f"health wait {rec['baseline_health_wait_s']:.3f} s",
         f"{rec['seconds'] / rec['baseline_health_wait_s']:.1f}x"),
        (f"requests/s, router vs direct ({tp['requests']} each)", f"{tp['router_rps']:.0f}",
         f"direct {tp['direct_rps']:.0f}", f"{tp['ratio']:.2f}x"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if load["failures"]:
        print(f"\nfailed requests by kind: {load['failures']}; by stage: {load['failures_by_stage']}")
    print(f"\nload: {load['reused']} of {load['requests']} requests on a kept-alive connection; "
          f"{load['retried']} sent again after the router closed an idle one first (RFC 9112 §9.3.1), "
          f"by stage: {load['retried_by_stage']}")
    print("deploy stages (median seconds): " + ", ".join(f"{k} {v:.3f}" for k, v in d["stages_s"].items()))
    if d["health_split_s"]:
        print("  starting + health_check, by the app's log: "
              + ", ".join(f"{k} {v:.3f}" for k, v in d["health_split_s"].items()))
    print("rollback stages (median seconds): " + ", ".join(f"{k} {v:.3f}" for k, v in rb["stages_s"].items()))
    print(f"recovery: supervisord logged the exit {seconds(rec['supervisord_noticed_s'])} and the new process "
          f"{seconds(rec['supervisord_spawned_s'])} after the kill")
    print(f"direct with keep-alive: {tp['direct_keepalive_rps']:.0f} req/s (router "
          f"{tp['router_rps'] / tp['direct_keepalive_rps']:.2f}x of it); router's nginx keepalive_timeout: "
          f"{report['environment'].get('nginx_keepalive_timeout', '?')}")
    print(f"changes refused with 409 after the previous rollout's final event (then retried): "
          f"{report['lock_waits']}")
    print("run: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["step_seconds"].items()))


def seconds(value: float | None) -> str:
    return "?" if value is None or value != value else f"{value:.3f} s"  # NaN: no sample


def recent_releases(server: Server) -> list[str]:
    """The environment's last releases, one line each, to explain a failed step (best effort)."""
    try:
        releases = checked(server.api.get(server.env_path("releases"), params={"limit": 8}, timeout=10))
    except (BenchFailed, httpx.HTTPError) as exc:
        return [f"(releases unavailable: {exc})"]
    return [
        f"{r['version']} {r['status']} {r['stage']} by {r['created_by']}: {r['description']}"
        + (f" — {r['failure_reason']}" if r["failure_reason"] else "")
        for r in releases
    ]


def environment() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit.stdout.strip(),
        "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, help="Also write the results as JSON to this file.")
    parser.add_argument("--keep", action="store_true", help="Keep the data dir (for a post-mortem).")
    args = parser.parse_args()

    clock = Clock(RUN_LIMIT)
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="pb-"))  # short: supervisord's socket path is limited
    log = scratch / "server.log"
    report: dict[str, Any] = {"environment": environment()}
    status = 0
    try:
        with running_server(scratch / "d", log, clock) as server:
            print(f"podium server on :{server.port}, router on :{server.router_port}, data in {scratch / 'd'}",
                  flush=True)
            try:
                run(server, scratch, clock, report)
            except Exception:
                report["releases"] = recent_releases(server)
                for line in report["releases"]:
                    print(f"  {line}", file=sys.stderr)
                raise
        print_report(report)
    except (BenchFailed, httpx.HTTPError, OSError, subprocess.SubprocessError) as exc:
        print(f"bench/deploy.py failed: {exc}\nlast lines of the server's log:\n{tail(log)}", file=sys.stderr)
        report["error"] = str(exc)
        status = 1
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    report["run_seconds"] = time.perf_counter() - started
    print(f"\nthe whole run, server start and shutdown included: {report['run_seconds']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
