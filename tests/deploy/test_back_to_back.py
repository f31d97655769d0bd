"""A client that follows a rollout to its end can start the next change at once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.deploy.support import HELLO, await_change, create_service, deploy, env_path, slug_of

from podium.core import Podium
from podium.deploy.models import DeployState


def test_the_lock_is_free_when_the_final_event_is_posted(
    core: Podium, admin: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    holders_at_the_end: list[str | None] = []
    post = core.deploys.progress.post

    def watching_post(release_id: int, **event: Any) -> None:
        if event.get("done"):
            with core.store.session() as session:
                holders_at_the_end.extend(s.lock_holder for s in session.query(DeployState))
        post(release_id, **event)

    monkeypatch.setattr(core.deploys.progress, "post", watching_post)
    create_service(admin, "hello")
    assert deploy(admin, "hello", "staging", slug_of(HELLO)).release["status"] == "live"
    for n in range(2):
        # The final event has been read: the lock must already be free, so no 409.
        change = admin.patch(f"{env_path('hello', 'staging')}/config", json={"set": {"N": str(n)}})
        assert change.status_code == 202, change.text
        assert await_change(change, admin, "hello", "staging").release["status"] == "live"
    assert holders_at_the_end == [None, None, None]
