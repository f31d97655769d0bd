"""Reading logs needs the right to read config: a team with neither ownership nor a config
grant (a foreign team, or one with a deploy-only grant) gets no log lines from the logs
route, from a failed release's ``log_tail``, or from the service page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import create_service, deploy, env_path, follow, probe_app, slug_of
from tests.web.support import sign_in

from podium.api.app import create_app
from podium.core import Podium

SERVICE, OWNER = "vault", "vault-team"
STAGING = env_path(SERVICE, "staging")
PRINTED = "probe: giving up at once on purpose"  # what the failing app prints on its way out


def token_of(client: TestClient) -> str:
    return str(client.headers["Authorization"]).removeprefix("Bearer ")


@pytest.fixture
def failed_release(admin: TestClient, team_client: Callable[[str], TestClient], tmp_path: Path) -> TestClient:
    """A service of OWNER whose first release failed after its app printed ``PRINTED``; the owner's client."""
    create_service(admin, SERVICE, owner=OWNER)
    owner = team_client(OWNER)
    rollout = deploy(owner, SERVICE, "staging", slug_of(probe_app(tmp_path / "app", exit_at_once=True)))
    assert rollout.release["status"] == "failed"
    assert PRINTED in rollout.release["log_tail"]
    return owner


def outsiders(admin: TestClient, team_client: Callable[[str], TestClient]) -> dict[str, TestClient]:
    """A team with no right on the service, and one that may deploy it but not read its config."""
    helper = team_client("helper-team")
    grant = {"team": "helper-team", "rights": ["deploy"], "duration": "7d", "reason": "release help"}
    admin.post(f"/api/v1/services/{SERVICE}/grants", json=grant).raise_for_status()
    return {"foreign": team_client("nosy-team"), "deploy-only": helper}


def test_the_logs_route_and_log_tails_need_the_config_right(
    admin: TestClient, team_client: Callable[[str], TestClient], failed_release: TestClient
) -> None:
    owner = failed_release
    assert PRINTED in owner.get(f"{STAGING}/logs").text
    assert owner.get(f"{STAGING}/releases/v1").json()["log_tail"]
    for who, client in outsiders(admin, team_client).items():
        for params in ({}, {"follow": "true"}, {"process": "web"}):
            refused = client.get(f"{STAGING}/logs", params=params)
            assert refused.status_code == 403, (who, params, refused.text)
            assert PRINTED not in refused.text
        listed = client.get(f"{STAGING}/releases")
        assert listed.status_code == 200
        assert [release["log_tail"] for release in listed.json()] == [None], who
        assert client.get(f"{STAGING}/releases/v1").json()["log_tail"] is None, who
        assert follow(client, SERVICE, "staging", "v1").release["log_tail"] is None, who
        # Deploying is still theirs where granted: the right to read logs is all they lack.
        assert client.get(f"{STAGING}/config").status_code == 403


def test_the_service_page_shows_logs_only_to_those_who_may_read_config(
    core: Podium, admin: TestClient, team_client: Callable[[str], TestClient], failed_release: TestClient
) -> None:
    def page_for(client: TestClient) -> str:
        with TestClient(create_app(core)) as browser:
            assert sign_in(browser, token_of(client)).status_code == 303
            page = browser.get(f"/services/{SERVICE}")
            assert page.status_code == 200
            return page.text

    assert PRINTED in page_for(failed_release)
    for who, client in outsiders(admin, team_client).items():
        assert PRINTED not in page_for(client), who
