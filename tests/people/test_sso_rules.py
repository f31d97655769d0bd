"""The pure rules of single sign-on: group maps, the memberships groups make, user names."""

from __future__ import annotations

import pytest

from podium.errors import Invalid, Unauthorized
from podium.people.models import Role
from podium.people.sso import SignInPolicy, parse_group_map, username_from, wanted_memberships


def test_a_group_map_reads_teams_and_roles() -> None:
    assert parse_group_map("eng-checkout=checkout, leads = checkout:maintainer,eng-checkout=search") == {
        "eng-checkout": [("checkout", Role.MEMBER), ("search", Role.MEMBER)],
        "leads": [("checkout", Role.MAINTAINER)],
    }
    assert parse_group_map("") == {}


@pytest.mark.parametrize("bad", ["nogroup", "=checkout", "g=Not A Team", "g=checkout:owner"])
def test_a_bad_group_map_entry_is_named(bad: str) -> None:
    with pytest.raises(Invalid, match="PODIUM_OIDC_GROUP_MAP"):
        parse_group_map(bad)


def test_groups_make_memberships_of_existing_teams_with_the_strongest_role() -> None:
    policy = SignInPolicy(group_map=parse_group_map("eng=checkout,leads=checkout:maintainer,eng=gone"))
    assert wanted_memberships(["leads", "eng"], policy, {"checkout"}) == {"checkout": Role.MAINTAINER}
    assert wanted_memberships(["eng", "leads"], policy, {"checkout"}) == {"checkout": Role.MAINTAINER}
    assert wanted_memberships(["other"], policy, {"checkout"}) == {}
    as_teams = SignInPolicy(groups_as_teams=True)
    assert wanted_memberships(["search", "nope"], as_teams, {"search"}) == {"search": Role.MEMBER}


def test_a_user_name_is_a_dns_label_from_the_claims() -> None:
    policy = SignInPolicy()
    assert username_from({"preferred_username": "Ada.Lovelace"}, policy) == "ada-lovelace"
    assert username_from({"email": "42bo@example.com"}, policy) == "bo"
    assert username_from({"name": "Cy Young"}, policy) == "cy-young"
    with pytest.raises(Unauthorized):
        username_from({"sub": "x"}, policy)
