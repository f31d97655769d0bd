"""Feature flags on a real store: what is accepted, what SDKs get, how a rollout splits users."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.experiments.test_service import settings_overrides  # noqa: F401 -- SQLite and PostgreSQL

from podium.catalog.auth import Actor
from podium.catalog.models import PLATFORM_TEAM, AuditEvent
from podium.core import Podium
from podium.errors import Conflict, Invalid, NotFound
from podium.experiments.evaluate import Evaluator

ADMIN = Actor(team=PLATFORM_TEAM, team_id=0, token_id=None)


@pytest.fixture
def shop(core: Podium) -> Actor:
    team = core.catalog.create_team(ADMIN, "growth")
    core.catalog.create_service(ADMIN, "shop", "growth")
    return Actor(team="growth", team_id=team.id, token_id=None)


def test_a_flag_keeps_any_json_value(core: Podium, shop: Actor) -> None:
    flags = core.experiments.flags
    made = flags.create(
        shop, "shop", "staging", "theme", enabled=True, value={"colour": "green", "sizes": [1, 2.5]},
        default_value=None,
        rules=[{"condition": {"plan": {"$in": ["pro", "team"]}}, "value": {"colour": "gold"}}],
    )
    shown = flags.get("shop", "staging", "theme")
    assert shown == made
    assert shown.value == {"colour": "green", "sizes": [1, 2.5]}
    assert shown.default_value is None
    assert shown.to_dict()["rules"] == [{"condition": {"plan": {"$in": ["pro", "team"]}}, "value": {"colour": "gold"}}]
    assert flags.list("shop", "production") == []  # each environment has its own flags


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rollout": -0.1}, r"rollout must be a number in \[0, 1\]"),
        ({"rollout": float("nan")}, r"rollout must be a number in \[0, 1\]"),
        ({"rules": [{"condition": {}}]}, r"rule 0 must be"),
        ({"rules": [{"condition": [], "value": 1}]}, r"rule 0 condition must be a JSON object"),
        ({"rules": [{"condition": {"a": {"$regex": "("}}, "value": 1}]}, r"not a valid regular expression"),
        ({"value": "x" * 30_000}, r"value is too large"),
        ({"default_value": "nul\x00"}, r"default_value contains a NUL character"),
        ({"description": "d" * 2001}, r"description is too long"),
    ],
)
def test_bad_flags_are_refused(core: Podium, shop: Actor, fields: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        core.experiments.flags.create(shop, "shop", "staging", "f", **fields)  # type: ignore[arg-type]
    assert core.experiments.flags.list("shop", "staging") == []


def test_keys_are_unique_per_environment_and_follow_the_rule(core: Podium, shop: Actor) -> None:
    flags = core.experiments.flags
    flags.create(shop, "shop", "staging", "f")
    with pytest.raises(Conflict, match="flag 'f' exists already in shop/staging"):
        flags.create(shop, "shop", "staging", "f")
    flags.create(shop, "shop", "production", "f")
    with pytest.raises(Invalid, match="invalid flag key '-f'"):
        flags.create(shop, "shop", "staging", "-f")
    with pytest.raises(NotFound, match="flag 'g' not found in shop/staging"):
        flags.get("shop", "staging", "g")


def test_an_edit_is_audited_with_before_and_after(core: Podium, shop: Actor) -> None:
    flags = core.experiments.flags
    flags.create(shop, "shop", "production", "f", rollout=0.1)
    with pytest.raises(Invalid, match="cannot edit key"):
        flags.update(shop, "shop", "production", "f", {"key": "g"})
    flags.update(shop, "shop", "production", "f", {"enabled": True, "rollout": 0.5})
    with core.store.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "flag.update")).one()
    assert (event.team, event.target) == ("growth", "flag production/f")
    assert event.before is not None
    assert event.after is not None
    assert (event.before["enabled"], event.before["rollout"]) == (False, 0.1)
    assert (event.after["enabled"], event.after["rollout"]) == (True, 0.5)


def test_a_rollout_reaches_its_share_of_users_and_only_grows(core: Podium, shop: Actor) -> None:
    flags = core.experiments.flags
    flags.create(shop, "shop", "production", "new-checkout", enabled=True, rollout=0.1)
    users = [f"user-{i}" for i in range(20_000)]

    def on_for() -> set[str]:
        evaluator = Evaluator(core.experiments.definitions("shop", "production")[0])
        return {u for u in users if evaluator.flag("new-checkout", u) is True}

    tenth = on_for()
    # 10% of 20,000 users: a binomial standard deviation is about 42 users; allow 5 of them.
    assert abs(len(tenth) - 2_000) < 5 * 42
    flags.update(shop, "shop", "production", "new-checkout", {"rollout": 0.3})
    third = on_for()
    assert tenth <= third  # raising the rollout only adds users
    assert abs(len(third) - 6_000) < 5 * 65


def test_definitions_are_cheap_to_compare(core: Podium, shop: Actor) -> None:
    """The ETag depends on the content only: the same definitions give the same tag, any change another."""
    flags = core.experiments.flags
    flags.create(shop, "shop", "production", "f")
    first = core.experiments.definitions("shop", "production")
    assert core.experiments.definitions("shop", "production") == first
    flags.update(shop, "shop", "production", "f", {"description": "not in the definitions"})
    assert core.experiments.definitions("shop", "production")[1] == first[1]
    flags.update(shop, "shop", "production", "f", {"enabled": True})
    assert core.experiments.definitions("shop", "production")[1] != first[1]
