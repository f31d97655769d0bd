"""The pure parts of a probe: the state machine and how an answer is judged."""

from __future__ import annotations

from typing import Any

import pytest

from podium.health.models import CheckState
from podium.health.probe import Counters, ProbeTarget, advance, judge

DOWN, UP, UNKNOWN = CheckState.DOWN, CheckState.UP, CheckState.UNKNOWN


def run(results: str, down_after: int = 3, up_after: int = 2, start: Counters | None = None) -> list[CheckState]:
    """The state after each result of ``results`` ("x" failed, "." passed)."""
    counters, states = start or Counters(), []
    for result in results:
        counters = advance(counters, result == ".", down_after, up_after)
        states.append(counters.state)
    return states


def test_down_only_after_down_after_failures_in_a_row() -> None:
    assert run("xx.xxx") == [UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN, DOWN]


def test_up_only_after_up_after_passes_in_a_row() -> None:
    down = Counters(DOWN, 0, 5)
    assert run(".x..", start=down) == [DOWN, DOWN, DOWN, UP]


def test_a_new_check_is_unknown_until_enough_results_agree() -> None:
    assert run("..") == [UNKNOWN, UP]
    assert run("x", down_after=1) == [DOWN]


def test_counters_count_the_current_streak() -> None:
    counters = Counters()
    for ok in (True, True, False, False):
        counters = advance(counters, ok, 3, 2)
    assert counters == Counters(UP, 0, 2)


def target(**options: Any) -> ProbeTarget:
    return ProbeTarget(
        check_id=1, service="hello", env="production", name="web", kind="http", path="/health", **options
    )


@pytest.mark.parametrize(
    ("options", "status", "body", "problem"),
    [
        ({}, 200, b"", None),
        ({}, 302, b"", None),
        ({}, 404, b"", "GET /health answered 404"),
        ({"expect_status": 204}, 200, b"", "GET /health answered 200, not 204"),
        ({"expect_status": 503}, 503, b"", None),
        ({"body_contains": "ok"}, 200, b"all ok", None),
        ({"body_contains": "ok"}, 200, b"fine", "GET /health: the body lacks 'ok'"),
        ({"json_field": "status=ok"}, 200, b'{"status": "ok"}', None),
        ({"json_field": "db.up=true"}, 200, b'{"db": {"up": true}}', None),
        ({"json_field": "db.lag=3"}, 200, b'{"db": {"lag": 3}}', None),
        ({"json_field": "db.up=true"}, 200, b'{"db": {"up": false}}', "GET /health: db.up is 'false', not 'true'"),
        ({"json_field": "db.up=true"}, 200, b'{"db": "x"}', "GET /health: the JSON has no field 'db.up'"),
        ({"json_field": "status=ok"}, 200, b"<html>", "GET /health: the body is not JSON"),
        ({"json_field": "status=ok"}, 500, b'{"status": "ok"}', "GET /health answered 500"),
    ],
)
def test_judge(options: dict[str, Any], status: int, body: bytes, problem: str | None) -> None:
    assert judge(target(**options), status, body) == problem


def test_labels_and_requests() -> None:
    assert target().label == "hello/production"
    tcp = ProbeTarget(check_id=2, service="hello", env="staging", name="db", kind="tcp", host="127.0.0.1", port=5432)
    assert (tcp.label, tcp.request) == ("hello/staging (check db)", "TCP 127.0.0.1:5432")
    assert ProbeTarget(check_id=3, service="a", env="b", name="web", kind="http", interval=0.2).effective_timeout == 0.2
