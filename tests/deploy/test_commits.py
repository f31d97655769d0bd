"""Each release tells the commit it runs, even when the same bytes were built from another."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from tests.deploy.support import await_change, env_path, follow, probe_app, slug_of


def test_the_same_slug_deployed_from_two_commits_reports_each_and_copies_carry_theirs(
    admin: TestClient, service: str, tmp_path: Path
) -> None:
    staging = env_path(service, "staging")
    slug = slug_of(probe_app(tmp_path / "app", marker="same"))

    def deploy_from(commit: str) -> str:
        answer = admin.post(
            f"{staging}/deploys", params={"commit": commit}, content=slug,
            headers={"Content-Type": "application/gzip"},
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["commit"] == commit
        assert follow(admin, service, "staging", answer.json()["version"]).release["status"] == "live"
        return str(answer.json()["digest"])

    assert deploy_from("aaa1111") == deploy_from("bbb2222")  # one artifact, two commits
    config = await_change(admin.patch(f"{staging}/config", json={"set": {"CFG_X": "1"}}), admin, service, "staging")
    back = await_change(admin.post(f"{staging}/rollback", json={"to": "v1"}), admin, service, "staging")

    assert (config.release["version"], config.release["commit"]) == ("v3", "bbb2222")
    assert (back.release["version"], back.release["commit"]) == ("v4", "aaa1111")
    commits = {r["version"]: r["commit"] for r in admin.get(f"{staging}/releases").json()}
    assert commits == {"v1": "aaa1111", "v2": "bbb2222", "v3": "bbb2222", "v4": "aaa1111"}
