"""Maintenance windows: planned, listed, cancelled; which environment one covers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from tests.health.support import actor_of, make_service

from podium.core import Podium
from podium.errors import Forbidden, Invalid, NotFound
from podium.store.db import utcnow


def test_add_list_remove(core: Podium, hello: str) -> None:
    web = actor_of(core, "web")
    now = utcnow()
    everywhere = core.maintenance.add(web, "hello", None, now, now + timedelta(hours=1), "database upgrade")
    later = core.maintenance.add(web, "hello", "staging", now + timedelta(days=1), now + timedelta(days=1, hours=2))
    assert [(w.id, w.env, w.reason, w.created_by) for w in core.maintenance.list("hello")] == [
        (everywhere.id, None, "database upgrade", "web"), (later.id, "staging", "", "web"),
    ]
    assert core.maintenance.active("hello", "production") == everywhere
    assert core.maintenance.active("hello", "staging", now + timedelta(days=1, hours=1)) == later
    assert core.maintenance.active("hello", "production", now + timedelta(days=1, hours=1)) is None
    core.maintenance.remove(web, "hello", everywhere.id)
    assert [w.id for w in core.maintenance.list("hello")] == [later.id]
    with pytest.raises(NotFound):
        core.maintenance.remove(web, "hello", everywhere.id)


def test_past_windows_are_listed_on_request(core: Podium, hello: str) -> None:
    web = actor_of(core, "web")
    now = utcnow()
    window = core.maintenance.add(web, "hello", None, now - timedelta(hours=1), now + timedelta(seconds=30))
    assert core.maintenance.list("hello", include_past=True) == [window]
    with pytest.raises(Invalid, match="ended already"):
        core.maintenance.add(web, "hello", None, now - timedelta(hours=2), now - timedelta(hours=1))


def test_only_the_owner_a_config_grant_or_platform(core: Podium, admin: TestClient, hello: str) -> None:
    make_service(admin, "other", "outsider")
    now = utcnow()
    with pytest.raises(Forbidden):
        core.maintenance.add(actor_of(core, "outsider"), "hello", None, now, now + timedelta(hours=1))
    window = core.maintenance.add(actor_of(core, "platform"), "hello", None, now, now + timedelta(hours=1))
    with pytest.raises(Forbidden):
        core.maintenance.remove(actor_of(core, "outsider"), "hello", window.id)


def test_bad_windows_are_refused(core: Podium, hello: str) -> None:
    web = actor_of(core, "web")
    now = utcnow()
    naive = datetime(2030, 1, 1)
    far_east = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))  # before datetime.min in UTC
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (lambda: core.maintenance.add(web, "hello", None, now, now), Invalid, "end after it starts"),
        (lambda: core.maintenance.add(web, "hello", None, naive, naive + timedelta(hours=1)), Invalid, "timezone"),
        (lambda: core.maintenance.add(web, "hello", None, now, now + timedelta(days=400)), Invalid, "at most"),
        (lambda: core.maintenance.add(web, "hello", "qa", now, now + timedelta(hours=1)), Invalid, "environment"),
        (lambda: core.maintenance.add(web, "hello", None, now, now + timedelta(hours=1), "x" * 501), Invalid,
         "too long"),
        (lambda: core.maintenance.add(web, "hello", None, far_east, now), Invalid, "out of range"),
        (lambda: core.maintenance.remove(web, "hello", 0), NotFound, "window 0"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
