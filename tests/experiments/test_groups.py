"""Saved groups on a real store: who may change them, what SDKs get, and deleting one in use."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.experiments.test_service import settings_overrides  # noqa: F401 -- SQLite and PostgreSQL

from podium.catalog.auth import Actor
from podium.catalog.models import PLATFORM_TEAM, AuditEvent
from podium.core import Podium
from podium.errors import Conflict, Forbidden, Invalid, NotFound

ADMIN = Actor(team=PLATFORM_TEAM, team_id=0, token_id=None)
BETA = {"id": {"$inGroup": "beta"}}


@pytest.fixture
def growth(core: Podium) -> Actor:
    team = core.catalog.create_team(ADMIN, "growth")
    core.catalog.create_service(ADMIN, "shop", "growth")
    return Actor(team="growth", team_id=team.id, token_id=None)


def test_a_group_is_created_shown_edited_and_audited(core: Podium, growth: Actor) -> None:
    groups = core.experiments.groups
    made = groups.create(growth, "growth", "beta", values=["u1", "u2", "u1", 3], description="Early birds")
    assert made.values == ("u1", "u2", 3)  # duplicates once; a number stays a number
    assert made.attribute == "id"
    assert groups.get("growth", "beta") == made
    changed = groups.update(growth, "growth", "beta", {"values": ["u9"], "attribute": "email"})
    assert (changed.values, changed.attribute, changed.description) == (("u9",), "email", "Early birds")
    assert [g.key for g in groups.list("growth")] == ["beta"]
    with core.store.session() as session:
        actions = [(e.action, e.target) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert last is not None
        assert last.before is not None
        assert last.after is not None
        assert (last.before["values"], last.after["values"]) == (["u1", "u2", 3], ["u9"])
    assert ("saved_group.create", "saved group growth/beta") in actions
    assert ("saved_group.update", "saved group growth/beta") in actions


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"values": "u1"}, "values must be a list"),
        ({"values": [True]}, "value 0 must be a string or a number"),
        ({"values": [{"a": 1}]}, "value 0 must be a string or a number"),
        ({"values": [float("nan")]}, "value 0 must be a finite number"),
        ({"values": [""]}, "value 0 must not be empty"),
        ({"values": ["u"] * 20_001}, "at most 20000 values"),
        ({"attribute": ""}, "attribute must not be empty"),
    ],
)
def test_bad_groups_are_refused(core: Podium, growth: Actor, fields: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        core.experiments.groups.create(growth, "growth", "beta", **fields)  # type: ignore[arg-type]
    assert core.experiments.groups.list("growth") == []


def test_keys_are_unique_per_team_and_only_members_change_them(core: Podium, growth: Actor) -> None:
    groups = core.experiments.groups
    other = core.catalog.create_team(ADMIN, "search")
    search = Actor(team="search", team_id=other.id, token_id=None)
    groups.create(growth, "growth", "beta", values=["u1"])
    groups.create(search, "search", "beta", values=["s1"])  # another team's own group
    with pytest.raises(Conflict, match="exists already in team 'growth'"):
        groups.create(growth, "growth", "beta")
    with pytest.raises(Invalid, match="invalid saved group key"):
        groups.create(growth, "growth", "Beta Testers")
    with pytest.raises(Forbidden, match="may not change the saved groups of team 'growth'"):
        groups.update(search, "growth", "beta", {"values": []})
    with pytest.raises(Forbidden):
        groups.delete(search, "growth", "beta")
    with pytest.raises(NotFound, match="saved group 'nope' not found in team 'growth'"):
        groups.get("growth", "nope")
    assert groups.get("growth", "beta").values == ("u1",)


def test_definitions_carry_the_groups_their_conditions_name(core: Podium, growth: Actor) -> None:
    experiments = core.experiments
    experiments.groups.create(growth, "growth", "beta", values=["u1", "u2"])
    experiments.groups.create(growth, "growth", "unused", values=["x"])
    experiments.flags.create(growth, "shop", "production", "new-ui", enabled=True, value="new", default_value="old",
                             rollout=0.0, rules=[{"condition": {"$or": [BETA]}, "value": "new"}])
    document, etag = experiments.definitions("shop", "production")
    assert document["savedGroups"] == {"beta": ["u1", "u2"]}
    assert experiments.evaluate_flags("shop", "production", "u2", None) == {"new-ui": "new"}
    assert experiments.evaluate_flags("shop", "production", "u3", None) == {"new-ui": "old"}

    experiments.groups.update(growth, "growth", "beta", {"values": ["u3"]})  # SDKs see it on their next poll
    document, changed = experiments.definitions("shop", "production")
    assert changed != etag
    assert document["savedGroups"] == {"beta": ["u3"]}
    assert experiments.evaluate_flags("shop", "production", "u3", None) == {"new-ui": "new"}
    assert experiments.definitions("shop", "staging")[0]["savedGroups"] == {}  # no condition there names it


def test_a_group_in_use_is_not_deleted_and_the_refusal_names_its_users(core: Podium, growth: Actor) -> None:
    experiments = core.experiments
    experiments.groups.create(growth, "growth", "beta", values=["u1"])
    experiments.flags.create(growth, "shop", "staging", "new-ui", rules=[{"condition": BETA, "value": True}])
    experiments.create(growth, "shop", "production", "big-button", variants=["a", "b"], coverage=0.02,
                       metric="signup", conditions={"$and": [{"id": {"$notInGroup": "beta"}}]})
    with pytest.raises(Conflict) as refused:
        experiments.groups.delete(growth, "growth", "beta")
    assert str(refused.value) == (
        "saved group 'beta' is used by experiment shop/production/big-button, flag shop/staging/new-ui: "
        "take it out of their conditions first"
    )
    assert experiments.groups.users("growth", "beta") == ["experiment shop/production/big-button",
                                                          "flag shop/staging/new-ui"]
    experiments.flags.delete(growth, "shop", "staging", "new-ui")
    experiments.delete(growth, "shop", "production", "big-button")
    experiments.groups.delete(growth, "growth", "beta")
    assert experiments.groups.list("growth") == []
    with core.store.session() as session:
        assert session.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc())) == "saved_group.delete"
