"""People over the API: rights follow membership, at each request; tokens are scoped and end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from tests.web.support import csrf_of, sign_in

from podium.core import Podium
from podium.people.models import PersonalToken
from podium.store.db import utcnow

API = "/api/v1"


def test_a_member_has_the_rights_of_the_team_and_the_audit_names_them(
    admin: TestClient, person: Callable[..., TestClient]
) -> None:
    ada = person("ada", checkout="member")
    created = ada.post(f"{API}/services", json={"name": "cart", "owner": "checkout"})
    assert created.status_code == 201, created.text
    assert ada.patch(f"{API}/services/cart", json={"description": "the cart"}).status_code == 200

    me = ada.get(f"{API}/whoami").json()
    assert (me["user"], me["team"], me["admin"]) == ("ada", "checkout", False)
    events = admin.get(f"{API}/audit", params={"service": "cart"}).json()
    assert [e["action"] for e in events] == ["service.update", "service.create"]
    for event in events:
        assert event["actor"] == {"team": "checkout", "user": "ada", "token_id": me["token_id"], "session_id": None}
    # A team member sees the team's events, and their own.
    assert [e["action"] for e in ada.get(f"{API}/audit", params={"service": "cart"}).json()] == [
        "service.update", "service.create"]


def test_a_person_in_two_teams_acts_for_both_and_for_no_other(
    admin: TestClient, person: Callable[..., TestClient]
) -> None:
    admin.post(f"{API}/teams", json={"name": "search"}).raise_for_status()
    admin.post(f"{API}/teams", json={"name": "billing"}).raise_for_status()
    for name, owner in (("cart", "checkout"), ("finder", "search"), ("ledger", "billing")):
        admin.post(f"{API}/teams", json={"name": owner})
        admin.post(f"{API}/services", json={"name": name, "owner": owner}).raise_for_status()
    bo = person("bo", checkout="member", search="member")
    assert bo.patch(f"{API}/services/cart", json={"description": "x"}).status_code == 200
    assert bo.patch(f"{API}/services/finder", json={"description": "x"}).status_code == 200
    refused = bo.patch(f"{API}/services/ledger", json={"description": "x"})
    assert refused.status_code == 403
    assert "user 'bo'" in refused.json()["detail"]


def test_a_removed_member_is_refused_at_once(admin: TestClient, person: Callable[..., TestClient]) -> None:
    cy = person("cy", checkout="member")
    admin.post(f"{API}/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    assert cy.patch(f"{API}/services/cart", json={"description": "before"}).status_code == 200

    assert admin.delete(f"{API}/teams/checkout/members/cy").status_code == 204
    refused = cy.patch(f"{API}/services/cart", json={"description": "after"})
    assert refused.status_code == 403
    assert admin.get(f"{API}/services/cart").json()["description"] == "before"
    assert "cy" not in [m["user"] for m in admin.get(f"{API}/teams/checkout/members").json()]


def test_only_maintainers_manage_members_and_grants(admin: TestClient, person: Callable[..., TestClient]) -> None:
    admin.post(f"{API}/teams", json={"name": "search"}).raise_for_status()
    lead = person("lead", checkout="maintainer")
    dev = person("dev", checkout="member")
    admin.post(f"{API}/users", json={"name": "new", "email": "new@example.com"}).raise_for_status()
    admin.post(f"{API}/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    grant = {"team": "search", "rights": ["deploy"], "duration": "1d"}

    assert dev.post(f"{API}/teams/checkout/members", json={"user": "new"}).status_code == 403
    assert dev.post(f"{API}/services/cart/grants", json=grant).status_code == 403
    assert dev.post(f"{API}/teams/checkout/tokens", json={"name": "ci"}).status_code == 403
    assert lead.post(f"{API}/teams/checkout/members", json={"user": "new"}).status_code == 201
    assert lead.post(f"{API}/services/cart/grants", json=grant).status_code == 201
    ci = lead.post(f"{API}/teams/checkout/tokens", json={"name": "ci"})
    assert ci.status_code == 201
    assert (ci.json()["name"], ci.json()["created_by"]) == ("ci", "lead")
    # A maintainer of one team manages no other.
    assert lead.post(f"{API}/teams/search/members", json={"user": "new"}).status_code == 403


def test_personal_tokens_are_shown_once_scoped_listed_and_revoked(
    admin: TestClient, api: TestClient, person: Callable[..., TestClient]
) -> None:
    admin.post(f"{API}/teams", json={"name": "search"}).raise_for_status()
    for name, owner in (("cart", "checkout"), ("finder", "search")):
        admin.post(f"{API}/teams", json={"name": owner})
        admin.post(f"{API}/services", json={"name": name, "owner": owner}).raise_for_status()
    dee = person("dee", checkout="member", search="member")

    scoped = dee.post(f"{API}/users/dee/tokens", json={"name": "cart only", "teams": ["checkout"], "expires": "1h"})
    assert scoped.status_code == 201, scoped.text
    token, token_id = scoped.json()["token"], scoped.json()["id"]
    assert token.startswith(f"pdu_{token_id}_")
    as_scoped = {"Authorization": f"Bearer {token}"}
    assert api.patch(f"{API}/services/cart", json={"description": "x"}, headers=as_scoped).status_code == 200
    assert api.patch(f"{API}/services/finder", json={"description": "x"}, headers=as_scoped).status_code == 403
    # A scoped token cannot make a wider one.
    wider = api.post(f"{API}/users/dee/tokens", json={"name": "all"}, headers=as_scoped)
    assert wider.status_code == 403

    reader = dee.post(f"{API}/users/dee/tokens", json={"name": "dashboards", "read_only": True}).json()
    as_reader = {"Authorization": f"Bearer {reader['token']}"}
    assert api.get(f"{API}/services/cart", headers=as_reader).status_code == 200
    assert api.patch(f"{API}/services/cart", json={"description": "y"}, headers=as_reader).status_code == 403

    listed = dee.get(f"{API}/users/dee/tokens")
    assert {"cart only", "dashboards"} <= {t["name"] for t in listed.json()}
    assert token.split("_", 2)[2] not in listed.text
    assert dee.delete(f"{API}/users/dee/tokens/{token_id}").status_code == 200
    assert api.get(f"{API}/whoami", headers=as_scoped).status_code == 401

    # Another person neither lists nor revokes them.
    eve = person("eve", checkout="member")
    assert eve.get(f"{API}/users/dee/tokens").status_code == 403
    assert eve.delete(f"{API}/users/dee/tokens/{reader['id']}").status_code == 403
    assert eve.post(f"{API}/users/dee/tokens", json={"name": "steal"}).status_code == 403


def test_an_expired_personal_token_is_refused(
    core: Podium, admin: TestClient, api: TestClient, person: Callable[..., TestClient]
) -> None:
    person("fay", checkout="member")
    made = admin.post(f"{API}/users/fay/tokens", json={"name": "short", "expires": "1h"}).json()
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert api.get(f"{API}/whoami", headers=headers).json()["user"] == "fay"
    with core.store.session() as session:  # an hour later
        row = session.get(PersonalToken, made["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    refused = api.get(f"{API}/whoami", headers=headers)
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]
    assert admin.post(f"{API}/users/fay/tokens", json={"expires_at": "2020-01-01T00:00:00Z"}).status_code == 422


def test_users_are_made_by_admins_with_clear_errors(admin: TestClient, person: Callable[..., TestClient]) -> None:
    gus = person("gus", checkout="member")
    assert gus.post(f"{API}/users", json={"name": "x", "email": "x@example.com"}).status_code == 403
    assert admin.post(f"{API}/users", json={"name": "gus", "email": "g@example.com"}).status_code == 409
    bad = admin.post(f"{API}/users", json={"name": "Not A Name", "email": "n@example.com"})
    assert bad.status_code == 422
    assert "invalid user name" in bad.json()["detail"]
    assert admin.post(f"{API}/users", json={"name": "hal", "email": "nope"}).status_code == 422
    assert admin.post(f"{API}/teams/checkout/members", json={"user": "nobody"}).status_code == 404
    assert admin.post(f"{API}/teams/checkout/members", json={"user": "gus", "role": "owner"}).status_code == 422
    # A person changes their own contact methods, not someone else's admin flag.
    assert gus.patch(f"{API}/users/gus", json={"contacts": ["json://127.0.0.1:9/page"]}).status_code == 200
    assert gus.patch(f"{API}/users/gus", json={"admin": True}).status_code == 403
    assert gus.patch(f"{API}/users/gus", json={"contacts": ["not a url"]}).status_code == 422


def test_an_admin_person_has_every_right(admin: TestClient, person: Callable[..., TestClient]) -> None:
    root = person("root", admin_=True)
    assert root.get(f"{API}/whoami").json()["admin"] is True
    assert root.post(f"{API}/teams", json={"name": "ops"}).status_code == 201
    assert [e["user"] for e in admin.get(f"{API}/audit", params={"limit": 1}).json()] == ["root"]


def test_a_read_only_token_signed_in_on_the_web_changes_nothing(
    admin: TestClient, api: TestClient, person: Callable[..., TestClient]
) -> None:
    person("ida", checkout="member")
    admin.post(f"{API}/services", json={"name": "cart", "owner": "checkout"}).raise_for_status()
    token = admin.post(f"{API}/users/ida/tokens", json={"name": "viewer", "read_only": True}).json()["token"]
    assert sign_in(api, token).status_code == 303
    page = api.get("/services/cart")
    assert page.status_code == 200
    refused = api.post("/services/cart/environments/production/rollback", data={"csrf": csrf_of(page.text)},
                       follow_redirects=False)
    assert refused.status_code == 403
    assert "read-only" in refused.text
    assert api.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
