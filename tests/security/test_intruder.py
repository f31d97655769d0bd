"""An intruder app, deployed by another team, attacks from inside its own process.

The real node runs both apps (supervisord, nginx, bubblewrap, cgroups). The intruder is
told where everything is (the worst case: it knows Podium's layout) and reports over HTTP
what each attack got; every attack must fail while the victim keeps serving through the
router. Its memory and process limits come from a small formation size.
"""

from __future__ import annotations

import hashlib
import pwd
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import Load, create_service, deploy, env_path, poll, probe_app, slug_of

from podium.catalog.auth import Actor
from podium.config import SIZES
from podium.core import Podium
from podium.runtime.naming import group_name

INTRUDER = Path(__file__).parent / "apps" / "intruder"
REQUIREMENTS = "# nothing to install: the virtualenv is what is attacked\n"
# The intruder's size: 96 MiB, 64 processes (threads count), 64 open files.
SIZES_WITH_TINY = f"{SIZES} tiny=96/256/64/64"


def intruder_app(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(INTRUDER / "app.py", where / "app.py")
    (where / "Procfile").write_text("web: python3 app.py\n")
    (where / "requirements.txt").write_text(REQUIREMENTS)
    (where / "app.json").write_text('{"formation": {"web": {"quantity": 1, "size": "tiny"}}}')
    return where


def ps(client: TestClient, service: str) -> list[dict[str, Any]]:
    response = client.get(f"{env_path(service, 'production')}/ps")
    assert response.status_code == 200, response.text
    return list(response.json())


@pytest.fixture
def two_apps(admin: TestClient, core: Podium, tmp_path: Path) -> tuple[str, str]:
    """The victim (team web) and the intruder (team mallory), both live in production,
    with the same requirements.txt; the crash counter runs."""
    core.start_runtime()
    create_service(admin, "victim", owner="web")
    create_service(admin, "intruder", owner="mallory")
    victim = probe_app(tmp_path / "victim", marker="victim")
    (victim / "requirements.txt").write_text(REQUIREMENTS)
    for service, src in (("victim", victim), ("intruder", intruder_app(tmp_path / "intruder"))):
        rollout = deploy(admin, service, "production", slug_of(src))
        assert rollout.release["status"] == "live", (rollout.release, rollout.events[-3:])
    return "victim", "intruder"


def intruder_get(core: Podium, path: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(
        f"http://127.0.0.1:{core.settings.router_port}{path}", params=params,
        headers={"Host": "intruder.production.localhost"}, timeout=30,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("settings_overrides", [{"sizes": SIZES_WITH_TINY}])
def test_every_attack_fails_and_the_victim_keeps_serving(
    admin: TestClient, core: Podium, two_apps: tuple[str, str]
) -> None:
    data = core.settings.data_dir.absolute()
    victim_ps, intruder_ps = ps(admin, "victim")[0], ps(admin, "intruder")[0]
    victim_pid = victim_ps["pid"]
    # Each runs as its environment's own user, and ps shows the app's pid as the host sees it.
    assert victim_ps["user"] == "pd-victim-production"
    assert intruder_ps["user"] == "pd-intruder-production"
    assert Path(f"/proc/{victim_pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"python3", b"app.py"]
    victim_group = group_name("victim", "production", 1)
    secrets = {
        "admin token": data / "admin-token",
        "store": data / "podium.db",
        "victim's env file": data / "node" / "supervisor" / "env" / victim_group / "web-1.sh",
        "victim's environ": Path(f"/proc/{victim_pid}/environ"),
    }
    for what, path in secrets.items():
        assert path.exists(), f"{what} should exist on the host at {path}"
    keys = [data / "addons.key", data / "secrets.key", data / "postgres" / "superuser.password"]
    victim_venv = data / "venvs" / "victim" / "production" / hashlib.sha256(REQUIREMENTS.encode()).hexdigest()
    shared_venv = data / "venvs" / hashlib.sha256(REQUIREMENTS.encode()).hexdigest()  # the old shared cache
    assert victim_venv.exists()

    load = Load(core.settings.router_port, "victim.production.localhost", clients=1, pause=0.01)
    load.start()
    try:
        report = intruder_get(
            core, "/attack",
            read=[str(p) for p in (*secrets.values(), *keys)],
            connect=[str(data / "node" / "supervisor" / "supervisor.sock")],
            signal=[str(victim_pid)],
            write=[str(victim_venv), str(shared_venv)],
        )
        worked = {attack: result for attack, result in report.items() if result["ok"]}
        assert not worked, f"attacks that worked: {worked}"
        assert len(report) == len(secrets) + len(keys) + 4

        # Past its process limit: fork fails with EAGAIN long before 200 children.
        forked = intruder_get(core, "/fork", n=200)
        assert forked["forked"] < 64, forked
        assert "Resource temporarily unavailable" in str(forked["error"])

        # Past its memory limit: killed, restarted, and ps says why.
        before = ps(admin, "intruder")[0]
        with pytest.raises(httpx.HTTPError):
            httpx.get(
                f"http://127.0.0.1:{intruder_ps['port']}/eat", params={"mb": 400}, timeout=30
            ).raise_for_status()
        after = poll(
            lambda: next((p for p in ps(admin, "intruder")
                          if p["state"] == "RUNNING" and p["pid"] not in (None, before["pid"])), None),
            30, "the intruder to be restarted after its OOM kill",
        )
        assert after["last_exit"] == "oom"
        assert after["user"] == "pd-intruder-production"
        # The crash record on the release says so too (the crash counter polls).
        release = poll(
            lambda: (r := admin.get(f"{env_path('intruder', 'production')}/releases/v1").json())["crashes"] and r,
            15, "the crash counter to record the OOM kill",
        )
        assert release["last_exits"] == {"web-1": "oom"}
    finally:
        load.stop()
    # The victim served every request throughout, and is the same process.
    assert load.requests > 0
    assert not load.failures, load.failures[:5]
    assert ps(admin, "victim")[0]["pid"] == victim_pid
    assert not (victim_venv / "lib" / "planted.py").exists()

    # Deleting a service removes its users and its virtualenvs with it.
    core.delete_service(Actor.system(), "intruder")
    with pytest.raises(KeyError):
        pwd.getpwnam("pd-intruder-production")
    assert not (data / "venvs" / "intruder").exists()
    assert pwd.getpwnam("pd-victim-production")


@pytest.mark.parametrize("settings_overrides", [{"sandbox": "off"}])
def test_without_the_sandbox_the_same_attack_reads_the_admin_token(
    admin: TestClient, core: Podium, tmp_path: Path
) -> None:
    """The control: what the sandbox stops is what an unconfined app does get."""
    create_service(admin, "intruder", owner="mallory")
    src = intruder_app(tmp_path / "intruder")
    (src / "app.json").write_text('{"formation": {"web": {"quantity": 1}}}')
    assert deploy(admin, "intruder", "production", slug_of(src)).release["status"] == "live"
    token = core.settings.admin_token_path.absolute()
    report = intruder_get(core, "/attack", read=[str(token)])
    assert report[f"read:{token}"] == {"ok": True, "got": token.read_text()[:200]}
