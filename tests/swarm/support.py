"""What the swarm tests share: slugs, release specs, a rollout as the deploy service runs
it, and clients looping through the router while something changes."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from podium.artifacts.appjson import AppJson
from podium.runtime.interface import HealthCheck, ReleaseFailed, ReleaseSpec, RunningRelease
from podium.runtime.swarm.runtime import SwarmRuntime

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
CHECK = HealthCheck(path="/health", timeout=2.0, max_status=400, deadline=90.0)


def make_slug(dest: Path, source: Path = HELLO, extra: Mapping[str, str] | None = None) -> Path:
    """A slug of ``source`` (``./app/…``), with ``extra`` files added or replaced."""
    extra = dict(extra or {})
    with tarfile.open(dest, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            if path.name not in extra:
                tar.add(path, f"./app/{path.name}")
        for name, text in extra.items():
            data = text.encode()
            info = tarfile.TarInfo(f"./app/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return dest


def release(
    slug: Path, version: int, *, service: str = "hello", env: str = "production", web: int = 4,
    config: Mapping[str, str] | None = None,
) -> ReleaseSpec:
    """Release ``v<version>`` of the slug, with config vars over app.json's defaults."""
    with tarfile.open(slug) as tar:
        member = tar.extractfile("./app/app.json")
        app_json = AppJson.model_validate(json.loads(member.read())) if member else AppJson.model_validate({})
        procfile = tar.extractfile("./app/Procfile")
        processes = dict(
            line.split(":", 1) for line in (procfile.read().decode().splitlines() if procfile else []) if ":" in line
        )
    environment = {
        "PODIUM_SERVICE": service, "PODIUM_ENV": env, "PODIUM_RELEASE": f"v{version}", **(config or {}),
    }
    return ReleaseSpec(
        service=service, env=env, version=version, artifact_path=slug,
        digest="sha256:" + hashlib.sha256(slug.read_bytes()).hexdigest(),
        processes={name.strip(): command.strip() for name, command in processes.items()},
        app_json=app_json, formation={"web": web}, environment=environment,
    )


def rollout(runtime: SwarmRuntime, spec: ReleaseSpec) -> RunningRelease:
    """What the deploy service does, stage by stage: a failure before the switch stops the
    new release and leaves the old one serving."""
    prepared = runtime.prepare(spec, lambda step, detail: None)
    runtime.run_release_command(prepared, 120)
    running = runtime.start(prepared)
    try:
        runtime.wait_healthy(running, CHECK)
    except ReleaseFailed:
        runtime.stop(running.ref)
        raise
    runtime.switch(running).wait_drained()
    runtime.stop_all_but(spec.service, spec.env, spec.version)
    return running


@dataclass
class Load:
    """What looping clients saw: answers by status (0: no answer) and by release."""

    statuses: Counter[int] = field(default_factory=Counter)
    releases: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200)


@contextmanager
def looping_clients(port: int, host: str, clients: int = 4) -> Iterator[Load]:
    """``clients`` threads asking the router for ``/`` in a loop until the block ends."""
    load = Load()
    stop = threading.Event()
    lock = threading.Lock()

    def loop() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Host": host}, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.get("/")
                    status = response.status_code
                    name = response.json().get("release", "?") if response.is_success else response.text[:80]
                except (httpx.HTTPError, ValueError) as exc:
                    status, name = 0, repr(exc)
                with lock:
                    load.statuses[status] += 1
                    if status == 200:
                        load.releases[name] += 1
                    elif len(load.errors) < 20:
                        load.errors.append(f"{status} {name}")

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield load
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
