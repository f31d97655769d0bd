"""CheckService: the web check every deployed app gets, extra checks, who may change them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.health.support import actor_of, live_release, make_service

from podium.catalog.auth import Actor
from podium.catalog.models import AuditEvent
from podium.core import Podium
from podium.errors import Conflict, Forbidden, Invalid, NotFound

HEALTH = {"healthchecks": {"web": [{"type": "startup", "path": "/health"}]}}
READY = {"healthchecks": {"web": [{"type": "readiness", "path": "/ready"}]}}


@pytest.fixture
def web(core: Podium, hello: str) -> Actor:
    return actor_of(core, "web")


def names(core: Podium, env: str | None = None) -> list[tuple[str, str, str]]:
    return [(c.env, c.name, c.target) for c in core.checks.list("hello", env)]


def test_a_live_release_with_web_processes_gets_a_web_check(core: Podium, web: Actor) -> None:
    live_release(core, "hello", "production", app_json=HEALTH)
    live_release(core, "hello", "staging", formation={"worker": 1})  # no web process: nothing to probe
    core.checks.ensure_web_checks()
    [check] = core.checks.list("hello")
    assert (check.env, check.name, check.path, check.path_pinned) == ("production", "web", "/health", False)
    assert (check.interval, check.timeout, check.down_after, check.up_after) == (0.1, 1.0, 3, 2)
    assert check.state == "unknown"
    assert [t.name for t, _ in core.checks.targets()] == ["web"]


def test_an_unpinned_path_follows_app_json_and_a_pinned_one_stays(core: Podium, web: Actor) -> None:
    live_release(core, "hello", "production", app_json=HEALTH)
    core.checks.ensure_web_checks()
    live_release(core, "hello", "production", app_json=READY)
    core.checks.ensure_web_checks()
    assert names(core) == [("production", "web", "GET /ready")]
    live_release(core, "hello", "production")
    core.checks.ensure_web_checks()
    assert names(core) == [("production", "web", "GET /")]
    core.checks.update(web, "hello", "production", "web", {"path": "/healthz", "interval": 30})
    live_release(core, "hello", "production", app_json=HEALTH)
    core.checks.ensure_web_checks()
    [check] = core.checks.list("hello")
    assert (check.path, check.path_pinned, check.interval) == ("/healthz", True, 30.0)


def test_set_before_the_first_deploy_makes_the_web_check(core: Podium, web: Actor) -> None:
    check = core.checks.update(web, "hello", "staging", "web", {"path": "/health", "down_after": 5})
    assert (check.name, check.path, check.down_after, check.up_after) == ("web", "/health", 5, 2)
    assert core.checks.targets() == []  # nothing is live: nothing to probe through the router
    live_release(core, "hello", "staging", app_json=READY)
    core.checks.ensure_web_checks()
    assert names(core, "staging") == [("staging", "web", "GET /health")]
    with core.store.session() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent)) if e.action.startswith("check.")]
    assert actions == ["check.update"]


def test_extra_checks(core: Podium, web: Actor) -> None:
    core.checks.add(web, "hello", "production", "db", {"tcp": "127.0.0.1:5432"})
    core.checks.add(web, "hello", "production", "api", {"path": "/api/ping", "expect_status": 204,
                                                       "body_contains": None})
    core.checks.add(web, "hello", "staging", "api", {"path": "/", "json_field": "status=ok"})
    assert names(core) == [
        ("production", "api", "GET /api/ping"), ("production", "db", "TCP 127.0.0.1:5432"),
        ("staging", "api", "GET /"),
    ]
    assert [t.name for t, _ in core.checks.targets()] == ["db"]  # TCP needs no live release
    changed = core.checks.update(web, "hello", "production", "api", {"expect_status": None, "enabled": False})
    assert (changed.expect_status, changed.enabled) == (None, False)
    core.checks.remove(web, "hello", "production", "db")
    assert names(core, "production") == [("production", "api", "GET /api/ping")]


def test_who_may_change_checks(core: Podium, admin: TestClient, web: Actor) -> None:
    make_service(admin, "other", "outsider")
    make_service(admin, "search", "search")
    admin.post("/api/v1/services/hello/grants", json={"team": "search", "rights": ["config"], "duration": "1d"})
    admin.post("/api/v1/services/hello/grants", json={"team": "outsider", "rights": ["deploy"], "duration": "1d"})
    with pytest.raises(Forbidden):
        core.checks.add(actor_of(core, "outsider"), "hello", "production", "db", {"tcp": "127.0.0.1:1"})
    with pytest.raises(Forbidden):
        core.checks.update(actor_of(core, "outsider"), "hello", "production", "web", {"interval": 1})
    core.checks.update(actor_of(core, "search"), "hello", "production", "web", {"interval": 1})
    core.checks.add(actor_of(core, "platform"), "hello", "production", "db", {"tcp": "127.0.0.1:1"})
    with pytest.raises(Forbidden):
        core.checks.remove(actor_of(core, "outsider"), "hello", "production", "db")


def test_bad_check_settings_are_refused(core: Podium, web: Actor) -> None:
    core.checks.add(web, "hello", "production", "db", {"tcp": "127.0.0.1:5432"})
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: core.checks.add(web, "hello", "production", "web", {}), Conflict, "every deployed app has"),
        (lambda: core.checks.add(web, "hello", "production", "db", {}), Conflict, "exists already"),
        (lambda: core.checks.add(web, "hello", "production", "Bad Name", {}), Invalid, "invalid check name"),
        (lambda: core.checks.add(web, "hello", "qa", "x", {}), NotFound, "environment 'qa'"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"path": "no-slash"}), Invalid, "start with /"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"path": "/a b"}), Invalid, "no spaces"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"tcp": "host"}), Invalid, "host:port"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"tcp": "h:70000"}), Invalid, "host:port"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"json_field": "noequals"}), Invalid,
         "field=value"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"interval": 0}), Invalid, "between 0.1"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"interval": float("nan")}), Invalid,
         "between"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"down_after": 1.5}), Invalid, "whole number"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"expect_status": 99}), Invalid, "between"),
        (lambda: core.checks.add(web, "hello", "production", "x", {"colour": "red"}), Invalid, "unknown"),
        (lambda: core.checks.update(web, "hello", "production", "db", {"path": "/"}), Invalid,
         "applies to HTTP checks"),
        (lambda: core.checks.update(web, "hello", "production", "web", {"tcp": "a:1"}), Invalid,
         "applies to TCP checks"),
        (lambda: core.checks.update(web, "hello", "production", "web", {"interval": None}), Invalid,
         "cannot be empty"),
        (lambda: core.checks.update(web, "hello", "production", "nope", {}), NotFound, "check 'nope'"),
        (lambda: core.checks.remove(web, "hello", "production", "web"), Invalid, "--disable"),
        (lambda: core.checks.remove(web, "hello", "production", "nope"), NotFound, "check 'nope'"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
