"""The experiment service on a real store: lifecycle, exposure cap, staleness, auto-stop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from podium.catalog.auth import Actor
from podium.catalog.models import PLATFORM_TEAM, AuditEvent
from podium.core import Podium
from podium.errors import Conflict, Forbidden, Invalid
from podium.experiments.service import ExperimentService, get_experiment_row, stop_running
from podium.store.db import utcnow

ADMIN = Actor(team=PLATFORM_TEAM, team_id=0, token_id=None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings_overrides(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The core's store: a SQLite file, or a fresh database on the test PostgreSQL cluster."""
    if request.param == "sqlite":
        yield {}
        return
    superuser_url: str = request.getfixturevalue("postgres_url")
    name = f"podium_{uuid.uuid4().hex[:12]}"
    admin = create_engine(superuser_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield {"database_url": make_url(superuser_url).set(database=name).render_as_string(hide_password=False)}
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def shop(core: Podium) -> Actor:
    """A team ``growth`` owning service ``shop``; the actor is that team."""
    team = core.catalog.create_team(ADMIN, "growth")
    core.catalog.create_service(ADMIN, "shop", "growth")
    return Actor(team="growth", team_id=team.id, token_id=None)


def test_auto_stop_records_who_and_why_under_the_owning_team(core: Podium, shop: Actor) -> None:
    core.experiments.create(shop, "shop", "production", "big-button", metric="signup", guardrails=["error"])
    core.experiments.start(shop, "shop", "production", "big-button")

    with core.store.session() as session:
        row = get_experiment_row(session, "shop", "production", "big-button")
        assert stop_running(session, row, "guardrail", "error: 3.1% of users in treatment against 1.0% in control")
        assert not stop_running(session, row, "guardrail", "again")  # no longer running

    shown = core.experiments.get("shop", "production", "big-button")
    assert (shown.status, shown.stopped_by) == ("stopped", "guardrail")
    assert shown.stop_reason == "error: 3.1% of users in treatment against 1.0% in control"
    document, _ = core.experiments.definitions("shop", "production")
    assert document["experiments"][0]["force"] == "control"
    with core.store.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "experiment.auto_stop")).one()
        assert (event.team, event.service, event.target) == ("growth", "shop", "experiment production/big-button")
        assert event.before is not None
        assert event.before["status"] == "running"
        assert event.after is not None
        assert event.after["stopped_by"] == "guardrail"


def test_a_draft_stop_is_not_an_auto_stop(core: Podium, shop: Actor) -> None:
    core.experiments.create(shop, "shop", "staging", "draft-one", metric="signup")
    with core.store.session() as session:
        assert not stop_running(session, get_experiment_row(session, "shop", "staging", "draft-one"), "guardrail", "x")
    assert core.experiments.get("shop", "staging", "draft-one").status == "draft"


def test_lifecycle_moves_one_way(core: Podium, shop: Actor) -> None:
    exp = core.experiments
    exp.create(shop, "shop", "production", "k", metric="signup")
    with pytest.raises(Conflict, match="cannot stop experiment 'k': it is draft"):
        exp.stop(shop, "shop", "production", "k")
    exp.start(shop, "shop", "production", "k")
    with pytest.raises(Conflict, match="cannot start experiment 'k': it is running"):
        exp.start(shop, "shop", "production", "k")
    with pytest.raises(Conflict, match="only a draft can be deleted"):
        exp.delete(shop, "shop", "production", "k")
    exp.stop(shop, "shop", "production", "k", reason="enough data")
    decided = exp.decide(shop, "shop", "production", "k", decision="ship", variant="treatment", reason="lift +12%")
    assert decided.decision is not None
    assert (decided.status, decided.decision.variant, decided.decision.by) == ("decided", "treatment", "growth")
    with pytest.raises(Conflict, match="it is decided"):
        exp.decide(shop, "shop", "production", "k", decision="discard", variant=None, reason="changed my mind")


def test_cap_refused_then_overridden_with_a_reason(core: Podium, shop: Actor) -> None:
    exp = core.experiments
    with pytest.raises(Invalid, match=r"above the exposure cap 0\.02.*override_cap with a reason"):
        exp.create(shop, "shop", "production", "wide", metric="signup", coverage=0.5)
    with pytest.raises(Invalid, match="needs a reason"):
        exp.create(shop, "shop", "production", "wide", metric="signup", coverage=0.5, override_cap=True, reason=" ")
    made = exp.create(
        shop, "shop", "production", "wide", metric="signup", coverage=0.5, override_cap=True, reason="launch week"
    )
    assert made.cap_override is not None
    assert (made.cap_override.by, made.cap_override.reason) == ("growth", "launch week")
    started = exp.start(shop, "shop", "production", "wide")  # the override holds for the coverage it was given for
    assert started.status == "running"
    with pytest.raises(Invalid, match="exposure cap"):
        exp.update(shop, "shop", "production", "wide", {"coverage": 0.6})
    lowered = exp.update(shop, "shop", "production", "wide", {"coverage": 0.01})
    assert lowered.cap_override is None


def test_stale_after_the_configured_days(core: Podium, shop: Actor) -> None:
    exp = core.experiments
    exp.create(shop, "shop", "production", "old", metric="signup")
    exp.create(shop, "shop", "production", "new", metric="signup")
    exp.start(shop, "shop", "production", "old")
    exp.start(shop, "shop", "production", "new")
    with core.store.session() as session:
        get_experiment_row(session, "shop", "production", "old").started_at = utcnow() - timedelta(days=15)
    assert [e.key for e in exp.for_team("growth", stale_only=True)] == ["old"]
    assert [(e.key, e.stale) for e in exp.for_team("growth")] == [("new", False), ("old", True)]


def test_another_team_changes_nothing(core: Podium, shop: Actor) -> None:
    other = core.catalog.create_team(ADMIN, "search")
    stranger = Actor(team="search", team_id=other.id, token_id=None)
    core.experiments.create(shop, "shop", "production", "k", metric="signup")
    with pytest.raises(Forbidden):
        core.experiments.start(stranger, "shop", "production", "k")
    with pytest.raises(Forbidden):
        core.experiments.flags.create(stranger, "shop", "production", "f")
    assert core.experiments.get("shop", "production", "k").status == "draft"
    assert core.experiments.flags.list("shop", "production") == []


def test_definitions_follow_changes_made_elsewhere(core: Podium, shop: Actor) -> None:
    """Another process (here: another service object on the same store) or a guardrail changes an
    experiment: the definitions this one keeps show it at the next fetch."""
    elsewhere = ExperimentService(core.settings, core.store)
    core.experiments.create(shop, "shop", "production", "k", metric="signup")
    assert core.experiments.definitions("shop", "production")[0]["experiments"] == []
    elsewhere.start(shop, "shop", "production", "k")
    running, tag = core.experiments.definitions("shop", "production")
    assert [e["status"] for e in running["experiments"]] == ["running"]
    elsewhere.flags.create(shop, "shop", "production", "f")
    with_flag, flag_tag = core.experiments.definitions("shop", "production")
    assert [f["key"] for f in with_flag["flags"]] == ["f"]
    assert flag_tag != tag
    with core.store.session() as session:
        stop_running(session, get_experiment_row(session, "shop", "production", "k"), "guardrail", "errors")
    assert core.experiments.definitions("shop", "production")[0]["experiments"][0]["force"] == "control"
    elsewhere.flags.delete(shop, "shop", "production", "f")
    assert core.experiments.definitions("shop", "production")[0]["flags"] == []
