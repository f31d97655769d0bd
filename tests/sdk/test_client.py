"""The SDK against a live Podium: local answers, exposures once, events batched and resent safely."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select
from tests.conftest import LiveServer
from tests.sdk.proxy import Proxy

from podium.experiments.evaluate import Evaluator
from podium.experiments.models import ExperimentEvent
from podium.sdk import Client

ENV = "/api/v1/services/shop/environments/production"
DEFINITIONS = ENV + "/definitions"


@pytest.fixture
def shop(live_server: LiveServer) -> str:
    """A service 'shop' owned by team 'shop', with a running 50/50 experiment and a flag; the team's token."""
    with live_server.client() as admin:
        admin.post("/api/v1/teams", json={"name": "shop"}).raise_for_status()
        token = admin.post("/api/v1/teams/shop/tokens", json={}).json()["token"]
    with live_server.client(token) as team:
        team.post("/api/v1/services", json={"name": "shop", "owner": "shop"}).raise_for_status()
        team.post(
            ENV + "/experiments",
            json={"key": "big-button", "variants": ["control", "treatment"], "coverage": 1.0, "metric": "signup",
                  "override_cap": True, "reason": "SDK test: everyone"},
        ).raise_for_status()  # fmt: skip
        team.post(ENV + "/experiments/big-button/start", json={"override_cap": True, "reason": "SDK test"})
        team.post(
            ENV + "/flags",
            json={"key": "new-checkout", "enabled": True, "value": "v2", "default_value": "v1", "rollout": 1.0,
                  "rules": [{"condition": {"country": "FR"}, "value": "v2-fr"}]},
        ).raise_for_status()  # fmt: skip
    return str(token)


@pytest.fixture
def proxy(live_server: LiveServer) -> Iterator[Proxy]:
    server = Proxy(live_server.url).start()
    yield server
    server.stop()


def events(live_server: LiveServer) -> list[ExperimentEvent]:
    with live_server.core.store.session() as session:
        return list(session.scalars(select(ExperimentEvent).order_by(ExperimentEvent.id)))


def test_answers_locally_as_the_definitions_say(live_server: LiveServer, shop: str, proxy: Proxy) -> None:
    with Client(proxy.url, shop, "shop", "production", refresh_interval=60) as client:
        assert client.wait_ready(10)
        document = httpx.get(live_server.url + DEFINITIONS, headers={"Authorization": f"Bearer {shop}"}).json()
        reference = Evaluator(document)
        before = len(proxy.seen)
        for i in range(300):
            assert client.variant("big-button", f"u{i}") == reference.variant("big-button", f"u{i}")
        assert client.variant("no-such-experiment", "u1") is None
        assert client.flag("new-checkout", "u1") == "v2"
        assert client.flag("new-checkout", "u1", {"country": "FR"}) == "v2-fr"
        assert client.flag("missing", "u1", default=42) == 42
        assert len(proxy.seen) == before  # evaluated in process: no request per answer


def test_a_new_client_answers_at_once(live_server: LiveServer, shop: str) -> None:
    """A script that makes a client and asks straight away gets real answers, not None for everyone."""
    with live_server.client(shop) as team:
        team.post(ENV + "/experiments", json={"key": "capped", "metric": "signup"}).raise_for_status()
        team.post(ENV + "/experiments/capped/start", json={}).raise_for_status()
    with Client(live_server.url, shop, "shop", "production", refresh_interval=60) as client:
        answers = [client.variant("capped", f"user-{i}") for i in range(20_000)]
    exposed = sum(answer is not None for answer in answers) / len(answers)
    assert 0.015 < exposed < 0.025  # the 2% cap, from the first call on


def test_a_refused_token_does_not_hold_up_the_constructor(live_server: LiveServer, shop: str) -> None:
    client = Client(live_server.url, "pdm_0_wrong", "shop", "production", refresh_interval=60, start_timeout=600)
    try:  # a 401 ends the wait at once (the test would hit its own timeout otherwise)
        assert not client.ready
        assert client.variant("big-button", "u1") is None
        assert "401" in (client.last_error or "")
    finally:
        client.close(timeout=0.1)


def test_definitions_are_refetched_with_their_etag(live_server: LiveServer, shop: str, proxy: Proxy) -> None:
    with Client(proxy.url, shop, "shop", "production", refresh_interval=60, start=False) as client:
        assert client.refresh()
        assert client.refresh()
        with live_server.client(shop) as team:
            team.post(ENV + "/experiments/big-button/stop", json={"reason": "enough"}).raise_for_status()
        assert client.refresh()
        statuses = [status for method, path, status in proxy.seen if path == DEFINITIONS]
        assert statuses == [200, 304, 200]
        assert client.variant("big-button", "u1") == "control"  # stopped: the control for everyone


def test_exposure_logged_once_per_user_and_metrics_tracked(live_server: LiveServer, shop: str, proxy: Proxy) -> None:
    with Client(proxy.url, shop, "shop", "production", flush_interval=60) as client:
        assert client.wait_ready(10)
        variants = {}
        for _ in range(3):
            for i in range(50):
                variants[f"u{i}"] = client.variant("big-button", f"u{i}", {"profession": "marketing"})
        for i in range(0, 50, 5):
            client.track(f"u{i}", "signup")
        client.track("u1", "revenue", 12.5)
        assert client.pending == 50 + 10 + 1
        assert client.flush()
        assert client.pending == 0
    stored = events(live_server)
    exposures = [e for e in stored if e.type == "exposure"]
    assert sorted(e.user_id for e in exposures) == sorted(variants)
    assert {e.user_id: e.variant for e in exposures} == variants
    assert all(e.attributes == {"profession": "marketing"} for e in exposures)
    metrics = sorted((e.user_id, e.name, e.value) for e in stored if e.type == "metric")
    assert ("u1", "revenue", 12.5) in metrics
    assert len([m for m in metrics if m[1] == "signup"]) == 10


def test_a_batch_that_fails_is_sent_again_and_stored_once(live_server: LiveServer, shop: str, proxy: Proxy) -> None:
    with Client(proxy.url, shop, "shop", "production", flush_interval=60, batch_size=25) as client:
        assert client.wait_ready(10)
        # Set before tracking: a full buffer (25 events) is sent at once, maybe before the loop ends.
        proxy.fail_next(1, 503, after=True)  # stored, but the SDK hears a 503
        proxy.fail_next(1, 502)  # not forwarded at all
        for i in range(60):
            client.track(f"u{i}", "signup")
        assert client.flush(timeout=20)
    posts = [(status, json.loads(body)) for (method, _, status), body in
             zip([s for s in proxy.seen if s[0] == "POST"], proxy.bodies, strict=True)]  # fmt: skip
    assert [status for status, _ in posts] == [503, 502, 200, 200, 200]
    first, retried = posts[0][1]["events"], posts[2][1]["events"]
    assert [e["id"] for e in first] == [e["id"] for e in retried]  # the same batch, the same ids
    assert len(first) == 25
    with live_server.core.store.session() as session:
        stored = session.scalar(select(func.count()).select_from(ExperimentEvent))
        distinct = session.scalar(select(func.count(func.distinct(ExperimentEvent.event_id))))
    assert stored == distinct == 60


def test_a_full_buffer_is_sent_without_waiting_for_the_interval(
    live_server: LiveServer, shop: str, proxy: Proxy
) -> None:
    with Client(proxy.url, shop, "shop", "production", flush_interval=3600, batch_size=10) as client:
        assert client.wait_ready(10)
        for i in range(10):
            client.track(f"u{i}", "signup")
        proxy.wait_for(lambda seen: any(m == "POST" and s == 200 for m, _, s in seen))
        assert len(json.loads(proxy.bodies[0])["events"]) == 10


def test_unreachable_at_start_gives_none_then_recovers(
    live_server: LiveServer, shop: str, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    proxy.down = True
    caplog.set_level(logging.WARNING, logger="podium.sdk")
    with Client(proxy.url, shop, "shop", "production", refresh_interval=0.5, start_timeout=0.5) as client:
        proxy.wait_for(lambda seen: len(seen) >= 2)  # it keeps trying
        assert not client.ready
        assert client.variant("big-button", "u1") is None
        assert client.flag("new-checkout", "u1", default="off") == "off"
        client.track("u1", "signup")  # buffered, not lost
        proxy.down = False
        assert client.wait_ready(10)
        assert client.variant("big-button", "u1") in ("control", "treatment")
        assert client.flush(timeout=10)
    assert any("definitions" in r.getMessage() for r in caplog.records)
    assert {e.name for e in events(live_server) if e.type == "metric"} == {"signup"}


def test_nowhere_to_send_never_raises_into_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PODIUM_URL", "PODIUM_TOKEN", "PODIUM_SERVICE", "PODIUM_ENV"):
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with Client() as unconfigured:
        assert unconfigured.variant("x", "u1") is None
        unconfigured.track("u1", "signup")
    client = Client(
        f"http://127.0.0.1:{closed_port}", "t", "shop", "production", refresh_interval=0.1, start_timeout=0.3
    )  # waits at most 0.3 s for definitions that never come, and does not raise
    assert not client.ready
    assert client.variant("x", "u1") is None
    client.track("u1", "signup")
    assert client.flush(timeout=0.3) is False  # still buffered
    client.close(timeout=0.1)
    assert client.pending == 1


def test_environment_variables_configure_the_client(
    live_server: LiveServer, shop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_URL", live_server.url)
    monkeypatch.setenv("PODIUM_TOKEN", shop)
    monkeypatch.setenv("PODIUM_SERVICE", "shop")
    monkeypatch.setenv("PODIUM_ENV", "production")
    with Client() as client:
        assert client.wait_ready(10)
        assert client.variant("big-button", "u7") in ("control", "treatment")


def test_importing_the_sdk_pulls_in_no_server_dependency() -> None:
    code = (
        "import sys, podium.sdk\n"
        "heavy = ['fastapi', 'sqlalchemy', 'numpy', 'scipy', 'pydantic', 'httpx', 'starlette', 'alembic',"
        " 'podium.core', 'podium.experiments.stats', 'podium.experiments.models']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
