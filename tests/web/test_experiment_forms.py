"""Creating, starting and editing experiments, and the flags page, through the pages' forms."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient
from tests.web.support import csrf_of
from tests.web.test_experiments_pages import BASE, signed_in_admin

__all__ = ["signed_in_admin"]  # the fixture: service shop, signed in as the platform team

FLAGS = "/services/shop/environments/production/flags"


def test_an_experiment_is_created_started_and_edited_through_forms(
    signed_in_admin: TestClient, admin: TestClient
) -> None:
    form = signed_in_admin.get(f"{BASE}/new")
    assert form.status_code == 200
    assert 'data-testid="experiment-form"' in form.text
    csrf = csrf_of(form.text)
    fields = {"key": "big-button", "hypothesis": "a larger button gets more sign-ups", "variants": "control, big",
              "metric": "signup", "coverage": "1%", "guardrails": "error", "conditions": '{"country": "NL"}',
              "cuped": "1", "csrf": csrf}
    created = signed_in_admin.post(f"{BASE}/new", data=fields, follow_redirects=True)
    assert created.status_code == 200, created.text
    assert "Created big-button as a draft." in created.text
    made = admin.get(f"/api/v1{BASE}/big-button").json()
    assert (made["status"], made["variants"], made["coverage"], made["guardrails"]) == (
        "draft", ["control", "big"], 0.01, ["error"])
    assert (made["conditions"], made["cuped"], made["sequential"]) == ({"country": "NL"}, True, False)

    started = signed_in_admin.post(f"{BASE}/big-button/start", data={"csrf": csrf}, follow_redirects=True)
    assert "Started: 1.0% of users." in started.text
    assert admin.get(f"/api/v1{BASE}/big-button").json()["status"] == "running"

    page = signed_in_admin.get(f"{BASE}/big-button").text
    assert 'data-testid="edit-form"' in page
    edit = {"hypothesis": "a larger button gets more sign-ups, on phones too", "coverage": "0.02",
            "guardrails": "error, crash", "conditions": "{}", "sequential": "1", "csrf": csrf}
    saved = signed_in_admin.post(f"{BASE}/big-button/edit", data=edit, follow_redirects=True)
    assert "Saved big-button." in saved.text
    now = admin.get(f"/api/v1{BASE}/big-button").json()
    assert (now["coverage"], now["guardrails"], now["conditions"]) == (0.02, ["error", "crash"], {})
    assert (now["cuped"], now["sequential"]) == (False, True)

    too_wide = signed_in_admin.post(f"{BASE}/big-button/edit", data={**edit, "coverage": "50%"})
    assert too_wide.status_code == 422
    assert "above the exposure cap" in html.unescape(too_wide.text)
    bad = signed_in_admin.post(f"{BASE}/new", data={**fields, "key": "other", "conditions": "{nope"})
    assert bad.status_code == 422
    assert "conditions is not JSON" in html.unescape(bad.text)
    assert admin.get(f"/api/v1{BASE}/other").status_code == 404  # nothing half-made


def test_flags_are_listed_added_and_switched_on_the_flags_page(signed_in_admin: TestClient, admin: TestClient) -> None:
    page = signed_in_admin.get(FLAGS)
    assert page.status_code == 200
    assert "No flags in production yet." in page.text
    csrf = csrf_of(page.text)
    added = signed_in_admin.post(FLAGS, data={
        "key": "new-checkout", "description": "the one-page checkout", "value": '"v2"', "default_value": '"v1"',
        "rollout": "10%", "rules": '[{"condition": {"country": "FR"}, "value": "v2-fr"}]', "csrf": csrf,
    }, follow_redirects=True)
    assert added.status_code == 200, added.text
    flag = admin.get("/api/v1/services/shop/environments/production/flags/new-checkout").json()
    assert (flag["enabled"], flag["value"], flag["default_value"], flag["rollout"]) == (False, "v2", "v1", 0.1)
    assert flag["rules"] == [{"condition": {"country": "FR"}, "value": "v2-fr"}]
    assert 'data-flag="new-checkout"' in added.text

    switched = signed_in_admin.post(f"{FLAGS}/new-checkout", data={
        "enabled": "1", "value": '"v2"', "default_value": '"v1"', "rollout": "100%", "rules": "[]",
        "description": "the one-page checkout", "csrf": csrf,
    }, follow_redirects=True)
    assert switched.status_code == 200
    flag = admin.get("/api/v1/services/shop/environments/production/flags/new-checkout").json()
    assert (flag["enabled"], flag["rollout"], flag["rules"]) == (True, 1.0, [])
    evaluated = admin.get("/api/v1/services/shop/environments/production/evaluate/flags",
                          params={"user_id": "u1"}).json()
    assert evaluated["new-checkout"] == "v2"
    forged = signed_in_admin.post(f"{FLAGS}/new-checkout", data={"enabled": "", "csrf": "bad"})
    assert forged.status_code == 403
    listing = signed_in_admin.get(BASE).text
    assert 'data-testid="flags-link"' in listing
    assert 'data-testid="new-experiment"' in listing
