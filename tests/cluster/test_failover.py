"""What must survive the death of a server: incidents and pages (exactly one of each), and
rollouts (settled by the other server: the old or the new release serves, the lock is free).

The servers are killed with SIGKILL, as when a machine loses power: no shutdown code runs.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
import pytest
from tests.cluster.support import Pair, Server
from tests.deploy.support import (
    HELLO,
    create_service,
    deploy,
    env_path,
    follow,
    poll,
    probe_app,
    slug_of,
    through_router,
    upload,
)
from tests.support.receiver import Receiver

from podium.runtime.naming import group_name
from podium.runtime.node import LocalNode
from podium.runtime.supervisor import Supervisor

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def supervisor(server: Server) -> Supervisor:
    return LocalNode(server.data_dir / "node", server.router_port).supervisor


def on_call(client: httpx.Client, team: str, person: str, receiver: Receiver) -> None:
    """A new team whose one on-call person is paged at the receiver's ``/<person>``."""
    client.post("/api/v1/teams", json={"name": team}).raise_for_status()
    rotation = {
        "members": [{"name": person, "url": receiver.url(person)}], "period": "daily", "handoff": "09:00",
        "escalate_after_minutes": 60,
    }
    answer = client.put(f"/api/v1/teams/{team}/oncall", json=rotation)
    assert answer.status_code == 200, answer.text


def hello_up(client: httpx.Client, service: str, team: str) -> None:
    """``examples/hello`` live in production, and its web check (made by the leader) saying up."""
    create_service(client, service, owner=team)
    rollout = deploy(client, service, "production", slug_of(HELLO))
    assert rollout.release["status"] == "live", rollout.release

    def up() -> bool:
        checks = client.get(f"{env_path(service, 'production')}/checks").json()
        return bool(checks) and checks[0]["state"] == "up"

    poll(up, 30, f"the web check of {service} to say up")


def incidents(client: httpx.Client, service: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get("/api/v1/incidents", params={"service": service}).json()
    return found


def pages(client: httpx.Client, team: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get(f"/api/v1/teams/{team}/oncall/pages").json()
    return found


def test_an_app_going_down_opens_one_incident_and_sends_one_page(pair: Pair, receiver: Receiver) -> None:
    pair.up()
    leader = pair.leader()
    with pair.other(leader).client() as client:  # any server: the follower here
        on_call(client, "alpha", "alice", receiver)
        hello_up(client, "down-once", "alpha")
        group = group_name("down-once", "production", 1)
        supervisor(leader).stop_process(group, "web-1")
        try:
            poll(lambda: incidents(client, "down-once"), 30, "an incident to open")
            [page] = receiver.wait_for(1, "alice", timeout=30)
            assert "down-once/production is down" in page.title
            sent = poll(lambda: [p for p in pages(client, "alpha") if p["state"] == "sent"], 10, "the page sent")
            assert [(p["kind"], p["recipient"], p["attempts"]) for p in sent] == [("trigger", "alice", 1)]
            assert len(incidents(client, "down-once")) == 1
        finally:
            supervisor(leader).start_process(group, "web-1")


def test_a_page_due_when_the_leader_is_killed_is_sent_once_by_the_other(pair: Pair, receiver: Receiver) -> None:
    pair.up()
    leader = pair.leader()
    survivor = pair.other(leader)
    with survivor.client() as client:
        on_call(client, "bravo", "bob", receiver)
        hello_up(client, "down-twice", "bravo")
        receiver.stop()  # the page fails, and waits in the outbox for its next attempt
        group = group_name("down-twice", "production", 1)
        supervisor(leader).stop_process(group, "web-1")
        try:
            poll(lambda: incidents(client, "down-twice"), 30, "an incident to open")
            poll(lambda: [p for p in pages(client, "bravo") if p["state"] == "pending" and p["attempts"] >= 1],
                 30, "a failed attempt at the page")
            leader.kill()
            receiver.start()
            assert pair.leader() is survivor
            [page] = receiver.wait_for(1, "bob", timeout=30)
            assert "down-twice/production is down" in page.title
            poll(lambda: [p for p in pages(client, "bravo") if p["state"] == "sent"], 10, "the page recorded sent")
            assert len([p for p in receiver.pages if p.path == "/bob"]) == 1
            assert len(incidents(client, "down-twice")) == 1
            assert [p["kind"] for p in pages(client, "bravo")] == ["trigger"]
        finally:
            if receiver._server is None:
                receiver.start()
            supervisor(survivor).start_process(group, "web-1")


@pytest.fixture(scope="module")
def probe_slugs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """``old``: quick to start. ``slow-release``: a release command that takes 30 s.
    ``slow-listen``: a web process that listens only after 30 s."""
    root = tmp_path_factory.mktemp("cluster-apps")
    probe_app(root / "old", marker="old")
    probe_app(root / "slow-release", marker="new", release=True, release_sleep=30)
    probe_app(root / "slow-listen", marker="new", listen_delay=30)
    probe_app(root / "release-3s", marker="new", release=True, release_sleep=3)
    return {name: slug_of(root / name) for name in ("old", "slow-release", "slow-listen", "release-3s")}


def kill_during(server: Server, service: str, stage: str, slug: bytes) -> str:
    """Start a deploy on ``server`` and SIGKILL it once its rollout reports ``stage``; the version."""
    with server.client() as client:
        started = upload(client, service, "staging", slug)
        assert started.status_code == 202, started.text
        version: str = started.json()["version"]
        with (
            contextlib.suppress(httpx.HTTPError),  # the stream breaks when the server dies
            client.stream("GET", f"{env_path(service, 'staging')}/releases/{version}/events") as events,
        ):
            for line in events.iter_lines():
                if json.loads(line).get("stage") == stage:
                    server.kill()
                    break
    assert not server.running(), f"the rollout of {version} ended before reporting {stage}"
    return version


@pytest.mark.parametrize(("runner", "stage", "slug"), [
    ("follower", "releasing", "slow-release"),
    ("leader", "health_check", "slow-listen"),
])
def test_a_rollout_whose_server_is_killed_is_settled_by_the_other(
    pair: Pair, probe_slugs: dict[str, bytes], runner: str, stage: str, slug: str,
) -> None:
    pair.up()
    leader = pair.leader()
    doomed = leader if runner == "leader" else pair.other(leader)
    survivor = pair.other(doomed)
    service = f"settle-{stage.replace('_', '-')}"
    host = f"{service}.staging.localhost"
    with survivor.client() as client:
        create_service(client, service)
        assert deploy(client, service, "staging", probe_slugs["old"]).release["status"] == "live"
    assert through_router(doomed.router_port, host).json()["marker"] == "old"

    killed = kill_during(doomed, service, stage, probe_slugs[slug])

    with survivor.client() as client:
        path = f"{env_path(service, 'staging')}/releases/{killed}"
        settled = poll(lambda: (r := client.get(path).json())["status"] == "failed" and r, 30,
                       f"{killed} settled by the other server")
        assert "interrupted" in settled["failure_reason"], settled
        assert settled["failure_reason"].startswith(f"{stage}:"), settled
        assert through_router(survivor.router_port, host).json()["marker"] == "old"
        doomed_group = group_name(service, "staging", int(killed.removeprefix("v")))
        assert doomed_group not in supervisor(survivor).groups(), "the killed rollout's processes were stopped"
        assert pair.leader() is survivor
        again = upload(client, service, "staging", probe_slugs["old"])  # the lock is free
        assert again.status_code == 202, again.text
        assert follow(client, service, "staging", again.json()["version"]).release["status"] == "live"


def test_a_deploy_lock_taken_on_one_server_holds_on_the_other(pair: Pair, probe_slugs: dict[str, bytes]) -> None:
    pair.up()
    first, second = pair.servers
    with first.client() as on_first, second.client() as on_second:
        create_service(on_first, "locked")
        started = upload(on_first, "locked", "staging", probe_slugs["release-3s"])
        assert started.status_code == 202, started.text
        refused = upload(on_second, "locked", "staging", probe_slugs["old"])
        assert refused.status_code == 409, refused.text
        assert "a deploy is already running here: v1" in refused.json()["detail"]
        assert follow(on_first, "locked", "staging", started.json()["version"]).release["status"] == "live"
        again = upload(on_second, "locked", "staging", probe_slugs["old"])
        assert again.status_code == 202, again.text
        assert follow(on_second, "locked", "staging", again.json()["version"]).release["status"] == "live"
