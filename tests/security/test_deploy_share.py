"""One team cannot hold every team's deploys: with four rollout workers and a share of two
per team, four slow rollouts of one team (a health check that waits long) leave workers
free, and another team's deploy goes live while they wait."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient
from tests.deploy.support import create_service, deploy, env_path, probe_app, slug_of, upload

from podium.deploy.workers import TeamShares

SLOW_DELAY = 15  # seconds each slow rollout waits before its first health probe (app.json initialDelay)


def test_one_teams_slow_rollouts_do_not_delay_another_teams_deploy(admin: TestClient, tmp_path: Path) -> None:
    slow_check = {"type": "startup", "path": "/health", "initialDelay": SLOW_DELAY, "attempts": 1}
    slow = slug_of(probe_app(tmp_path / "slow", app_json={"healthchecks": {"web": [slow_check]}}))
    slow_services = [f"slow-{i}" for i in range(4)]
    for name in slow_services:
        create_service(admin, name, owner="patient-team")
    create_service(admin, "quick", owner="busy-team")

    for name in slow_services:  # as many as there are workers: a plain pool would be full
        assert upload(admin, name, "staging", slow).status_code == 202

    quick = deploy(admin, "quick", "staging", slug_of(probe_app(tmp_path / "quick", marker="quick")))

    assert quick.release["status"] == "live", quick.release
    statuses = [
        admin.get(f"{env_path(name, 'staging')}/releases/v1").json()["status"] for name in slow_services
    ]
    # The slow team had two rollouts waiting on their health checks, two queued behind them.
    assert sorted(statuses) == ["deploying", "deploying", "pending", "pending"], statuses


def test_a_teams_share_is_the_most_it_runs_at_once() -> None:
    """The pool on its own: jobs of one team beyond its share wait, others' start at once."""
    pool = TeamShares(workers=3, per_team=2)
    release = threading.Event()
    started: dict[str, threading.Event] = {}

    def job(name: str) -> str:
        started[name].set()
        release.wait(30)
        return name

    futures = {}
    for name, team in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b")]:
        started[name] = threading.Event()
        futures[name] = pool.submit(team, job, name)
    for name in ("a1", "a2", "b1"):
        assert started[name].wait(10), f"{name} did not start"
    assert pool.running("a") == 2
    assert not started["a3"].is_set()
    release.set()
    assert futures["a3"].result(timeout=10) == "a3"
    pool.shutdown(wait=True)
    assert pool.running("a") == 0
