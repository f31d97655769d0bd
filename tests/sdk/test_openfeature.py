"""The OpenFeature provider: flags and experiments through openfeature's own client."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.track import TrackingEventDetails
from sqlalchemy import select
from tests.conftest import LiveServer

from podium.experiments.evaluate import Evaluator
from podium.experiments.models import ExperimentEvent
from podium.sdk import Client
from podium.sdk.openfeature import PodiumProvider

ENV = "/api/v1/services/shop/environments/production"


@pytest.fixture
def podium_client(live_server: LiveServer) -> Iterator[Client]:
    with live_server.client() as admin:
        admin.post("/api/v1/teams", json={"name": "shop"}).raise_for_status()
        token = admin.post("/api/v1/teams/shop/tokens", json={}).json()["token"]
    with live_server.client(token) as team:
        team.post("/api/v1/services", json={"name": "shop", "owner": "shop"}).raise_for_status()
        team.post(
            ENV + "/experiments",
            json={"key": "big-button", "variants": ["control", "treatment"], "coverage": 1.0, "metric": "signup",
                  "override_cap": True, "reason": "provider test"},
        ).raise_for_status()  # fmt: skip
        team.post(ENV + "/experiments/big-button/start", json={"override_cap": True, "reason": "provider test"})
        flags = [
            {"key": "dark-mode", "enabled": True, "value": True, "default_value": False,
             "rules": [{"condition": {"country": "DE"}, "value": False}]},
            {"key": "page-size", "enabled": True, "value": 50, "default_value": 20},
            {"key": "discount", "enabled": True, "value": 0.15, "default_value": 0.0, "rollout": 0.0},
            {"key": "layout", "enabled": True, "value": {"columns": 3}, "default_value": {"columns": 1}},
            {"key": "banner", "enabled": False, "value": "sale", "default_value": "none"},
        ]  # fmt: skip
        for flag in flags:
            team.post(ENV + "/flags", json=flag).raise_for_status()
    client = Client(live_server.url, token, "shop", "production", flush_interval=60)
    yield client
    api.shutdown()
    api.clear_providers()
    client.close()


def context(user: str, **attributes: object) -> EvaluationContext:
    return EvaluationContext(targeting_key=user, attributes=dict(attributes))


def test_flags_of_every_type(podium_client: Client) -> None:
    ready = threading.Event()
    api.set_provider(PodiumProvider(podium_client))  # initialised in the background

    def on_ready(_: object) -> None:
        ready.set()

    api.add_handler(ProviderEvent.PROVIDER_READY, on_ready)  # runs at once if ready already
    assert ready.wait(10)
    api.remove_handler(ProviderEvent.PROVIDER_READY, on_ready)
    flags = api.get_client()
    assert flags.get_boolean_value("dark-mode", False, context("u1")) is True
    assert flags.get_boolean_value("dark-mode", True, context("u1", country="DE")) is False
    assert flags.get_integer_value("page-size", 10, context("u1")) == 50
    assert flags.get_float_value("discount", 1.0, context("u1")) == 0.0  # rollout 0: the default value
    assert flags.get_object_value("layout", {}, context("u1")) == {"columns": 3}
    assert flags.get_string_value("banner", "x", context("u1")) == "none"

    details = flags.get_boolean_details("dark-mode", False, context("u1", country="DE"))
    assert details.reason == Reason.TARGETING_MATCH
    assert flags.get_string_details("banner", "x", context("u1")).reason == Reason.DISABLED
    assert flags.get_float_details("discount", 1.0, context("u1")).reason == Reason.DEFAULT


def test_wrong_type_or_unknown_flag_gives_the_default_with_an_error(podium_client: Client) -> None:
    api.set_provider_and_wait(PodiumProvider(podium_client))
    flags = api.get_client()
    mismatch = flags.get_boolean_details("page-size", True, context("u1"))
    assert (mismatch.value, mismatch.error_code) == (True, ErrorCode.TYPE_MISMATCH)
    missing = flags.get_string_details("nope", "fallback", context("u1"))
    assert (missing.value, missing.error_code) == ("fallback", ErrorCode.FLAG_NOT_FOUND)
    no_user = flags.get_string_details("big-button", "control", EvaluationContext())
    assert (no_user.value, no_user.error_code) == ("control", ErrorCode.TARGETING_KEY_MISSING)


def test_experiments_read_as_string_flags_and_log_exposures(live_server: LiveServer, podium_client: Client) -> None:
    api.set_provider_and_wait(PodiumProvider(podium_client))
    flags = api.get_client()
    reference = Evaluator(_definitions(live_server))
    for i in range(40):
        got = flags.get_string_value("big-button", "control", context(f"u{i}", plan="pro"))
        assert got == reference.variant("big-button", f"u{i}")
    flags.track("signup", context("u3"), TrackingEventDetails(value=1.0))
    assert podium_client.flush()
    with live_server.core.store.session() as session:
        stored = list(session.scalars(select(ExperimentEvent)))
    exposures = [e for e in stored if e.type == "exposure"]
    assert len(exposures) == 40
    assert all(e.attributes == {"plan": "pro"} for e in exposures)
    assert [(e.user_id, e.name) for e in stored if e.type == "metric"] == [("u3", "signup")]


def test_not_ready_gives_defaults(live_server: LiveServer) -> None:
    client = Client("http://127.0.0.1:9", "t", "shop", "production", refresh_interval=60, start_timeout=0)
    api.set_provider_and_wait(PodiumProvider(client, ready_timeout=0.05))
    details = api.get_client().get_boolean_details("dark-mode", True, context("u1"))
    assert (details.value, details.error_code) == (True, ErrorCode.PROVIDER_NOT_READY)
    api.shutdown()


def _definitions(live_server: LiveServer) -> dict[str, object]:
    with live_server.client() as admin:
        document: dict[str, object] = admin.get(ENV + "/definitions").json()
    return document
